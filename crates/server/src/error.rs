//! API errors: a status and a reason, answered as `{"error": "..."}`. Store errors map to
//! statuses by kind: a bad query is 400, an unavailable store 503 (the apiserver and agents
//! retry), anything else 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kubetrail_api::wire::ErrorBody;
use kubetrail_store::ErrorKind;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The reason given to the client.
    pub reason: String,
}

impl ApiError {
    /// 400.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            reason: reason.into(),
        }
    }

    /// 401.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            reason: reason.into(),
        }
    }

    /// 403.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            reason: reason.into(),
        }
    }

    /// 404.
    pub fn not_found() -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            reason: "no such path".into(),
        }
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            reason: format!("the body is larger than the limit of {limit} bytes"),
        }
    }

    /// 500, for failures that are bugs (a task that panicked).
    pub fn internal(reason: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            reason: reason.into(),
        }
    }

    /// The answer for a store failure.
    pub fn store(what: &str, e: &kubetrail_store::Error) -> Self {
        let status = match e.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status != StatusCode::BAD_REQUEST {
            tracing::error!(error = %e, "{what} failed");
        }
        ApiError {
            status,
            reason: format!("{what}: {e}"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(ErrorBody { error: self.reason })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kubetrail\""),
            );
        }
        response
    }
}
