//! The XCAP door to the GMS (RFC 4825; TS 24.481 group documents): the same groups, the
//! same checks, another encoding. A group's document lives at
//! `/xcap-root/org.openmobilealliance.groups/global/byGroupID/<percent-encoded group ID>`
//! (`global/byGroup/` is accepted too, as older clients spell it). This slice serves
//! documents (GET, with the group's version as a strong ETag and `If-None-Match`); see
//! `docs/stage3.md` for the mapping and what is not yet supported.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcx_model::group_document;

use super::AppState;
use super::extract::{Caller, GroupIdPath, if_none_match, not_modified};
use super::problem::ApiError;

/// The XCAP root of this server.
pub(super) const XCAP_ROOT: &str = "/xcap-root";

/// The routes under the XCAP root.
pub(super) fn routes() -> axum::Router<AppState> {
    let tree = format!("{XCAP_ROOT}/{}/global", group_document::AUID);
    axum::Router::new()
        .route(
            &format!("{tree}/byGroupID/{{id}}"),
            axum::routing::get(document),
        )
        .route(
            &format!("{tree}/byGroup/{{id}}"),
            axum::routing::get(document),
        )
}

/// GET of a group document: for members and group administrators, as the JSON API.
async fn document(
    State(state): State<AppState>,
    caller: Caller,
    GroupIdPath(id): GroupIdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tags = if_none_match(&headers)?;
    let group = state.system.gms.group(&caller.requester, &id).await?;
    let etag = HeaderValue::from_str(&group.etag()).ok();
    let mut response = if not_modified(&tags, group.version) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(group_document::MEDIA_TYPE),
            )],
            group_document::encode(&id, &group.configuration),
        )
            .into_response()
    };
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}
