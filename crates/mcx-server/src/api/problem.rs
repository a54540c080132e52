//! Every error of the API as an RFC 9457 problem document (`application/problem+json`)
//! with a stable `code` and a sentence in `detail`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcx_core::{Error, ErrorKind};
use mcx_model::api::Problem;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

/// Stable codes the HTTP adapter itself produces (the core's are in `mcx_core::error::codes`).
pub mod codes {
    /// The body is not JSON.
    pub const MALFORMED_JSON: &str = "malformed-json";
    /// The body is JSON but not of the expected shape or values.
    pub const INVALID_BODY: &str = "invalid-body";
    /// The body is larger than the server accepts.
    pub const BODY_TOO_LARGE: &str = "body-too-large";
    /// The body is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported-media-type";
    /// A path parameter is not a valid identifier.
    pub const INVALID_PATH: &str = "invalid-path";
    /// The query string is malformed.
    pub const INVALID_QUERY: &str = "invalid-query";
    /// A header is malformed.
    pub const INVALID_HEADER: &str = "invalid-header";
    /// No such route.
    pub const NOT_FOUND: &str = "not-found";
    /// The route does not take this method.
    pub const METHOD_NOT_ALLOWED: &str = "method-not-allowed";
    /// The server failed; the detail is in its log.
    pub const INTERNAL: &str = "internal-error";
}

impl ApiError {
    /// An error with its status, code and sentence.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The sentence.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Refused { kind, code, detail } => {
                let mut error = Self::new(status_of(kind), code, detail);
                if let ErrorKind::Throttled { retry_after_secs } = kind {
                    error.retry_after = Some(retry_after_secs);
                }
                error
            }
            Error::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    mcx_core::error::codes::STORAGE_FAILURE,
                    "the server could not reach its storage; nothing was changed, retry later",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, detail = %self.detail, "request failed");
        }
        let problem = Problem {
            problem_type: Problem::type_for(self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mcx\""),
            );
        }
        response
    }
}

/// Answers unknown routes.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!(
            "there is no resource at '{}'; GET /v1/openapi.json lists them",
            uri.path()
        ),
    )
}

/// Answers a known route with the wrong method.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!("'{}' does not take {method}", uri.path()),
    )
}
