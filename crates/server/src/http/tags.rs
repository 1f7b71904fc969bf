//! The tag routes of database 0: `POST /v1/tags/{tag}/invalidate`,
//! `GET /v1/tags/{tag}/keys` (a TAG SCAN step) and `POST /v1/invalidate`
//! (prefixes). Tagged writes are `PUT /v1/keys/{key}` with `?tag=` or a
//! `Surrogate-Key` header ([`super::keys`]); see docs/tags.md.
//!
//! In the `Surrogate-Key` header (both ways) tags are separated by spaces,
//! as Fastly and Varnish's xkey write them; a byte that cannot stand in a
//! space-separated header token (controls, space, `%`, non-ASCII) is
//! percent-encoded, so any tag round-trips.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, Uri};
use base64::Engine as _;
use magpie_engine::{now_ms, TagError};
use serde_json::json;

use super::errors::ApiError;
use super::query::{parse_query, percent_decode, query_flag, query_get};
use super::HttpState;

/// The header HTTP caches name surrogate keys (tags) with.
pub const SURROGATE_KEY: HeaderName = HeaderName::from_static("surrogate-key");

/// The route prefix under which tags live.
const TAGS_PREFIX: &str = "/v1/tags/";

type HttpResult = Result<Response<Body>, ApiError>;

/// A refused tagged write or prefix: 400 with the engine's reason.
pub fn tag_error(e: TagError) -> ApiError {
    ApiError::bad_request("bad_tags", e.to_string())
}

/// The tags of the `Surrogate-Key` request headers (space-separated,
/// percent-decoded tokens; several headers add up).
pub fn surrogate_keys(headers: &HeaderMap) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut out = Vec::new();
    for v in headers.get_all(&SURROGATE_KEY) {
        for token in v.as_bytes().split(|b| b.is_ascii_whitespace()) {
            if token.is_empty() {
                continue;
            }
            out.push(percent_decode(token).ok_or_else(|| {
                ApiError::bad_request("bad_tags", "malformed percent-encoding in Surrogate-Key")
            })?);
        }
    }
    Ok(out)
}

