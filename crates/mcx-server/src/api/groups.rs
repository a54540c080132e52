//! The group management server's client interface: `/v1/groups` (list, create),
//! `/v1/groups/{id}` (read, update, delete) and `/v1/groups/{id}/subscription`.
//! Every response carrying a group has its version as a strong `ETag`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcx_core::error::codes as core_codes;
use mcx_model::api::{
    CreateGroupRequest, GroupList, InterconnectionStatus, Problem, ShareRequest, SubscriptionInfo,
};
use mcx_model::group::{GroupConfiguration, GroupRecord};

use super::AppState;
use super::extract::{AppJson, Caller, GroupIdPath, if_match, if_none_match, not_modified};
use super::problem::ApiError;

/// The path of a group's resource, its ID percent-encoded.
pub(crate) fn group_path(group: &mcx_model::McServiceGroupId) -> String {
    format!(
        "/v1/groups/{}",
        percent_encoding::utf8_percent_encode(group.as_str(), percent_encoding::NON_ALPHANUMERIC)
    )
}

fn with_etag(status: StatusCode, group: GroupRecord) -> Response {
    let etag = HeaderValue::from_str(&group.etag()).ok();
    let mut response = (status, Json(group)).into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// The groups the caller may see: all for group administrators, else those the caller is
/// a member of or whose IDs the caller's profile lists.
#[utoipa::path(get, path = "/v1/groups", tag = "groups", security(("bearer" = [])),
    responses(
        (status = 200, description = "The groups", body = GroupList),
        (status = 401, description = "Not logged on", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GroupList>, ApiError> {
    let groups = state.system.gms.groups(&caller.requester).await?;
    Ok(Json(GroupList { groups }))
}

/// Defines a group in this system (group administrators). Its ID must be in this
/// system's domain. The GMS generates its first key material.
#[utoipa::path(post, path = "/v1/groups", tag = "groups", security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses(
        (status = 201, description = "Created", body = GroupRecord,
            headers(("ETag" = String, description = "The version"), ("Location" = String, description = "The group's resource"))),
        (status = 400, description = "Configuration not valid, or the ID is another system's", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group exists", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Body not of the expected shape", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(request): AppJson<CreateGroupRequest>,
) -> Result<Response, ApiError> {
    let group = state
        .system
        .gms
        .create_group(&caller.requester, request)
        .await?;
    let location = HeaderValue::from_str(&group_path(&group.mc_service_group_id)).ok();
    let mut response = with_etag(StatusCode::CREATED, group);
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Reads a group. With `If-None-Match` naming the current version, answers 304.
#[utoipa::path(get, path = "/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)", example = "sip:ops@police.example")),
    responses(
        (status = 200, description = "The group", body = GroupRecord, headers(("ETag" = String, description = "The version"))),
        (status = 304, description = "Not modified since the version named in If-None-Match"),
        (status = 403, description = "The caller may not read it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tags = if_none_match(&headers)?;
    let group = state.system.gms.group(&caller.requester, &id).await?;
    if not_modified(&tags, group.version) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(etag) = HeaderValue::from_str(&group.etag()) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        return Ok(response);
    }
    Ok(with_etag(StatusCode::OK, group))
}

/// Replaces a group's configuration (group administrators; groups defined here only).
/// `If-Match` with the ETag read is required; a stale one gets 412.
#[utoipa::path(put, path = "/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "MC service group ID (percent-encoded)"),
        ("If-Match" = String, Header, description = "The ETag of the version being replaced, or *"),
    ),
    request_body = GroupConfiguration,
    responses(
        (status = 200, description = "Updated", body = GroupRecord, headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Configuration not valid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Defined in another system", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The group changed since that version", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    headers: HeaderMap,
    AppJson(configuration): AppJson<GroupConfiguration>,
) -> Result<Response, ApiError> {
    let precondition = if_match(&headers)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            core_codes::PRECONDITION_REQUIRED,
            "updating a group needs 'If-Match' with the ETag you read (or '*' to overwrite whatever is there)",
        )
    })?;
    let group = state
        .system
        .gms
        .update_group(&caller.requester, &id, precondition, configuration)
        .await?;
    Ok(with_etag(StatusCode::OK, group))
}

/// Deletes a group (group administrators; groups defined here only). Subscribed clients
/// are told. `If-Match` is optional.
#[utoipa::path(delete, path = "/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "MC service group ID (percent-encoded)"),
        ("If-Match" = Option<String>, Header, description = "Delete only if still at this version"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The group changed since that version", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let precondition = if_match(&headers)?;
    state
        .system
        .gms
        .delete_group(&caller.requester, &id, precondition)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Subscribes this client to the group's configuration: every change is pushed on its
/// event stream (`group-configuration-changed`, `group-deleted`).
#[utoipa::path(put, path = "/v1/groups/{id}/subscription", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)")),
    responses(
        (status = 200, description = "Subscribed; the group as stored now", body = SubscriptionInfo),
        (status = 403, description = "The caller may not read the group", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<Json<SubscriptionInfo>, ApiError> {
    let group = state
        .system
        .gms
        .subscribe_client(&caller.requester, &id)
        .await?;
    Ok(Json(SubscriptionInfo {
        mc_service_group_id: id,
        group,
    }))
}

/// Ends this client's subscription to the group.
#[utoipa::path(delete, path = "/v1/groups/{id}/subscription", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)")),
    responses(
        (status = 204, description = "Unsubscribed"),
        (status = 404, description = "Not subscribed", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<StatusCode, ApiError> {
    state
        .system
        .gms
        .unsubscribe_client(&caller.requester, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Provides the group's configuration to a partner system (TS 23.280 §10.2.7.2, by an
/// administrator). Delivery is durable: it is retried while the partner is unreachable,
/// and its progress shows in `GET /v1/groups/{id}/interconnection`.
#[utoipa::path(post, path = "/v1/groups/{id}/shares", tag = "interconnection", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)")),
    request_body = ShareRequest,
    responses(
        (status = 202, description = "Queued for delivery", body = InterconnectionStatus),
        (status = 400, description = "Not a partner", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a group administrator, or the partner may not receive configuration", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group is defined in another system", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn share(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    AppJson(request): AppJson<ShareRequest>,
) -> Result<(StatusCode, Json<InterconnectionStatus>), ApiError> {
    let status = state
        .system
        .gms
        .share_group(&caller.requester, &id, &request.partner)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// Generates new key material for the group (group administrators; groups defined
/// here). Subscribed partner systems are notified with the new key (§10.2.7.5).
#[utoipa::path(post, path = "/v1/groups/{id}/rekey", tag = "interconnection", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)")),
    responses(
        (status = 200, description = "Rekeyed; a new version", body = GroupRecord, headers(("ETag" = String, description = "The new version"))),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The group is defined in another system", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn rekey(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<Response, ApiError> {
    let group = state.system.gms.rekey_group(&caller.requester, &id).await?;
    Ok(with_etag(StatusCode::OK, group))
}

/// Requests a partner-homed group's configuration from its primary system (§10.2.7.3, by
/// an administrator). The answer arrives asynchronously; see the interconnection status.
#[utoipa::path(post, path = "/v1/groups/{id}/fetch", tag = "interconnection", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)")),
    responses(
        (status = 202, description = "Requested", body = InterconnectionStatus),
        (status = 400, description = "The group is defined here, or its system is not a partner", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a group administrator, or the primary may not be asked", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<(StatusCode, Json<InterconnectionStatus>), ApiError> {
    let status = state.system.gms.fetch_group(&caller.requester, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// How the group is shared between systems: at its primary, each partner's delivery and
/// subscription; at a partner, its link to the primary (group administrators). Partner
/// certificates the interconnection endpoint refused are listed when they name a system
/// the group is shared with, or no partner at all.
#[utoipa::path(get, path = "/v1/groups/{id}/interconnection", tag = "interconnection", security(("bearer" = [])),
    params(("id" = String, Path, description = "MC service group ID (percent-encoded)")),
    responses(
        (status = 200, description = "The status", body = InterconnectionStatus),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such group", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn interconnection(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
) -> Result<Json<InterconnectionStatus>, ApiError> {
    let mut status = state
        .system
        .gms
        .interconnection_status(&caller.requester, &id)
        .await?;
    let involved = status
        .partners
        .iter()
        .map(|p| p.partner.to_string())
        .chain(std::iter::once(status.home_system.to_string()))
        .collect();
    status.certificate_refusals = state.certificate_refusals.concerning(&involved);
    Ok(Json(status))
}
