//! The `/v1/keys` handlers: read, write, delete, list and increment keys of
//! database 0, the same keyspace RESP clients see after `SELECT 0`.
//!
//! Keys come from the raw request path and are percent-decoded here (not by
//! the router) so that any byte, including `/` (`%2F`) and NUL (`%00`), can be
//! part of a key. Values are raw bytes in request and response bodies.
//! Conditional requests use the entry's CAS as a strong entity tag `"<cas>"`,
//! and every check-and-write happens inside one engine transaction.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Uri};
use base64::Engine as _;
use magpie_engine::{glob, now_ms};
use serde::Deserialize;
use serde_json::json;

use super::errors::ApiError;
use super::query::{parse_query, percent_decode, query_flag, query_get};
use super::HttpState;

/// Header reporting a key's remaining time to live in milliseconds.
pub const TTL_HEADER: HeaderName = HeaderName::from_static("x-ttl-ms");

/// The route prefix under which keys live.
const KEYS_PREFIX: &str = "/v1/keys/";

/// Largest JSON request body (`/incr`) accepted.
const MAX_JSON_BODY: usize = 4096;

type HttpResult = Result<Response<Body>, ApiError>;

/// Percent-encodes every byte except the RFC 3986 unreserved characters, so
/// the result is one path segment that decodes back to `key`.
pub fn percent_encode(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(
                char::from_digit((b >> 4) as u32, 16)
                    .unwrap()
                    .to_ascii_uppercase(),
            );
            out.push(
                char::from_digit((b & 15) as u32, 16)
                    .unwrap()
                    .to_ascii_uppercase(),
            );
        }
    }
    out
}

/// The decoded key of a `/v1/keys/{key}[suffix]` path: 400 for a malformed
/// escape, 414 when longer than `--http-max-key-len`.
fn key_from_path(st: &HttpState, uri: &Uri, suffix: &str) -> Result<Vec<u8>, ApiError> {
    let path = uri.path();
    let raw = path
        .strip_prefix(KEYS_PREFIX)
        .and_then(|p| p.strip_suffix(suffix))
        .ok_or_else(|| ApiError::not_found("no such route"))?;
    let too_long = || {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            "key_too_long",
            format!("key is longer than {} bytes", st.max_key_len),
        )
    };
    // every decoded byte takes at least one and at most three raw bytes
    if raw.len() > st.max_key_len.saturating_mul(3) {
        return Err(too_long());
    }
    let key = percent_decode(raw.as_bytes()).ok_or_else(|| {
        ApiError::bad_request(
            "bad_key",
            "malformed percent-encoding in key (use %XX with two hex digits)",
        )
    })?;
    if key.len() > st.max_key_len {
        return Err(too_long());
    }
    if key.is_empty() {
        return Err(ApiError::not_found("no such route"));
    }
    Ok(key)
}

/// The entity tag of a stored entry.
fn etag(cas: u64) -> HeaderValue {
    let mut s = String::with_capacity(22);
    s.push('"');
    s.push_str(itoa::Buffer::new().format(cas));
    s.push('"');
    HeaderValue::from_str(&s).expect("digits are a valid header")
}

/// A parsed `If-Match` / `If-None-Match` value.
enum Condition {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags: (weak, opaque tag without quotes).
    Tags(Vec<(bool, String)>),
}

