//! The MC service server's client interface: affiliation and de-affiliation
//! (TS 23.280 §10.8.3, §10.8.4), queries, and remote change of affiliation (§10.8.5).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mcx_model::api::{
    AffiliationChangeRecord, AffiliationChangeState, ChangeAnswer, GroupAffiliations, Problem,
    UserAffiliations,
};
use mcx_model::flows::affiliation::{
    GroupAffiliationChangeRequest, GroupAffiliationRequest, GroupAffiliationResponse,
    GroupDeaffiliationRequest, GroupDeaffiliationResponse,
};

use super::AppState;
use super::extract::{AppJson, AppPath, Caller, GroupIdPath, UserIdPath};
use super::problem::ApiError;

/// MC service group affiliation request (table 10.X.2.1-1): this client affiliates to one
/// or more groups, of this system or of partner systems. Each group gets its own status;
/// partial success is normal.
#[utoipa::path(post, path = "/v1/affiliations", tag = "affiliation", security(("bearer" = [])),
    request_body = GroupAffiliationRequest,
    responses(
        (status = 200, description = "MC service group affiliation response (table 10.X.2.2-1)", body = GroupAffiliationResponse),
        (status = 403, description = "The request names another user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Body not valid", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn affiliate(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<GroupAffiliationRequest>,
) -> Result<Json<GroupAffiliationResponse>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .affiliate(&caller.requester, request)
            .await?,
    ))
}

/// MC service group de-affiliation request (table 10.X.2.4-1): this client de-affiliates.
#[utoipa::path(post, path = "/v1/deaffiliations", tag = "affiliation", security(("bearer" = [])),
    request_body = GroupDeaffiliationRequest,
    responses(
        (status = 200, description = "MC service group de-affiliation response (table 10.X.2.5-1)", body = GroupDeaffiliationResponse),
        (status = 403, description = "The request names another user", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn deaffiliate(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<GroupDeaffiliationRequest>,
) -> Result<Json<GroupDeaffiliationResponse>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .deaffiliate(&caller.requester, request)
            .await?,
    ))
}

/// The caller's affiliations (every client of the caller).
#[utoipa::path(get, path = "/v1/affiliations", tag = "affiliation", security(("bearer" = [])),
    responses((status = 200, description = "The caller's affiliations", body = UserAffiliations)))]
pub(super) async fn own(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UserAffiliations>, ApiError> {
    let me = caller.requester.mc_service_id.clone();
    Ok(Json(
        state
            .system
            .mc_service_server
            .user_affiliations(&caller.requester, &me)
            .await?,
    ))
}

/// A user's affiliations (the user, or a user with affiliation-monitoring).
#[utoipa::path(get, path = "/v1/users/{id}/affiliations", tag = "affiliation", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service ID (percent-encoded)")),
    responses(
        (status = 200, description = "The user's affiliations", body = UserAffiliations),
        (status = 403, description = "Not authorised", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not a user of this system", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn of_user(
    State(state): State<AppState>,
    caller: Caller,
    UserIdPath(user): UserIdPath,
) -> Result<Json<UserAffiliations>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .user_affiliations(&caller.requester, &user)
            .await?,
    ))
}

/// A group's affiliated members (affiliation-monitoring or group-administration). For a
/// group defined here, every system's members as the GMS knows them.
#[utoipa::path(get, path = "/v1/groups/{id}/affiliations", tag = "affiliation", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)")),
    responses(
        (status = 200, description = "The affiliated members", body = GroupAffiliations),
        (status = 403, description = "Not authorised", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn of_group(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(group): GroupIdPath,
) -> Result<Json<GroupAffiliations>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .group_affiliations(&caller.requester, &group)
            .await?,
    ))
}

/// MC service group affiliation change request (table 10.X.2.7-1): an authorised user
/// changes other users' affiliations. Mandatory mode completes at once (200, with the
/// response); negotiated mode waits for the targets (202; the response follows on the
/// event stream as `affiliation-change-completed` and in `GET /v1/affiliation-changes/{id}`).
#[utoipa::path(post, path = "/v1/affiliation-changes", tag = "affiliation", security(("bearer" = [])),
    request_body = GroupAffiliationChangeRequest,
    responses(
        (status = 200, description = "Mandatory: done; the record holds the MC service group affiliation change response", body = AffiliationChangeRecord),
        (status = 202, description = "Negotiated: the targets are asked", body = AffiliationChangeRecord),
        (status = 403, description = "Not authorised for this mode", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn request_change(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<GroupAffiliationChangeRequest>,
) -> Result<(StatusCode, Json<AffiliationChangeRecord>), ApiError> {
    let record = state
        .system
        .mc_service_server
        .request_change(&caller.requester, request)
        .await?;
    let status = match record.state {
        AffiliationChangeState::Completed => StatusCode::OK,
        AffiliationChangeState::Pending => StatusCode::ACCEPTED,
    };
    Ok((status, Json(record)))
}

/// A remote change, to its requester, its targets, or a user with affiliation-monitoring.
#[utoipa::path(get, path = "/v1/affiliation-changes/{id}", tag = "affiliation", security(("bearer" = [])),
    params(("id" = String, Path, description = "The change ID")),
    responses(
        (status = 200, description = "The change", body = AffiliationChangeRecord),
        (status = 403, description = "Not involved", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such change", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn change(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<Json<AffiliationChangeRecord>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .change(&caller.requester, &id)
            .await?,
    ))
}

/// A target's MC service group affiliation change response: accept or reject
/// (negotiated), acknowledge (mandatory, step 7b).
#[utoipa::path(post, path = "/v1/affiliation-changes/{id}/response", tag = "affiliation", security(("bearer" = [])),
    params(("id" = String, Path, description = "The change ID")),
    request_body = ChangeAnswer,
    responses(
        (status = 200, description = "Recorded", body = AffiliationChangeRecord),
        (status = 403, description = "Not addressed to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such change", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Answered already, or the wrong kind of answer for its mode", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn answer_change(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(answer): AppJson<ChangeAnswer>,
) -> Result<Json<AffiliationChangeRecord>, ApiError> {
    Ok(Json(
        state
            .system
            .mc_service_server
            .answer_change(&caller.requester, &id, answer)
            .await?,
    ))
}
