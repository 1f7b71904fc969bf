//! Decoding what the URL of a request carries: strict percent-decoding of
//! keys and tags in paths, and the query string's parameters with the
//! form-encoding rules, shared by the key and tag routes.

use axum::http::Uri;

use super::errors::ApiError;

/// Strict percent-decoding: `%` must be followed by two hex digits; every
/// other byte stands for itself (`+` included).
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Query parameters as (name, decoded value) in order, with the
/// `application/x-www-form-urlencoded` rules (`+` is a space). A name given
/// twice (other than the repeatable `tag` and `prefix`) or not in `allowed`
/// is a 400.
pub fn parse_query(uri: &Uri, allowed: &[&str]) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let Some(q) = uri.query() else {
        return Ok(out);
    };
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            let plus: Vec<u8> = s
                .bytes()
                .map(|b| if b == b'+' { b' ' } else { b })
                .collect();
            percent_decode(&plus).ok_or_else(|| {
                ApiError::bad_request("bad_query", "malformed percent-encoding in query")
            })
        };
        let name = String::from_utf8(decode(name)?).unwrap_or_default();
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::bad_request(
                "bad_query",
                format!(
                    "unknown query parameter {name:?} (allowed: {})",
                    allowed.join(", ")
                ),
            ));
        }
        let repeatable = name == "tag" || name == "prefix";
        if !repeatable && out.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("query parameter {name:?} given twice"),
            ));
        }
        out.push((name, decode(value)?));
    }
    Ok(out)
}

/// The value of query parameter `name`, if given.
pub fn query_get<'a>(q: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    q.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
}

/// A boolean query flag: absent, empty, `true` or `1` is on, `false` or `0` off.
pub fn query_flag(q: &[(String, Vec<u8>)], name: &str) -> Result<bool, ApiError> {
    match query_get(q, name) {
        None => Ok(false),
        Some(b"" | b"true" | b"1") => Ok(true),
        Some(b"false" | b"0") => Ok(false),
        Some(_) => Err(ApiError::bad_request(
            "bad_query",
            format!("{name} must be true, false, 1, 0 or empty"),
        )),
    }
}
