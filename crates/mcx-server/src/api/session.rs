//! `POST /v1/session` (log on), `GET /v1/session`, `DELETE /v1/session` (log off).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mcx_model::api::{LogOnRequest, LogOnResponse, Problem, SessionInfo};

use super::AppState;
use super::extract::{AppJson, Caller};
use super::problem::ApiError;

/// Logs a user on from a client. The token answers every later request of this client;
/// a second log-on from the same client ends the first session.
#[utoipa::path(post, path = "/v1/session", tag = "session",
    request_body = LogOnRequest,
    responses(
        (status = 201, description = "Logged on", body = LogOnResponse),
        (status = 401, description = "Wrong MC service ID or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords for the user or from the address: wait `Retry-After` seconds", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Body not valid", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn log_on(
    State(state): State<AppState>,
    peer: Option<axum::Extension<super::trace::TracePeer>>,
    source: Option<axum::Extension<crate::listener::PeerAddr>>,
    AppJson(request): AppJson<LogOnRequest>,
) -> Result<(StatusCode, Json<LogOnResponse>), ApiError> {
    let source = source.map(|axum::Extension(addr)| addr.0.ip());
    let (token, session) = state.system.identity.log_on(request, source).await?;
    if let Some(axum::Extension(peer)) = peer {
        *peer.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("{} ({})", session.mc_service_id, session.client_id));
    }
    Ok((StatusCode::CREATED, Json(LogOnResponse { token, session })))
}

/// The caller's session and profile.
#[utoipa::path(get, path = "/v1/session", tag = "session", security(("bearer" = [])),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        (status = 401, description = "Not logged on", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn current(caller: Caller) -> Json<SessionInfo> {
    Json(caller.session)
}

/// Logs the caller's client off: the session ends, with its subscriptions and events.
#[utoipa::path(delete, path = "/v1/session", tag = "session", security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged off"),
        (status = 401, description = "Not logged on", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn log_off(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    state.system.identity.log_off(&caller.requester).await?;
    Ok(StatusCode::NO_CONTENT)
}
