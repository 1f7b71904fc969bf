//! `GET /dashboard` and `GET /dashboard.js`: a live page over
//! `/v1/stats` (sparklines of load, memory, evictions, the busiest
//! commands), for watching a server without a metrics stack. Both files are
//! compiled into the binary; the page loads nothing from anywhere else.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};

/// The page.
pub const PAGE: &str = include_str!("dashboard.html");

/// The page's script (an ES module; its pure functions are tested under
/// node by crates/server/tests/http.rs).
pub const SCRIPT: &str = include_str!("dashboard.mjs");

fn static_file(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut res = Response::new(Body::from(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // the page runs only its own script and talks only to this server
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'"),
    );
    res
}

/// `GET /dashboard`.
pub async fn page() -> Response<Body> {
    static_file(PAGE, "text/html; charset=utf-8")
}

/// `GET /dashboard.js`.
pub async fn script() -> Response<Body> {
    static_file(SCRIPT, "text/javascript; charset=utf-8")
}