impl Condition {
    /// Parses the header (all its lines); None when absent, 400 when malformed.
    fn parse(headers: &HeaderMap, name: HeaderName) -> Result<Option<Condition>, ApiError> {
        let mut tags = Vec::new();
        let mut any = false;
        let mut seen = false;
        for v in headers.get_all(&name) {
            seen = true;
            let bad = || {
                ApiError::bad_request(
                    "bad_precondition",
                    format!("{name} must be * or a list of entity tags like \"42\""),
                )
            };
            let s = v.to_str().map_err(|_| bad())?;
            for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                if item == "*" {
                    any = true;
                    continue;
                }
                let (weak, rest) = match item.strip_prefix("W/") {
                    Some(r) => (true, r),
                    None => (false, item),
                };
                let tag = rest
                    .strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .filter(|t| !t.contains('"'))
                    .ok_or_else(bad)?;
                tags.push((weak, tag.to_owned()));
            }
        }
        if !seen {
            return Ok(None);
        }
        if any {
            return Ok(Some(Condition::Any));
        }
        if tags.is_empty() {
            return Err(ApiError::bad_request(
                "bad_precondition",
                format!("{name} is empty"),
            ));
        }
        Ok(Some(Condition::Tags(tags)))
    }

    /// Whether the entry with `cas` matches; `strong` rejects weak tags (the
    /// If-Match rule), otherwise weak comparison is used (If-None-Match).
    fn matches(&self, cas: u64, strong: bool) -> bool {
        match self {
            Condition::Any => true,
            Condition::Tags(tags) => {
                let want = itoa::Buffer::new().format(cas).to_owned();
                tags.iter()
                    .any(|(weak, t)| !(strong && *weak) && *t == want)
            }
        }
    }
}

/// Reads the whole request body, refusing (413) more than `limit` bytes
/// without buffering them: the declared Content-Length is checked first and
/// the running total while reading. The chunks are returned as received.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<Bytes>, ApiError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::bad_request("bad_request", "invalid Content-Length"))?;
        if len > limit as u64 {
            return Err(ApiError::too_large(limit));
        }
    }
    let mut body = body;
    let mut chunks = Vec::new();
    let mut total = 0usize;
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|e| {
            ApiError::bad_request("bad_body", format!("could not read request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > limit {
                return Err(ApiError::too_large(limit));
            }
            if !data.is_empty() {
                chunks.push(data);
            }
        }
    }
    Ok(chunks)
}

/// The absolute expiry requested by `ttl` (seconds) or `px` (ms), if any.
fn expiry(q: &[(String, Vec<u8>)], now: u64) -> Result<Option<u64>, ApiError> {
    let ttl = query_get(q, "ttl");
    let px = query_get(q, "px");
    let (raw, unit_ms, name) = match (ttl, px) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "bad_ttl",
                "give either ttl (seconds) or px (milliseconds), not both",
            ))
        }
        (Some(t), None) => (t, 1000i64, "ttl"),
        (None, Some(p)) => (p, 1i64, "px"),
        (None, None) => return Ok(None),
    };
    let n = magpie_protocol::int::parse_i64(raw).ok_or_else(|| {
        ApiError::bad_request("bad_ttl", format!("{name} must be a positive integer"))
    })?;
    let at = (n > 0)
        .then(|| n.checked_mul(unit_ms))
        .flatten()
        .and_then(|ms| ms.checked_add(now as i64))
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_ttl",
                format!("{name} must be a positive integer that does not overflow"),
            )
        })?;
    Ok(Some(at as u64))
}

