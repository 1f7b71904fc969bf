//! Authentication and permissions on the HTTP door, with the same ACL
//! users as every other door.
//!
//! Credentials come as `Authorization: Basic <base64 user:password>` or
//! `Authorization: Bearer <password>` (the `default` user's password).
//! While the `default` user needs a password, a request without valid
//! credentials gets `401` with `WWW-Authenticate`; with credentials, a
//! request its user may not make (the route's RESP equivalent, see
//! `equivalent`, or its key) gets `403`. `/healthz`, `/readyz` and
//! `/openapi.json` are always open; `/metrics` and `/dashboard` follow
//! `--http-metrics-access` (open on loopback by default).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use base64::Engine as _;

use super::errors::ApiError;
use super::HttpState;
use crate::acl::{Denied, LogEntry, Reason, User, DEFAULT_USER};
use crate::config::ObservabilityAccess;

/// The challenges a 401 carries.
const CHALLENGES: [&str; 2] = [
    "Basic realm=\"magpie\", charset=\"UTF-8\"",
    "Bearer realm=\"magpie\"",
];

/// What a route is, for the ACL.
enum Route {
    /// Always open (probes, the API document).
    Open,
    /// `/metrics`, `/dashboard`: open per `--http-metrics-access`.
    Observability,
    /// Any other route: the RESP command it is equivalent to, and its key
    /// (percent-encoded, as in the path) if it has one.
    Command(&'static str, Option<String>),
}

/// The RESP command a request is equivalent to: `GET /v1/keys/{k}` is
/// `get`, `HEAD` `exists`, `PUT` `set`, `DELETE` `del`, `POST .../incr`
/// `incrby`, `GET /v1/keys` `scan`, `GET /v1/stats` `info`, the tag
/// routes `invalidate|tag`, `tag|scan` and `invalidate|prefix`.
fn equivalent(method: &Method, path: &str) -> Route {
    if let Some(rest) = path.strip_prefix("/v1/keys/") {
        let (key, cmd) = match rest.split_once('/') {
            None => (
                rest,
                match *method {
                    Method::GET => "get",
                    Method::HEAD => "exists",
                    Method::PUT => "set",
                    Method::DELETE => "del",
                    _ => "get",
                },
            ),
            Some((key, _)) => (key, "incrby"),
        };
        return Route::Command(cmd, Some(key.to_string()));
    }
    match path {
        "/healthz" | "/readyz" | "/openapi.json" => Route::Open,
        "/metrics" | "/dashboard" | "/dashboard.js" => Route::Observability,
        "/v1/keys" => Route::Command("scan", None),
        "/v1/stats" => Route::Command("info", None),
        "/v1/invalidate" => Route::Command("invalidate|prefix", None),
        p if p.starts_with("/v1/tags/") && p.ends_with("/invalidate") => {
            Route::Command("invalidate|tag", None)
        }
        p if p.starts_with("/v1/tags/") && p.ends_with("/keys") => Route::Command("tag|scan", None),
        // unknown routes answer 404 once the client is authenticated
        _ => Route::Command("", None),
    }
}

/// A user name and a password, as a request gave them.
type Credentials = (Vec<u8>, Vec<u8>);

/// The credentials of a request: None without an Authorization header,
/// an error for a malformed one.
fn credentials(headers: &HeaderMap) -> Option<Result<Credentials, ()>> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(i) => (&value[..i], value[i + 1..].trim_ascii()),
        None => (value, &b""[..]),
    };
    if scheme.eq_ignore_ascii_case(b"bearer") {
        return Some(Ok((DEFAULT_USER.as_bytes().to_vec(), rest.to_vec())));
    }
    if scheme.eq_ignore_ascii_case(b"basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return Some(Err(()));
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Some(Err(()));
        };
        let user = &decoded[..colon];
        let user = if user.is_empty() {
            DEFAULT_USER.as_bytes()
        } else {
            user
        };
        return Some(Ok((user.to_vec(), decoded[colon + 1..].to_vec())));
    }
    Some(Err(()))
}

fn unauthorized(message: &str) -> Response<Body> {
    let mut res = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        message.to_string(),
    )
    .into_response();
    for c in CHALLENGES {
        res.headers_mut()
            .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
    }
    res
}

fn is_loopback(peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|p| p.ip().is_loopback())
}

