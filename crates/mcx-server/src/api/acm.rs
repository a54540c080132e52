//! The ACM server's client interface (TR 23.700-38): providing interconnection group IDs
//! to an authorised user of a partner system, pending ACM data, answering, and applying
//! accepted group IDs to local users.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mcx_model::api::{AcmApplyRequest, AcmExchange, AcmExchangeList, AcmProvisionOrder, Problem};
use mcx_model::flows::acm::{AcmDecision, AcmRequestId, DownloadPendingAcmDataResponse};

use super::AppState;
use super::extract::{AppJson, AppPath, Caller};
use super::problem::{ApiError, codes};

fn request_id(raw: &str) -> Result<AcmRequestId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_PATH,
            format!("'{raw}' is not an ACM request ID (a UUID)"),
        )
    })
}

/// Group information provision request (step 1): provide interconnection group IDs (of
/// this system) to a selected authorised user of a partner system. Stored, then forwarded
/// (retried while the partner is unreachable); `acm-provision-stored` follows when the
/// partner stored it.
#[utoipa::path(post, path = "/v1/acm/provisions", tag = "acm", security(("bearer" = [])),
    request_body = AcmProvisionOrder,
    responses(
        (status = 202, description = "Accepted for forwarding", body = AcmExchange),
        (status = 400, description = "A group is not defined here, or the target is not a partner's user", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not authorised for ACM, or the partner is not authorised for ACM", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn provide(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(order): AppJson<AcmProvisionOrder>,
) -> Result<(StatusCode, Json<AcmExchange>), ApiError> {
    let exchange = state.system.acm.provide(&caller.requester, order).await?;
    Ok((StatusCode::ACCEPTED, Json(exchange)))
}

/// The exchanges the caller sent, newest first.
#[utoipa::path(get, path = "/v1/acm/provisions", tag = "acm", security(("bearer" = [])),
    responses((status = 200, description = "Sent exchanges", body = AcmExchangeList)))]
pub(super) async fn sent(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AcmExchangeList>, ApiError> {
    Ok(Json(state.system.acm.sent(&caller.requester).await?))
}

/// The exchanges addressed to the caller, newest first.
#[utoipa::path(get, path = "/v1/acm/requests", tag = "acm", security(("bearer" = [])),
    responses((status = 200, description = "Received exchanges", body = AcmExchangeList)))]
pub(super) async fn received(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AcmExchangeList>, ApiError> {
    Ok(Json(state.system.acm.received(&caller.requester).await?))
}

/// Download of pending ACM data (steps 7b/8 and 13b/14): requests waiting for the
/// caller's decision, and responses to the caller's requests (delivered once).
#[utoipa::path(get, path = "/v1/acm/pending", tag = "acm", security(("bearer" = [])),
    responses((status = 200, description = "Download of pending ACM data response", body = DownloadPendingAcmDataResponse)))]
pub(super) async fn pending(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<DownloadPendingAcmDataResponse>, ApiError> {
    Ok(Json(
        state.system.acm.download_pending(&caller.requester).await?,
    ))
}

/// Group information provision response (step 9): the target accepts or rejects; the
/// answer travels back to the sender's system.
#[utoipa::path(post, path = "/v1/acm/requests/{id}/response", tag = "acm", security(("bearer" = [])),
    params(("id" = String, Path, description = "The ACM request ID")),
    request_body = AcmDecision,
    responses(
        (status = 200, description = "Answered", body = AcmExchange),
        (status = 403, description = "The request is addressed to someone else", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Answered already", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn respond(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(decision): AppJson<AcmDecision>,
) -> Result<Json<AcmExchange>, ApiError> {
    Ok(Json(
        state
            .system
            .acm
            .respond(&caller.requester, request_id(&id)?, decision)
            .await?,
    ))
}

/// Applies an accepted request's group IDs to local users' profiles (ACM-authorised
/// users); at their next log-on this system fetches the groups from their primary.
#[utoipa::path(post, path = "/v1/acm/requests/{id}/apply", tag = "acm", security(("bearer" = [])),
    params(("id" = String, Path, description = "The ACM request ID")),
    request_body = AcmApplyRequest,
    responses(
        (status = 200, description = "Applied", body = AcmExchange),
        (status = 403, description = "Not authorised for ACM", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request, or a user is not of this system", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The request was not accepted", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn apply(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(apply): AppJson<AcmApplyRequest>,
) -> Result<Json<AcmExchange>, ApiError> {
    Ok(Json(
        state
            .system
            .acm
            .apply(&caller.requester, request_id(&id)?, apply)
            .await?,
    ))
}