/// `PUT /v1/keys/{key}`: stores the body as the value.
pub async fn put(
    State(st): State<Arc<HttpState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let key = key_from_path(&st, &uri, "")?;
    let q = parse_query(&uri, &["ttl", "px", "nx", "xx", "tag"])?;
    // tags from ?tag= and the Surrogate-Key header (the HTTP caches' form)
    let mut tags: Vec<Vec<u8>> = q
        .iter()
        .filter(|(n, _)| n == "tag")
        .map(|(_, v)| v.clone())
        .collect();
    tags.extend(super::tags::surrogate_keys(&headers)?);
    let tags: Vec<&[u8]> = tags.iter().map(|t| t.as_slice()).collect();
    st.shared
        .engine
        .check_tags(&tags)
        .map_err(super::tags::tag_error)?;
    let now = now_ms();
    let expire_at = expiry(&q, now)?;
    let (nx, xx) = (query_flag(&q, "nx")?, query_flag(&q, "xx")?);
    if nx && xx {
        return Err(ApiError::bad_request(
            "bad_query",
            "nx and xx cannot be combined",
        ));
    }
    let if_match = Condition::parse(&headers, header::IF_MATCH)?;
    let if_none_match = Condition::parse(&headers, header::IF_NONE_MATCH)?;
    let limit = st.shared.runtime.read().limits.max_bulk_len;
    let chunks = read_body(&headers, body, limit).await?;
    let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_ref()).collect();

    let mut txn = st.shared.engine.txn(0, &[&key], now);
    let current = string_cas(&mut txn, &key)?;
    if let Some(cond) = &if_match {
        match current {
            None => {
                return Err(ApiError::precondition_failed(
                    "If-Match: key does not exist",
                ))
            }
            Some(cas) if !cond.matches(cas, true) => {
                return Err(ApiError::precondition_failed(
                    "If-Match: the key's ETag does not match",
                ))
            }
            Some(_) => {}
        }
    }
    if let (Some(cond), Some(cas)) = (&if_none_match, current) {
        if cond.matches(cas, false) {
            return Err(ApiError::precondition_failed(
                "If-None-Match: the key exists with a matching ETag",
            ));
        }
    }
    if nx && current.is_some() {
        return Err(ApiError::precondition_failed("nx: the key already exists"));
    }
    if xx && current.is_none() {
        return Err(ApiError::precondition_failed("xx: the key does not exist"));
    }
    let cas = if tags.is_empty() {
        txn.set(&key, &parts, 0, expire_at)
    } else {
        txn.set_tagged(&key, &parts, 0, expire_at, &tags)
            .map_err(super::tags::tag_error)?
    };
    drop(txn);

    let mut res = Response::new(Body::empty());
    res.headers_mut().insert(header::ETAG, etag(cas));
    if current.is_some() {
        *res.status_mut() = StatusCode::NO_CONTENT;
    } else {
        *res.status_mut() = StatusCode::CREATED;
        let location = format!("{KEYS_PREFIX}{}", percent_encode(&key));
        res.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("percent-encoded is a valid header"),
        );
    }
    Ok(res)
}

/// True when the client prefers `application/json` over raw bytes: it is
/// listed with q > 0 and no higher q is given to `application/octet-stream`.
fn wants_json(headers: &HeaderMap) -> bool {
    let (mut json, mut raw) = (0.0f32, 0.0f32);
    for v in headers.get_all(header::ACCEPT) {
        let Ok(s) = v.to_str() else { continue };
        for item in s.split(',') {
            let mut params = item.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let q = params
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/json" => json = json.max(q),
                "application/octet-stream" => raw = raw.max(q),
                _ => {}
            }
        }
    }
    json > 0.0 && json >= raw
}

/// A byte string for JSON: (text, "utf8") or (base64, "base64").
fn encode_bytes(b: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(b) {
        Ok(s) => (s.to_owned(), "utf8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(b),
            "base64",
        ),
    }
}

/// `GET` / `HEAD /v1/keys/{key}`: the value (raw, or JSON when asked for).
pub async fn get(State(st): State<Arc<HttpState>>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let key = key_from_path(&st, &uri, "")?;
    parse_query(&uri, &[])?;
    let if_none_match = Condition::parse(&headers, header::IF_NONE_MATCH)?;
    let now = now_ms();
    let counters = &st.shared.counters;
    let mut txn = st.shared.engine.txn(0, &[&key], now);
    let Some(view) = txn.get(&key) else {
        drop(txn);
        counters.keyspace_misses.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::not_found("no such key"));
    };
    counters.keyspace_hits.fetch_add(1, Ordering::Relaxed);
    let meta = view.meta;
    let value = view.value.to_vec();
    let tags = txn.tags(&key);
    let view_value = &value[..];
    let ttl_ms = meta.expire_at.map(|at| at.saturating_sub(now));
    let not_modified = if_none_match.is_some_and(|c| c.matches(meta.cas, false));
    let json = wants_json(&headers);
    let body = if not_modified {
        Body::empty()
    } else if json {
        let (k, key_encoding) = encode_bytes(&key);
        let (v, encoding) = encode_bytes(view_value);
        Body::from(
            json!({
                "key": k,
                "key_encoding": key_encoding,
                "value": v,
                "encoding": encoding,
                "flags": meta.flags,
                "ttl_ms": ttl_ms,
                "cas": meta.cas,
            })
            .to_string(),
        )
    } else {
        Body::from(value)
    };
    drop(txn);

    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(header::ETAG, etag(meta.cas));
    if let Some(ttl) = ttl_ms {
        h.insert(TTL_HEADER, HeaderValue::from(ttl));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    if !tags.is_empty() {
        h.insert(
            super::tags::SURROGATE_KEY,
            super::tags::surrogate_header(&tags),
        );
    }
    if not_modified {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
    } else {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(if json {
                "application/json"
            } else {
                "application/octet-stream"
            }),
        );
    }
    Ok(res)
}