/// The middleware: authenticates, then checks the route's permission.
pub async fn guard(State(st): State<Arc<HttpState>>, req: Request, next: Next) -> Response<Body> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let route = equivalent(req.method(), req.uri().path());
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz" | "/openapi.json");
    if !probe && peer.is_some_and(|p| st.shared.acl.protected_refuses(p.ip())) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "protected_mode",
            "magpie is running in protected mode: no password is set for the default user, so only \
             loopback clients are served. Set a password (--requirepass or an aclfile), or start with \
             --protected-mode no (or CONFIG SET protected-mode no from loopback) if the network is trusted",
        )
        .into_response();
    }
    let (cmd, key) = match route {
        Route::Open => return next.run(req).await,
        Route::Observability => match st.shared.config.http_metrics_access {
            ObservabilityAccess::Open => return next.run(req).await,
            ObservabilityAccess::Loopback if is_loopback(peer) => return next.run(req).await,
            _ => ("info", None),
        },
        Route::Command(cmd, key) => (cmd, key),
    };
    let acl = &st.shared.acl;
    let user: Arc<User> = match credentials(req.headers()) {
        None if !acl.auth_required() => acl.default_user(),
        None => return unauthorized("credentials are required (Authorization: Basic or Bearer)"),
        Some(Err(())) => return unauthorized("the Authorization header is malformed"),
        Some(Ok((name, pass))) => match acl.authenticate(&name, &pass) {
            Some(u) => u,
            None => {
                log(
                    &st,
                    peer,
                    Reason::Auth,
                    "http".into(),
                    &String::from_utf8_lossy(&name),
                );
                return unauthorized("invalid username-password pair or user is disabled");
            }
        },
    };
    if !user.unrestricted() && !cmd.is_empty() {
        if let Err(e) = permitted(&st, peer, &user, cmd, key.as_deref()) {
            return e.into_response();
        }
    }
    next.run(req).await
}

fn permitted(
    st: &HttpState,
    peer: Option<SocketAddr>,
    user: &User,
    cmd: &'static str,
    key: Option<&str>,
) -> Result<(), ApiError> {
    let catalog = st.shared.acl.catalog();
    let Some(index) = catalog.index(cmd) else {
        return Ok(());
    };
    let decoded = key.map(|k| super::query::percent_decode(k.as_bytes()));
    let mut args: Vec<&[u8]> = vec![cmd.as_bytes()];
    match &decoded {
        // a malformed key is the handler's 400; nothing is touched
        Some(None) => return Ok(()),
        Some(Some(k)) => args.push(k),
        None => {}
    }
    if matches!(cmd, "set" | "incrby") {
        args.push(b"");
    }
    let Err(denied) = user.check(catalog, index, &args) else {
        return Ok(());
    };
    let (reason, object, message) = match denied {
        Denied::Command => (
            Reason::Command,
            cmd.to_string(),
            format!("this user has no permissions to run the '{cmd}' command"),
        ),
        _ => (
            Reason::Key,
            String::from_utf8_lossy(args[1]).into_owned(),
            "this user has no permissions to access this key".to_string(),
        ),
    };
    log(st, peer, reason, object, &user.name);
    Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))
}

fn log(st: &HttpState, peer: Option<SocketAddr>, reason: Reason, object: String, user: &str) {
    let addr = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
    st.shared.acl.log.lock().add(LogEntry {
        count: 1,
        reason,
        context: "toplevel",
        object,
        username: user.to_string(),
        last_ms: magpie_engine::now_ms(),
        client_info: format!("addr={addr} door=http user={user}"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn credentials_from_basic_and_bearer() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            credentials(&headers(&format!("Basic {}", b64("alice:p:w")))),
            Some(Ok((b"alice".to_vec(), b"p:w".to_vec())))
        );
        assert_eq!(
            credentials(&headers(&format!("basic {}", b64(":pw")))),
            Some(Ok((b"default".to_vec(), b"pw".to_vec())))
        );
        assert_eq!(
            credentials(&headers("Bearer s3cret")),
            Some(Ok((b"default".to_vec(), b"s3cret".to_vec())))
        );
        assert_eq!(credentials(&headers("Basic !!!")), Some(Err(())));
        assert_eq!(
            credentials(&headers(&format!("Basic {}", b64("nocolon")))),
            Some(Err(()))
        );
        assert_eq!(credentials(&headers("Digest x")), Some(Err(())));
        assert_eq!(credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn routes_map_to_resp_commands() {
        let cmd = |m: Method, p: &str| match equivalent(&m, p) {
            Route::Command(c, k) => format!("{c} {}", k.unwrap_or_default()),
            Route::Open => "open".into(),
            Route::Observability => "obs".into(),
        };
        assert_eq!(cmd(Method::GET, "/v1/keys/a%20b"), "get a%20b");
        assert_eq!(cmd(Method::PUT, "/v1/keys/k"), "set k");
        assert_eq!(cmd(Method::POST, "/v1/keys/k/incr"), "incrby k");
        assert_eq!(cmd(Method::DELETE, "/v1/keys/k"), "del k");
        assert_eq!(cmd(Method::HEAD, "/v1/keys/k"), "exists k");
        assert_eq!(cmd(Method::GET, "/v1/keys"), "scan ");
        assert_eq!(
            cmd(Method::POST, "/v1/tags/cart:13/invalidate"),
            "invalidate|tag "
        );
        assert_eq!(cmd(Method::GET, "/v1/tags/cart:13/keys"), "tag|scan ");
        assert_eq!(cmd(Method::POST, "/v1/invalidate"), "invalidate|prefix ");
        assert_eq!(cmd(Method::GET, "/healthz"), "open");
        assert_eq!(cmd(Method::GET, "/metrics"), "obs");
    }
}
