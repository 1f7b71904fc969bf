//! The HTTP/JSON front door: keys of database 0 over REST, plus stats,
//! Prometheus metrics, a live dashboard, health and readiness probes and
//! the OpenAPI document, over HTTP and (with `--tls-http-port`) HTTPS:
//! [`start`] serves one router on both.
//!
//! [`router`] lists every route; [`auth`] authenticates and checks
//! permissions with the ACL users; [`keys`] has the key handlers, [`stats`] the
//! observability endpoints, [`dashboard`] the page over them, [`errors`] the
//! JSON error form, [`log`] the request-id and canonical-log-line
//! middleware and [`openapi`] the document that describes all of it
//! (docs/http.md is the prose version).

pub mod auth;
pub mod dashboard;
pub mod errors;
pub mod keys;
pub mod log;
pub mod openapi;
pub mod query;
pub mod stats;
pub mod tags;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tower_http::catch_panic::CatchPanicLayer;

use crate::shared::Shared;
use errors::ApiError;

/// State every HTTP handler sees.
pub struct HttpState {
    /// The server's shared state (engine, counters, settings).
    pub shared: Arc<Shared>,
    /// Longest key accepted in a path (`--http-max-key-len`); longer is a 414.
    pub max_key_len: usize,
    /// Set when `start()` has bound every listener; `/readyz` reports it.
    ready: AtomicBool,
    /// Responses sent, by status class (index 0 = 1xx ... 4 = 5xx).
    responses: [AtomicU64; 5],
}

impl HttpState {
    /// State for a router over `shared`, not yet ready.
    pub fn new(shared: Arc<Shared>) -> Arc<HttpState> {
        let max_key_len = shared.config.http_max_key_len;
        Arc::new(HttpState {
            shared,
            max_key_len,
            ready: AtomicBool::new(false),
            responses: Default::default(),
        })
    }

    /// Marks the server ready (`/readyz` answers 200 from now on).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    fn count(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Responses sent so far per status class, `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub fn responses(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.responses[i].load(Ordering::Relaxed))
    }
}

/// The HTTP door's table in [`crate::stats::CommandStats`]: one name per
/// route and method (see [`route_index`]).
pub const ROUTES: &[&str] = &[
    "keys_list",
    "keys_get",
    "keys_head",
    "keys_put",
    "keys_delete",
    "keys_incr",
    "tags_invalidate",
    "tags_keys",
    "invalidate_prefix",
    "stats",
    "metrics",
    "healthz",
    "readyz",
    "openapi",
    "dashboard",
    "other",
];

/// The index in [`ROUTES`] of the route a request is for (`other` for
/// anything the router answers 404 or 405).
pub fn route_index(method: &axum::http::Method, path: &str) -> u16 {
    use axum::http::Method;
    let get = method == Method::GET;
    let name = if let Some(rest) = path.strip_prefix("/v1/keys/") {
        match rest.split_once('/') {
            None if !rest.is_empty() => match *method {
                Method::GET => "keys_get",
                Method::HEAD => "keys_head",
                Method::PUT => "keys_put",
                Method::DELETE => "keys_delete",
                _ => "other",
            },
            Some((key, "incr")) if !key.is_empty() && method == Method::POST => "keys_incr",
            _ => "other",
        }
    } else if let Some(rest) = path.strip_prefix("/v1/tags/") {
        match rest.rsplit_once('/') {
            Some((tag, "invalidate")) if !tag.is_empty() && method == Method::POST => {
                "tags_invalidate"
            }
            Some((tag, "keys")) if !tag.is_empty() && get => "tags_keys",
            _ => "other",
        }
    } else {
        match path {
            "/v1/invalidate" if method == Method::POST => "invalidate_prefix",
            "/v1/keys" if get => "keys_list",
            "/v1/stats" if get => "stats",
            "/metrics" if get => "metrics",
            "/healthz" if get => "healthz",
            "/readyz" if get => "readyz",
            "/openapi.json" if get => "openapi",
            "/dashboard" | "/dashboard.js" if get => "dashboard",
            _ => "other",
        }
    };
    ROUTES
        .iter()
        .position(|r| *r == name)
        .unwrap_or(ROUTES.len() - 1) as u16
}

/// Every route of the HTTP front door, with the request middleware around
/// them. `openapi.json` documents exactly these.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/keys", get(keys::list))
        .route(
            "/v1/keys/{key}",
            get(keys::get).merge(put(keys::put).delete(keys::delete).layer(
                axum::middleware::from_fn_with_state(state.clone(), durable_write),
            )),
        )
        .route(
            "/v1/keys/{key}/incr",
            post(keys::incr).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                durable_write,
            )),
        )
        .route(
            "/v1/tags/{tag}/invalidate",
            post(tags::invalidate).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                durable_write,
            )),
        )
        .route("/v1/tags/{tag}/keys", get(tags::keys))
        .route(
            "/v1/invalidate",
            post(tags::invalidate_prefix).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                durable_write,
            )),
        )
        .route("/v1/stats", get(stats::stats))
        .route("/metrics", get(stats::metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi::document))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard.js", get(dashboard::script))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log::canonical,
        ))
        .with_state(state)
}