/// The refusal of a write to a key holding a hash or a set: the HTTP API
/// reads and writes strings only (a GET of such a key is a 404, as a miss).
fn wrong_type() -> ApiError {
    ApiError::conflict(
        "wrong_type",
        "the key holds a hash or a set, not a string; the HTTP API writes strings only",
    )
}

/// The CAS of the string at `key` (None when absent); a 409 when it holds
/// another kind of value.
fn string_cas(txn: &mut magpie_engine::Txn<'_>, key: &[u8]) -> Result<Option<u64>, ApiError> {
    match txn.get_string(key) {
        Ok(v) => Ok(v.map(|v| v.meta.cas)),
        Err(_) => Err(wrong_type()),
    }
}

/// `DELETE /v1/keys/{key}`: 204 when removed, 404 when absent; honours If-Match.
pub async fn delete(State(st): State<Arc<HttpState>>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let key = key_from_path(&st, &uri, "")?;
    parse_query(&uri, &[])?;
    let if_match = Condition::parse(&headers, header::IF_MATCH)?;
    let mut txn = st.shared.engine.txn(0, &[&key], now_ms());
    let current = string_cas(&mut txn, &key)?;
    match (current, &if_match) {
        (None, Some(_)) => Err(ApiError::precondition_failed(
            "If-Match: key does not exist",
        )),
        (None, None) => Err(ApiError::not_found("no such key")),
        (Some(cas), Some(c)) if !c.matches(cas, true) => Err(ApiError::precondition_failed(
            "If-Match: the key's ETag does not match",
        )),
        (Some(_), _) => {
            txn.remove(&key);
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::NO_CONTENT;
            Ok(res)
        }
    }
}

/// The body of `POST /v1/keys/{key}/incr`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncrBody {
    #[serde(default = "one")]
    by: i64,
}

fn one() -> i64 {
    1
}

/// `POST /v1/keys/{key}/incr`: Redis INCRBY. A missing key counts from 0; a
/// value that is not a 64-bit integer, or a result that would overflow, is a
/// 409. The TTL of an existing key is kept.
pub async fn incr(
    State(st): State<Arc<HttpState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResult {
    let key = key_from_path(&st, &uri, "/incr")?;
    parse_query(&uri, &[])?;
    let chunks = read_body(&headers, body, MAX_JSON_BODY).await?;
    let raw: Vec<u8> = chunks.concat();
    let by = if raw.iter().all(u8::is_ascii_whitespace) {
        1
    } else {
        let bad = |why: String| {
            ApiError::bad_request(
                "bad_json",
                format!("body must be {{\"by\": <64-bit integer>}}: {why}"),
            )
        };
        // serde would also accept a struct written as an array; only objects are
        if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(bad("not a JSON object".into()));
        }
        serde_json::from_slice::<IncrBody>(&raw)
            .map_err(|e| bad(e.to_string()))?
            .by
    };
    let mut txn = st.shared.engine.txn(0, &[&key], now_ms());
    let found = txn.get_string(&key).map_err(|_| wrong_type())?;
    let (old, existed) = match found {
        None => (0, false),
        Some(v) => match magpie_protocol::int::parse_i64(v.value) {
            Some(n) => (n, true),
            None => {
                return Err(ApiError::conflict(
                    "not_integer",
                    "value is not an integer or out of range",
                ))
            }
        },
    };
    let new = old
        .checked_add(by)
        .ok_or_else(|| ApiError::conflict("overflow", "increment or decrement would overflow"))?;
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(new).as_bytes();
    let cas = if existed {
        txn.rewrite(&key, digits.len(), |_, dst| dst.copy_from_slice(digits))
            .expect("key checked present in this transaction")
    } else {
        txn.set(&key, &[digits], 0, None)
    };
    drop(txn);
    let mut res = Response::new(Body::from(json!({ "value": new }).to_string()));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ETAG, etag(cas));
    Ok(res)
}

