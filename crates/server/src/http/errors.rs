//! JSON error responses.
//!
//! Every error the HTTP front door returns has the body
//! `{"error": "<short code>", "message": "...", "request_id": "..."}`.
//! Handlers return an [`ApiError`]; it becomes an empty response carrying the
//! error as an extension, and the request middleware ([`super::log`]), which
//! knows the request id, renders the body. Errors produced by axum itself (a
//! 405 from the method router, a 404 from the fallback) arrive without that
//! extension and are rendered from their status, keeping their headers (such
//! as `Allow`).

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use axum::response::IntoResponse;

/// An error a handler reports: status, a short machine-readable code and a
/// human-readable message.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// Short, stable code (`not_found`, `bad_ttl`, ...).
    pub code: &'static str,
    /// Explanation for people.
    pub message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: the key (or route) does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the stored value does not allow the operation.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 412: a conditional request's condition did not hold.
    pub fn precondition_failed(message: impl Into<String>) -> ApiError {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            message,
        )
    }

    /// 413: the body is larger than allowed.
    pub fn too_large(limit: usize) -> ApiError {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }

    /// The default code and message for a status when nothing more specific
    /// is known (errors produced by axum or hyper layers).
    pub fn from_status(status: StatusCode) -> ApiError {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this route does not support the method (see the Allow header)",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "request body is too large"),
            StatusCode::URI_TOO_LONG => ("uri_too_long", "request URI is too long"),
            StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the server is not ready"),
            s if s.is_server_error() => ("internal", "internal server error"),
            _ => ("error", "request failed"),
        };
        Self::new(status, code, message)
    }

    /// The response for this error: JSON body (none for HEAD requests).
    pub fn render(&self, method: &Method, request_id: &str) -> Response<Body> {
        let body = serde_json::json!({
            "error": self.code,
            "message": self.message,
            "request_id": request_id,
        })
        .to_string();
        let len = body.len();
        let mut res = Response::new(if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(body)
        });
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        res
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self.status;
        res.extensions_mut().insert(self);
        res
    }
}

/// Turns an error response from a handler or from axum into the JSON form,
/// keeping its status and headers, and returns the error code with it (for
/// the log line). Other responses pass through unchanged.
pub fn render_errors(
    res: Response<Body>,
    method: &Method,
    request_id: &str,
) -> (Response<Body>, Option<&'static str>) {
    let status = res.status();
    let err = match res.extensions().get::<ApiError>() {
        Some(e) => e.clone(),
        None if status.is_client_error() || status.is_server_error() => {
            if res
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
            {
                return (res, None);
            }
            ApiError::from_status(status)
        }
        None => return (res, None),
    };
    let (mut parts, _) = res.into_parts();
    let rendered = err.render(method, request_id);
    let (rparts, body) = rendered.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in rparts.headers.iter() {
        parts.headers.insert(name, value.clone());
    }
    parts.extensions.remove::<ApiError>();
    (Response::from_parts(parts, body), Some(err.code))
}