/// Wraps every writing route: while the log cannot be written the write is
/// refused with 503 (RESP says MISCONF, memcached SERVER_ERROR), and the
/// response waits until the write is durable per the policy (fsynced under
/// `always`, in the file otherwise), so an acknowledged write survives a
/// crash on every front door. A write whose log fails while it waits gets
/// 503 `not_durable` (RESP and memcached close the connection).
async fn durable_write(
    State(st): State<Arc<HttpState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response<Body> {
    // a write that may need memory (PUT, incr; not DELETE nor an
    // invalidation) first makes
    // room under the memory limit, and is refused when none can be made
    // (invalidations free memory: they are never refused for it)
    let frees = req.method() == Method::DELETE
        || req.uri().path().starts_with("/v1/tags/")
        || req.uri().path() == "/v1/invalidate";
    if !frees && st.shared.engine.make_room(magpie_engine::now_ms()).is_err() {
        return ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "out_of_memory",
            "the keyspace is over its memory limit (maxmemory) and the policy has nothing to evict",
        )
        .into_response();
    }
    if let Some(e) = st.shared.log_error() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "log_unwritable",
            format!("writes are refused while the log cannot be written: {e}"),
        )
        .into_response();
    }
    let mark = st.shared.persist.get().map_or(0, |p| p.mark());
    let response = next.run(req).await;
    if let Some(p) = st.shared.persist.get() {
        if let Err(e) = p.wait_durable(mark).await {
            // the write is applied in memory but not in the log (see
            // NotDurable): neither a success nor a refusal
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_durable",
                e.to_string(),
            )
            .into_response();
        }
    }
    response
}

/// The running HTTP listeners; tells them when the whole server is ready.
pub struct HttpHandle {
    state: Arc<HttpState>,
}

impl HttpHandle {
    /// Marks the server ready for `/readyz`.
    pub fn set_ready(&self) {
        self.state.set_ready();
    }
}

/// Binds `--bind:--http-port` (HTTP) and `--bind:--tls-http-port` (HTTPS),
/// whichever are not 0, and serves both from one router and one state in
/// the background until shutdown (finishing requests in flight).
pub async fn start(shared: Arc<Shared>) -> std::io::Result<HttpHandle> {
    let cfg = &shared.config;
    let state = HttpState::new(shared.clone());
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    if cfg.http_port != 0 {
        let listener = crate::listener::bind(&cfg.bind, cfg.http_port, "HTTP").await?;
        let (app, stop) = (app.clone(), stopped(shared.clone()));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
    }
    if cfg.tls_http_port != 0 {
        let listener = crate::listener::bind(&cfg.bind, cfg.tls_http_port, "HTTPS").await?;
        // tap_io: axum hands the peer address to ConnectInfo for this form
        let listener = TlsListener::spawn(shared.clone(), listener)?.tap_io(|_| {});
        let stop = stopped(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "HTTPS server failed");
            }
        });
    }
    Ok(HttpHandle { state })
}

/// Resolves once the server is asked to stop (at once if it already was).
async fn stopped(shared: Arc<Shared>) {
    let notified = shared.shutdown.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if !shared.stopping.load(Ordering::SeqCst) {
        notified.await;
    }
}

/// The HTTPS port as axum's listener: a task accepts TCP connections and
/// runs each handshake on a task of its own (so a slow or failing client
/// holds up no one); the connections that finished it queue here.
struct TlsListener {
    handshaken: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn spawn(shared: Arc<Shared>, listener: TcpListener) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, handshaken) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // ends when axum drops the listener at shutdown
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // e.g. EMFILE: back off instead of spinning
                        tracing::warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (shared, tx) = (shared.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(stream) = crate::tls::handshake(&shared.tls, stream, peer).await {
                        let _ = tx.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { handshaken, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(conn) => conn,
            // the accepting task is gone: nothing more will come
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `GET /healthz`: the process is up and serving HTTP.
async fn healthz() -> Response<Body> {
    json_response(StatusCode::OK, serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 once start-up finished, 503 before and while stopping.
async fn readyz(
    axum::extract::State(st): axum::extract::State<Arc<HttpState>>,
) -> Result<Response<Body>, ApiError> {
    if st.shared.stopping.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    if !st.ready.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the server is still starting",
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        serde_json::json!({ "status": "ready" }),
    ))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    use axum::response::IntoResponse;
    tracing::error!("HTTP handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal server error",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: crate::config::ServeConfig,
    }

    #[tokio::test]
    async fn readyz_is_503_until_ready_and_once_stopping() {
        let shared = Shared::new(Cli::parse_from(["magpie"]).config, crate::command_names());
        let st = HttpState::new(shared.clone());
        let status = |r: Result<Response<Body>, ApiError>| match r {
            Ok(res) => (res.status(), ""),
            Err(e) => (e.status, e.code),
        };
        let probe = || readyz(axum::extract::State(st.clone()));
        assert_eq!(
            status(probe().await),
            (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
        );
        st.set_ready();
        assert_eq!(status(probe().await), (StatusCode::OK, ""));
        shared.request_shutdown();
        assert_eq!(
            status(probe().await),
            (StatusCode::SERVICE_UNAVAILABLE, "shutting_down")
        );
    }
}