/// `GET /v1/keys`: one SCAN step over database 0, keys filtered by `match`.
pub async fn list(State(st): State<Arc<HttpState>>, uri: Uri) -> HttpResult {
    let q = parse_query(&uri, &["match", "cursor", "count", "encoding"])?;
    let cursor = match query_get(&q, "cursor") {
        None => 0,
        Some(c) => magpie_protocol::int::parse_u64(c)
            .ok_or_else(|| ApiError::bad_request("bad_cursor", "invalid cursor"))?,
    };
    let count = match query_get(&q, "count") {
        None => 10,
        Some(c) => match magpie_protocol::int::parse_i64(c) {
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => {
                return Err(ApiError::bad_request(
                    "bad_count",
                    "count must be a positive integer",
                ))
            }
        },
    };
    let force_base64 = match query_get(&q, "encoding") {
        None | Some(b"auto") => false,
        Some(b"base64") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "bad_query",
                "encoding must be auto or base64",
            ))
        }
    };
    let pattern = query_get(&q, "match").filter(|p| *p != b"*");
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let next = st.shared.engine.scan(0, cursor, count, now_ms(), |k, _| {
        if pattern.is_none() || pattern.is_some_and(|p| glob::matches(p, k)) {
            keys.push(k.to_vec());
        }
    });
    let base64 = force_base64 || keys.iter().any(|k| std::str::from_utf8(k).is_err());
    let keys: Vec<String> = keys
        .iter()
        .map(|k| {
            if base64 {
                base64::engine::general_purpose::STANDARD.encode(k)
            } else {
                String::from_utf8_lossy(k).into_owned()
            }
        })
        .collect();
    let body = json!({
        "keys": keys,
        "encoding": if base64 { "base64" } else { "utf8" },
        "cursor": next.to_string(),
    });
    let mut res = Response::new(Body::from(body.to_string()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_round_trips_any_bytes() {
        let all: Vec<u8> = (0..=255u8).collect();
        let enc = percent_encode(&all);
        assert!(enc.bytes().all(|b| b.is_ascii_graphic() && b != b'/'));
        assert_eq!(percent_decode(enc.as_bytes()).unwrap(), all);
        assert_eq!(percent_decode(b"a%2Fb%00+").unwrap(), b"a/b\0+");
        assert_eq!(percent_decode(b"%zz"), None);
        assert_eq!(percent_decode(b"%4"), None);
        assert_eq!(percent_decode(b"abc%"), None);
    }

    #[test]
    fn conditions() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"7\", W/\"8\""));
        let c = Condition::parse(&h, header::IF_MATCH).unwrap().unwrap();
        assert!(c.matches(7, true));
        assert!(!c.matches(8, true), "weak tags never match strongly");
        assert!(c.matches(8, false));
        assert!(!c.matches(9, false));
        h.insert(header::IF_MATCH, HeaderValue::from_static("7"));
        assert!(Condition::parse(&h, header::IF_MATCH).is_err());
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(Condition::parse(&h, header::IF_MATCH)
            .unwrap()
            .unwrap()
            .matches(1, true));
        assert!(Condition::parse(&HeaderMap::new(), header::IF_MATCH)
            .unwrap()
            .is_none());
    }

    #[test]
    fn accept_negotiation() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            wants_json(&h)
        };
        assert!(!wants_json(&HeaderMap::new()));
        assert!(with("application/json"));
        assert!(with("text/html, application/json;q=0.5"));
        assert!(!with("application/json;q=0"));
        assert!(!with("application/json;q=0.5, application/octet-stream"));
        assert!(!with("*/*"));
    }
}
