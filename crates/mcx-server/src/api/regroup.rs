//! Preconfigured regroup (TS 23.280 §10.15.3.3.1) and its cancellation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mcx_model::api::{Problem, RegroupList, RegroupRecord};
use mcx_model::flows::regroup::{PreconfiguredRegroupCancelResponse, PreconfiguredRegroupRequest};

use super::AppState;
use super::extract::{AppJson, Caller, GroupIdPath};
use super::problem::ApiError;

/// Preconfigured regroup request (step 2): regroups groups of this and partner systems
/// into a regroup group taking the preconfigured group's configuration. On success the
/// record holds the request return (4b) and the combined response (12); a preconfigured
/// regroup reject (4a) is a 409 problem (`already-regrouped`, `regroup-group-id-in-use`).
///
/// The groups to regroup are `mc-service-group-id-list` at the top of the request, as in
/// every other request. Deprecated: the first release's form, the list nested in
/// `targets` (`{"targets": {"mc-service-group-id-list": [...]}}`), is still accepted in
/// this release and will be refused in the next.
#[utoipa::path(post, path = "/v1/regroups", tag = "regroup", security(("bearer" = [])),
    request_body = mcx_model::flows::regroup::PreconfiguredRegroupRequestOnWire,
    responses(
        (status = 201, description = "In effect", body = RegroupRecord),
        (status = 400, description = "User regroup, or a malformed request", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not authorised for regroup, or a partner homing a group is not authorised", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown group or preconfigured group", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Preconfigured regroup reject, or a partner refused (nothing changed)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A partner homing a group is unreachable (nothing changed)", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<PreconfiguredRegroupRequest>,
) -> Result<(StatusCode, Json<RegroupRecord>), ApiError> {
    let record = state
        .system
        .mc_service_server
        .regroup(&caller.requester, request)
        .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// The regroups in effect that this system takes part in (users authorised for regroup).
#[utoipa::path(get, path = "/v1/regroups", tag = "regroup", security(("bearer" = [])),
    responses(
        (status = 200, description = "The regroups", body = RegroupList),
        (status = 403, description = "Not authorised", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RegroupList>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .regroups(&caller.requester)
            .await?,
    ))
}

/// One regroup (users authorised for regroup, and its members).
#[utoipa::path(get, path = "/v1/regroups/{id}", tag = "regroup", security(("bearer" = [])),
    params(("id" = String, Path, description = "Regroup group ID (percent-encoded)")),
    responses(
        (status = 200, description = "The regroup", body = RegroupRecord),
        (status = 404, description = "No such regroup in effect", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<Json<RegroupRecord>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .regroup_status(&caller.requester, &id)
            .await?,
    ))
}

/// Preconfigured regroup cancel request: ends the regroup in every system; every member
/// is de-affiliated from the regroup group and told (`regroup-cancelled`).
#[utoipa::path(delete, path = "/v1/regroups/{id}", tag = "regroup", security(("bearer" = [])),
    params(("id" = String, Path, description = "Regroup group ID (percent-encoded)")),
    responses(
        (status = 200, description = "Preconfigured regroup cancel response", body = PreconfiguredRegroupCancelResponse),
        (status = 403, description = "Not authorised for regroup", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such regroup in effect", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The regroup was made in another system", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<Json<PreconfiguredRegroupCancelResponse>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .cancel_regroup(&caller.requester, &id)
            .await?,
    ))
}

/// Preconfigured regroup response from a member's client (step 9): the acknowledgement.
#[utoipa::path(post, path = "/v1/regroups/{id}/response", tag = "regroup", security(("bearer" = [])),
    params(("id" = String, Path, description = "Regroup group ID (percent-encoded)")),
    responses(
        (status = 200, description = "Acknowledged", body = RegroupRecord),
        (status = 403, description = "This client is not a member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such regroup in effect", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<Json<RegroupRecord>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .acknowledge_regroup(&caller.requester, &id)
            .await?,
    ))
}