/// The `Surrogate-Key` response header for `tags` (see the module docs).
pub fn surrogate_header(tags: &[Vec<u8>]) -> HeaderValue {
    let mut s = String::new();
    for (i, t) in tags.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        for &b in t {
            if b.is_ascii_graphic() && b != b'%' {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
    }
    HeaderValue::from_str(&s).expect("visible ASCII only")
}

/// The decoded tag of a `/v1/tags/{tag}{suffix}` path.
fn tag_from_path(st: &HttpState, uri: &Uri, suffix: &str) -> Result<Vec<u8>, ApiError> {
    let raw = uri
        .path()
        .strip_prefix(TAGS_PREFIX)
        .and_then(|p| p.strip_suffix(suffix))
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .ok_or_else(|| ApiError::not_found("no such route"))?;
    let max = st.shared.engine.tag_limits().max_tag_len;
    if raw.len() > max.saturating_mul(3) {
        return Err(tag_error(TagError::TagTooLong { max }));
    }
    let tag = percent_decode(raw.as_bytes()).ok_or_else(|| {
        ApiError::bad_request(
            "bad_tag",
            "malformed percent-encoding in tag (use %XX with two hex digits)",
        )
    })?;
    if tag.len() > max {
        return Err(tag_error(TagError::TagTooLong { max }));
    }
    Ok(tag)
}

fn json_response(body: serde_json::Value) -> Response<Body> {
    let mut res = Response::new(Body::from(body.to_string()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `POST /v1/tags/{tag}/invalidate`: every key carrying the tag is gone at
/// once; `{"invalidated": n}` (its member count at the call).
pub async fn invalidate(State(st): State<Arc<HttpState>>, uri: Uri) -> HttpResult {
    let tag = tag_from_path(&st, &uri, "/invalidate")?;
    parse_query(&uri, &[])?;
    let n = st.shared.engine.invalidate_tags(0, &[&tag]);
    Ok(json_response(json!({ "invalidated": n })))
}

/// `POST /v1/invalidate?prefix=p[&prefix=q]`: every key starting with one
/// of the prefixes is gone at once; `{"prefixes": n}`.
pub async fn invalidate_prefix(State(st): State<Arc<HttpState>>, uri: Uri) -> HttpResult {
    let q = parse_query(&uri, &["prefix"])?;
    let prefixes: Vec<&[u8]> = q
        .iter()
        .filter(|(n, _)| n == "prefix")
        .map(|(_, v)| v.as_slice())
        .collect();
    if prefixes.is_empty() {
        return Err(ApiError::bad_request(
            "bad_query",
            "give at least one prefix (?prefix=...)",
        ));
    }
    let n = st
        .shared
        .engine
        .invalidate_prefixes(0, &prefixes)
        .map_err(tag_error)?;
    Ok(json_response(json!({ "prefixes": n })))
}

/// Largest `count` honoured per step.
const MAX_COUNT: usize = 1 << 20;

/// `GET /v1/tags/{tag}/keys?cursor=&count=&values=`: one TAG SCAN step.
pub async fn keys(State(st): State<Arc<HttpState>>, uri: Uri) -> HttpResult {
    let tag = tag_from_path(&st, &uri, "/keys")?;
    let q = parse_query(&uri, &["cursor", "count", "values"])?;
    let cursor = match query_get(&q, "cursor") {
        None => 0,
        Some(c) => magpie_protocol::int::parse_u64(c)
            .ok_or_else(|| ApiError::bad_request("bad_cursor", "invalid cursor"))?,
    };
    let count = match query_get(&q, "count") {
        None => 10,
        Some(c) => match magpie_protocol::int::parse_i64(c) {
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX).min(MAX_COUNT),
            _ => {
                return Err(ApiError::bad_request(
                    "bad_count",
                    "count must be a positive integer",
                ))
            }
        },
    };
    let with_values = query_flag(&q, "values")?;
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    let next = st
        .shared
        .engine
        .tag_scan(0, &tag, cursor, count, now_ms(), |k, v| {
            keys.push(k.to_vec());
            if with_values {
                values.push(v.value.to_vec());
            }
        });
    let (keys, encoding) = encode_all(&keys);
    let mut body = json!({
        "keys": keys,
        "encoding": encoding,
        "cursor": next.to_string(),
    });
    if with_values {
        let (values, values_encoding) = encode_all(&values);
        body["values"] = json!(values);
        body["values_encoding"] = json!(values_encoding);
    }
    Ok(json_response(body))
}

/// UTF-8 strings, or base64 for all when one is not UTF-8 (as the keys
/// listing does).
fn encode_all(items: &[Vec<u8>]) -> (Vec<String>, &'static str) {
    let base64 = items.iter().any(|k| std::str::from_utf8(k).is_err());
    let out = items
        .iter()
        .map(|k| {
            if base64 {
                base64::engine::general_purpose::STANDARD.encode(k)
            } else {
                String::from_utf8_lossy(k).into_owned()
            }
        })
        .collect();
    (out, if base64 { "base64" } else { "utf8" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogate_keys_round_trip_any_tag() {
        let tags = vec![b"cart:13".to_vec(), b"a b%".to_vec(), vec![0, 255]];
        let h = surrogate_header(&tags);
        assert_eq!(h.to_str().unwrap(), "cart:13 a%20b%25 %00%FF");
        let mut headers = HeaderMap::new();
        headers.insert(SURROGATE_KEY, h);
        headers.append(SURROGATE_KEY, HeaderValue::from_static("  x\ty "));
        let mut want = tags.clone();
        want.extend([b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(surrogate_keys(&headers).unwrap(), want);
        headers.insert(SURROGATE_KEY, HeaderValue::from_static("bad%zz"));
        assert!(surrogate_keys(&headers).is_err());
    }
}
