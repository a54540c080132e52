//! Extractors that answer bad input with the API's own problem documents, never with the
//! framework's plain-text rejections.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use mcx_core::error::codes as core_codes;
use mcx_core::gms::Precondition;
use mcx_core::identity::Requester;
use mcx_model::api::SessionInfo;
use mcx_model::{McServiceGroupId, McServiceId};
use serde::de::DeserializeOwned;

use super::AppState;
use super::problem::{ApiError, codes};

/// A JSON body, refused with a problem document when malformed, mistyped or too large.
pub(crate) struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_BODY,
            format!(
                "the request body does not have the expected content: {}",
                deserialize_reason(&e.body_text())
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_JSON,
            format!(
                "the request body is not valid JSON: {}",
                deserialize_reason(&e.body_text())
            ),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be JSON, sent with 'Content-Type: application/json'",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            "the request body is larger than this server accepts",
        ),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_BODY,
            format!("the request body could not be read: {}", other.body_text()),
        ),
    }
}

/// axum prefixes serde's message with its own sentence; keep serde's part, which names
/// the field and the problem.
fn deserialize_reason(text: &str) -> String {
    text.split_once(": ")
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| text.to_string())
}

/// The authenticated caller, from `Authorization: Bearer <token>`.
pub(crate) struct Caller {
    /// Who is asking.
    pub(crate) requester: Requester,
    /// Their session.
    pub(crate) session: SessionInfo,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        let (requester, session) = state.system.identity.authenticate(token).await?;
        if let Some(slot) = parts.extensions.get::<super::trace::TracePeer>() {
            *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                "{} ({})",
                requester.mc_service_id, requester.client_id
            ));
        }
        Ok(Caller { requester, session })
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            core_codes::MISSING_TOKEN,
            "this request needs 'Authorization: Bearer <token>'; log on with POST /v1/session to get a token",
        )
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let text = value.to_str().map_err(|_| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            core_codes::INVALID_TOKEN,
            "the Authorization header is not readable text",
        )
    })?;
    let (scheme, token) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// An MC service group ID from the path (`/v1/groups/{id}`), percent-decoded and checked.
pub(crate) struct GroupIdPath(pub McServiceGroupId);

impl<S: Send + Sync> FromRequestParts<S> for GroupIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_PATH, e.body_text())
            })?;
        McServiceGroupId::parse(&raw)
            .map(GroupIdPath)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_PATH, e.to_string()))
    }
}

/// Reads `If-Match`: `*` or one strong entity tag `"<version>"`. A weak tag never matches
/// (RFC 9110 §13.1.1 compares strongly), so it is reported as a mismatch.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| invalid_tag("If-Match"))?.trim();
    if text == "*" {
        return Ok(Some(Precondition::Any));
    }
    if text.starts_with("W/") {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            core_codes::VERSION_MISMATCH,
            "a weak entity tag never matches in If-Match; send the ETag exactly as received",
        ));
    }
    parse_tag(text)
        .map(|v| Some(Precondition::Version(v)))
        .ok_or_else(|| invalid_tag("If-Match"))
}

/// Reads `If-None-Match` as a set of versions (`*` matches any).
pub(crate) fn if_none_match(headers: &HeaderMap) -> Result<Option<Vec<Option<u64>>>, ApiError> {
    let Some(value) = headers.get(header::IF_NONE_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| invalid_tag("If-None-Match"))?;
    let mut tags = Vec::new();
    for tag in text.split(',').map(str::trim) {
        if tag == "*" {
            tags.push(None);
        } else {
            let strong = tag.strip_prefix("W/").unwrap_or(tag);
            tags.push(Some(
                parse_tag(strong).ok_or_else(|| invalid_tag("If-None-Match"))?,
            ));
        }
    }
    Ok(Some(tags))
}

/// Whether a GET with these `If-None-Match` tags gets 304 for a resource at `version`.
pub(crate) fn not_modified(tags: &Option<Vec<Option<u64>>>, version: u64) -> bool {
    tags.as_ref()
        .is_some_and(|tags| tags.iter().any(|t| t.is_none_or(|v| v == version)))
}

fn parse_tag(text: &str) -> Option<u64> {
    text.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

fn invalid_tag(header: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        codes::INVALID_HEADER,
        format!("{header} must be '*' or an entity tag such as \"3\", as sent in ETag"),
    )
}

/// An MC service ID from the path (`/v1/users/{id}`), percent-decoded and checked.
pub(crate) struct UserIdPath(pub McServiceId);

impl<S: Send + Sync> FromRequestParts<S> for UserIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_PATH, e.body_text())
            })?;
        McServiceId::parse(&raw)
            .map(UserIdPath)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_PATH, e.to_string()))
    }
}

/// A path parameter of any type, refused with a problem document when it does not parse
/// (axum's own `Path` answers in plain text).
pub(crate) struct AppPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| AppPath(value))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_PATH,
                    format!(
                        "the path is not valid: {}",
                        deserialize_reason(&e.body_text())
                    ),
                )
            })
    }
}

/// A query string, refused with a problem document when it does not parse.
pub(crate) struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| AppQuery(value))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    codes::INVALID_QUERY,
                    format!(
                        "the query string is not valid: {}",
                        deserialize_reason(&e.body_text())
                    ),
                )
            })
    }
}

/// A raw body, refused with a problem document when it is too large or cannot be read.
pub(crate) struct AppBytes(pub bytes::Bytes);

impl<S: Send + Sync> FromRequest<S> for AppBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        bytes::Bytes::from_request(req, state)
            .await
            .map(AppBytes)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        codes::BODY_TOO_LARGE,
                        "the request body is larger than this endpoint accepts",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        codes::INVALID_BODY,
                        format!("the request body could not be read: {}", e.body_text()),
                    )
                }
            })
    }
}
