//! The HTTP request middleware: it assigns request ids and writes exactly
//! one canonical line per request on target `magpie::http`, in the
//! server-wide format of [`crate::logging`]:
//!
//! ```text
//! time=2025-01-02T03:04:05.678901Z level=info req_id=4f.. method=GET path=/v1/keys/a status=200 bytes_in=0 bytes_out=5 duration_us=123 peer=127.0.0.1:5555 target=magpie::http
//! ```
//!
//! An error response adds `error=<code>` (the `error` of its JSON body).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Response};
use axum::middleware::Next;

use super::errors::render_errors;
use super::HttpState;
use crate::stats::Door;

/// Header carrying the request id, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// True when an incoming request id may be reused: 1 to 128 visible ASCII
/// characters.
pub fn sane_request_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 128 && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// A fresh random 128-bit request id as 32 lowercase hex digits.
pub fn new_request_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let hi = RandomState::new().hash_one((n, 0u8));
    let lo = RandomState::new().hash_one((n, 1u8));
    format!("{hi:016x}{lo:016x}")
}

/// How far a handler read the request body.
#[derive(Default)]
struct BodyProgress {
    /// Bytes read (for `bytes_in`).
    read: AtomicU64,
    /// The body was read to its end.
    finished: AtomicBool,
}

/// A request body that reports how much of it was read: the byte count for
/// the log line, and whether it was read to the end, because a connection
/// whose request body was left unread cannot carry another request.
struct CountingBody {
    inner: Body,
    progress: Arc<BodyProgress>,
}

impl HttpBody for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.progress
                        .read
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => self.progress.finished.store(true, Ordering::Relaxed),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a status counts as a failed call in the command statistics: the
/// request was malformed or refused (4xx) or the server failed (5xx). A
/// miss (404), a conflict (409) or a failed precondition (412) is an
/// outcome, as a miss or `EXISTS` is on the other doors.
fn failed_status(status: u16) -> bool {
    status >= 400 && !matches!(status, 404 | 409 | 412)
}

/// The request middleware: picks the request id (the client's if sane, else
/// a new one), renders error responses as JSON, echoes the id in
/// `X-Request-Id`, counts the request and logs the canonical line. A reply
/// sent before the request body was read (an error found in the path, query
/// or headers, or a 413) says `Connection: close`, so that the client does
/// not send its next request on a connection hyper is about to close.
pub async fn canonical(
    State(state): State<Arc<HttpState>>,
    req: Request,
    next: Next,
) -> Response<Body> {
    let started = Instant::now();
    let id = match req.headers().get(REQUEST_ID) {
        Some(v) if sane_request_id(v.as_bytes()) => v.to_str().unwrap_or_default().to_owned(),
        _ => new_request_id(),
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let progress = Arc::new(BodyProgress::default());
    let has_body = !req.body().is_end_stream();
    let req = req.map(|inner| {
        Body::new(CountingBody {
            inner,
            progress: progress.clone(),
        })
    });

    let res = next.run(req).await;
    let (mut res, error) = render_errors(res, &method, &id);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    if has_body && !progress.finished.load(Ordering::Relaxed) {
        res.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    let status = res.status().as_u16();
    state.count(status);
    // hyper never sends a body in reply to HEAD, whatever the handler built
    let bytes_out = if method == axum::http::Method::HEAD {
        0
    } else {
        res.body().size_hint().exact().unwrap_or(0)
    };
    let bytes_in = progress.read.load(Ordering::Relaxed);
    let nanos = started.elapsed().as_nanos() as u64;
    let duration_us = nanos / 1000;
    state.shared.command_stats.record(
        Door::Http,
        super::route_index(&method, &path),
        nanos,
        failed_status(status),
    );
    match error {
        None => tracing::info!(
            target: "magpie::http",
            req_id = id.as_str(),
            method = method.as_str(),
            path = path.as_str(),
            status,
            bytes_in,
            bytes_out,
            duration_us,
            peer = peer.as_str(),
        ),
        Some(code) => tracing::info!(
            target: "magpie::http",
            req_id = id.as_str(),
            method = method.as_str(),
            path = path.as_str(),
            status,
            bytes_in,
            bytes_out,
            duration_us,
            peer = peer.as_str(),
            error = code,
        ),
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(sane_request_id(b"abc-123"));
        assert!(sane_request_id(&[b'x'; 128]));
        assert!(!sane_request_id(&[b'x'; 129]));
        assert!(!sane_request_id(b""));
        assert!(!sane_request_id(b"a b"));
        assert!(!sane_request_id(b"a\x7f"));
        let (a, b) = (new_request_id(), new_request_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
