//! API errors: a status and a reason, answered as `{"error": "..."}`. Store errors map to
//! statuses by kind: a bad query is 400, an unavailable store 503 (the apiserver and agents
//! retry), anything else 500.
//!
//! Also the middleware in front of every route ([`limit_requests`]): it refuses a URL longer
//! than [`RequestLimits::max_url_bytes`] (414), gives the body [`RequestLimits::body_read_timeout`]
//! to arrive (408, and the connection is closed), and turns the framework's plain-text
//! refusals of API requests (413 from the body limit, 405, a body that could not be read)
//! into the same `{"error": "..."}` shape as every other API error.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use kubetrail_api::paths;
use kubetrail_api::wire::ErrorBody;
use kubetrail_store::ErrorKind;

use crate::{AppState, RequestLimits};

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

/// A body that fails once its time is up.
struct TimedBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    expired: Arc<AtomicBool>,
}

/// Why a [`TimedBody`] failed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
struct BodyTimedOut(Duration);

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(self.limit)))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `path` is a web UI page (answered in HTML) rather than the API.
fn is_page(path: &str) -> bool {
    kubetrail_ui::Page::at(path).is_some() || path == "/login" || path == "/logout"
}

/// Middleware in front of every route: see the module documentation.
pub(crate) async fn limit_requests(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let RequestLimits {
        max_url_bytes,
        body_read_timeout,
    } = state.requests;
    let path = request.uri().path().to_string();
    let url_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if url_bytes > max_url_bytes {
        let reason =
            format!("the URL is {url_bytes} bytes, more than the limit of {max_url_bytes} bytes");
        if is_page(&path) {
            let e = kubetrail_ui::UiError::BadRequest(reason);
            return crate::web::html_response(
                StatusCode::URI_TOO_LONG,
                kubetrail_ui::error_page(None, &e),
            );
        }
        return ApiError {
            status: StatusCode::URI_TOO_LONG,
            reason,
        }
        .into_response();
    }
    let expired = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = if body.is_end_stream() {
        body
    } else {
        Body::new(TimedBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(body_read_timeout)),
            limit: body_read_timeout,
            expired: expired.clone(),
        })
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    if expired.load(Ordering::Relaxed) {
        let mut response = ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            reason: BodyTimedOut(body_read_timeout).to_string(),
        }
        .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    if path.starts_with("/api/") || path == paths::METRICS {
        return json_refusal(response, state.limits.max_body_bytes).await;
    }
    response
}

/// An API error answer in the `{"error": "..."}` shape, whatever produced it.
async fn json_refusal(response: Response, max_body_bytes: usize) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(max_body_bytes).reason
    } else {
        let text = axum::body::to_bytes(body, 16 << 10)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("refused")
                .to_lowercase()
        } else {
            text
        }
    };
    let mut json = ApiError { status, reason }.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !json.headers().contains_key(name)
        {
            json.headers_mut().append(name.clone(), value.clone());
        }
    }
    json
}
