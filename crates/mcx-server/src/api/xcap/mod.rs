//! The XCAP door to the GMS (RFC 4825; TS 24.481 group documents): the same groups, the
//! same checks, another encoding. A group's document lives at
//! `<xcap-root>/org.openmobilealliance.groups/global/byGroupID/<percent-encoded group ID>`
//! (`global/byGroup/` is accepted too, as older clients spell it). GET, PUT (create or
//! replace) and DELETE, with the group's version as a strong ETag; see `docs/stage3.md`
//! for the mapping and what is not yet supported.

mod error;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcx_core::error::ErrorKind;
use mcx_core::gms::Precondition;
use mcx_model::api::CreateGroupRequest;
use mcx_model::group::GroupRecord;
use mcx_model::group_document::{self, DocumentError, DocumentErrorKind};

use self::error::XcapError;
use super::AppState;
use super::extract::{Caller, GroupIdPath, if_match, if_none_match, not_modified};
use super::problem::{ApiError, codes};

/// The default XCAP root.
pub const DEFAULT_ROOT: &str = "/xcap-root";

/// The routes under the XCAP root `root`.
pub(super) fn routes(root: &str) -> axum::Router<AppState> {
    let tree = format!(
        "{}/{}/global",
        root.trim_end_matches('/'),
        group_document::AUID
    );
    let document = || {
        axum::routing::get(read)
            .put(write)
            .delete(remove)
            .post(operation)
    };
    axum::Router::new()
        .route(&format!("{tree}/byGroupID/{{id}}"), document())
        .route(&format!("{tree}/byGroup/{{id}}"), document())
        .route(
            &format!("{tree}/byGroupID/{{id}}/~~/{{*selector}}"),
            axum::routing::get(read_node),
        )
        .route(
            &format!("{tree}/byGroup/{{id}}/~~/{{*selector}}"),
            axum::routing::get(read_node),
        )
}

/// The document with its ETag.
fn served(status: StatusCode, group: &GroupRecord) -> Response {
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(group_document::MEDIA_TYPE),
        )],
        group_document::encode(&group.mc_service_group_id, &group.configuration),
    )
        .into_response();
    with_etag(&mut response, group);
    response
}

fn with_etag(response: &mut Response, group: &GroupRecord) {
    if let Ok(etag) = HeaderValue::from_str(&group.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
}

/// GET of a group document: for members and group administrators, as the JSON API.
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tags = if_none_match(&headers)?;
    let group = state.system.gms.group(&caller.requester, &id).await?;
    if not_modified(&tags, group.version) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        with_etag(&mut response, &group);
        return Ok(response);
    }
    Ok(served(StatusCode::OK, &group))
}

/// GET of one element or attribute of a group document (RFC 4825 §6.3 node selector),
/// for whoever may read the document.
async fn read_node(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((raw_id, selector)): axum::extract::Path<(String, String)>,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let id = mcx_model::McServiceGroupId::parse(&raw_id)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_PATH, e.to_string()))?;
    let group = state.system.gms.group(&caller.requester, &id).await?;
    let document = group_document::encode(&id, &group.configuration);
    let query = uri.query().map(|q| {
        percent_encoding::percent_decode_str(q)
            .decode_utf8_lossy()
            .into_owned()
    });
    let selected =
        group_document::select(&document, &selector, query.as_deref()).map_err(|e| match e {
            group_document::SelectorError::Malformed(why) => {
                ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_PATH, why)
            }
            group_document::SelectorError::NoNode(why) => {
                ApiError::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, why)
            }
        })?;
    let (media, body) = match selected {
        group_document::Selected::Element(xml) => ("application/xcap-el+xml", xml),
        group_document::Selected::Attribute(value) => ("application/xcap-att+xml", value),
    };
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(media))],
        body,
    )
        .into_response();
    with_etag(&mut response, &group);
    Ok(response)
}

/// POST of a group management operation (TS 24.481 §6.3.16): the document without its
/// member list, for whoever may read the document.
async fn operation(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, XcapError> {
    require_media(
        &headers,
        group_document::GMOP_MEDIA_TYPE,
        "a group management operation",
    )?;
    match group_document::gmop_request(&body)? {
        group_document::GmopRequest::GetExcludingMemberList => {
            let group = state.system.gms.group(&caller.requester, &id).await?;
            let mut response = (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(group_document::MEDIA_TYPE),
                )],
                group_document::encode_without_members(&id, &group.configuration),
            )
                .into_response();
            with_etag(&mut response, &group);
            Ok(response)
        }
    }
}

/// 415 unless the body is of `media`.
fn require_media(headers: &HeaderMap, media: &str, what: &str) -> Result<(), XcapError> {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default();
    if sent.eq_ignore_ascii_case(media) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        codes::UNSUPPORTED_MEDIA_TYPE,
        format!("{what} is sent as {media}"),
    )
    .into())
}

/// PUT of a group document (group administrators): creates the group (201) or replaces
/// its configuration (200). `If-None-Match: *` creates only, `If-Match` replaces only
/// the version named; otherwise 412 and nothing changes.
async fn write(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, XcapError> {
    require_media(&headers, group_document::MEDIA_TYPE, "a group document")?;
    let only_new = if_none_match(&headers)?.is_some_and(|tags| tags.contains(&None));
    let precondition = if_match(&headers)?;
    let (named, mut configuration) = group_document::decode(&body)?;
    if named != id {
        return Err(DocumentError {
            kind: DocumentErrorKind::ConstraintFailure,
            phrase: format!("the document is for '{named}' but was sent to the document of '{id}'"),
        }
        .into());
    }
    let gms = &state.system.gms;
    let current = match gms.group(&caller.requester, &id).await {
        Ok(group) => Some(group),
        Err(mcx_core::error::Error::Refused {
            kind: ErrorKind::NotFound,
            ..
        }) => None,
        Err(other) => return Err(other.into()),
    };
    match current {
        None => {
            if matches!(precondition, Some(Precondition::Version(_))) {
                return Err(precondition_failed(format!(
                    "there is no group '{id}' to replace; send If-None-Match: * (or no condition) to create it"
                )));
            }
            let group = gms
                .create_group(
                    &caller.requester,
                    CreateGroupRequest {
                        mc_service_group_id: id,
                        configuration,
                    },
                )
                .await?;
            Ok(served(StatusCode::CREATED, &group))
        }
        Some(current) => {
            if only_new {
                return Err(precondition_failed(format!(
                    "group '{id}' exists (ETag {}); If-None-Match: * only creates",
                    current.etag()
                )));
            }
            // What the document cannot carry stays as it is.
            configuration.permitted_locations = current.configuration.permitted_locations;
            let group = gms
                .update_group(
                    &caller.requester,
                    &id,
                    precondition.unwrap_or(Precondition::Any),
                    configuration,
                )
                .await?;
            Ok(served(StatusCode::OK, &group))
        }
    }
}

/// DELETE of a group document (group administrators), optionally only at the version
/// `If-Match` names.
async fn remove(
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
    Ok(StatusCode::OK)
}

fn precondition_failed(detail: String) -> XcapError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        mcx_core::error::codes::VERSION_MISMATCH,
        detail,
    )
    .into()
}
