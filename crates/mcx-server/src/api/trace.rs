//! The client side of the flow trace: requests and responses of the client API recorded
//! as the information flows they carry, and `GET /v1/trace`.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use mcx_core::trace::{Direction, Flow};
use mcx_model::api::{Problem, TraceList};
use mcx_model::profile::Permission;
use serde::Deserialize;

use super::AppState;
use super::extract::{AppQuery, Caller};
use super::problem::ApiError;

/// Filled by the authentication extractor with who is calling, for the trace.
#[derive(Clone, Default)]
pub(crate) struct TracePeer(pub(crate) Arc<Mutex<Option<String>>>);

/// The entity a route belongs to and the flows its request and response carry.
fn flows_of(
    method: &Method,
    path: &str,
) -> Option<(&'static str, &'static str, Option<&'static str>)> {
    Some(match (method.as_str(), path) {
        ("POST", "/v1/session") => ("identity management", "Log on", None),
        ("DELETE", "/v1/session") => ("identity management", "Log off", None),
        ("POST", "/v1/groups") => (
            "GMS",
            "Group creation request",
            Some("Group creation response"),
        ),
        ("PUT", "/v1/groups/{id}") => (
            "GMS",
            "Group configuration update request",
            Some("Group configuration update response"),
        ),
        ("DELETE", "/v1/groups/{id}") => (
            "GMS",
            "Group deletion request",
            Some("Group deletion response"),
        ),
        ("PUT", "/v1/groups/{id}/subscription") => (
            "GMS",
            "Group configuration subscribe request",
            Some("Group configuration subscribe response"),
        ),
        ("POST", "/v1/groups/{id}/shares") => ("GMS", "Group share request (administrator)", None),
        ("POST", "/v1/groups/{id}/rekey") => ("GMS", "Group rekey request (administrator)", None),
        ("POST", "/v1/groups/{id}/fetch") => ("GMS", "Group fetch request (administrator)", None),
        ("POST", "/v1/affiliations") => (
            "MC service server",
            "MC service group affiliation request",
            Some("MC service group affiliation response"),
        ),
        ("POST", "/v1/deaffiliations") => (
            "MC service server",
            "MC service group de-affiliation request",
            Some("MC service group de-affiliation response"),
        ),
        ("POST", "/v1/affiliation-changes") => (
            "MC service server",
            "MC service group affiliation change request",
            Some("MC service group affiliation change response"),
        ),
        ("POST", "/v1/affiliation-changes/{id}/response") => (
            "MC service server",
            "MC service group affiliation change response",
            None,
        ),
        ("POST", "/v1/regroups") => (
            "MC service server",
            "Preconfigured regroup request",
            Some("Preconfigured regroup response"),
        ),
        ("DELETE", "/v1/regroups/{id}") => (
            "MC service server",
            "Preconfigured regroup cancel request",
            Some("Preconfigured regroup cancel response"),
        ),
        ("POST", "/v1/regroups/{id}/response") => {
            ("MC service server", "Preconfigured regroup response", None)
        }
        ("POST", "/v1/acm/provisions") => {
            ("ACM server", "Group information provision request", None)
        }
        ("GET", "/v1/acm/pending") => (
            "ACM server",
            "Download of pending ACM data request",
            Some("Download of pending ACM data response"),
        ),
        ("POST", "/v1/acm/requests/{id}/response") => {
            ("ACM server", "Group information provision response", None)
        }
        ("POST", "/v1/acm/requests/{id}/apply") => (
            "ACM server",
            "Interconnection group IDs applied to profiles",
            None,
        ),
        _ => return None,
    })
}

/// Records a traced route's request (received) and response (sent).
pub(crate) async fn record_client_flows(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some((entity, request_flow, response_flow)) = matched
        .as_ref()
        .and_then(|m| flows_of(request.method(), m.as_str()))
    else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    let peer = TracePeer::default();
    request.extensions_mut().insert(peer.clone());
    let arrived = time::OffsetDateTime::now_utc();
    let response = next.run(request).await;
    let who = peer
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| "MC service client".to_string());
    let trace = &state.system.trace;
    let status = response.status();
    let elements = serde_json::json!({ "path": path, "status": status.as_u16() });
    trace.record_at(
        arrived,
        Flow {
            entity,
            direction: Direction::Received,
            peer: who.clone(),
            flow: request_flow,
            correlation: path.clone(),
            elements: serde_json::json!({ "path": path }),
        },
    );
    let answered = match (request_flow, status.as_u16()) {
        // The request return (4b) was sent when the regroup was authorised.
        ("Preconfigured regroup request", 201) => response_flow,
        // Step 4a is traced by the MC service server, with its elements (a regroup a
        // partner refused shows in the partner flows before it).
        ("Preconfigured regroup request", 409) => None,
        ("Preconfigured regroup request", 403) => Some("Preconfigured regroup request return"),
        ("MC service group affiliation change request", 202) => None,
        (_, code) if (200..300).contains(&code) => response_flow,
        _ => Some("Refusal (problem document)"),
    };
    if let Some(flow) = answered {
        trace.record(Flow {
            entity,
            direction: Direction::Sent,
            peer: who,
            flow,
            correlation: path,
            elements,
        });
    }
    response
}

/// The entity and flow title of an event pushed to a client.
/// The key elements of a delivered event for the trace: a changed group is named by ID,
/// version and name (its whole document goes to every subscriber and would fill the
/// trace); other events are small and kept whole.
pub(crate) fn event_elements(event: &mcx_model::events::ClientEvent) -> serde_json::Value {
    match event {
        mcx_model::events::ClientEvent::GroupConfigurationChanged { group, .. } => {
            serde_json::json!({
                "event": event.name(),
                "mc-service-group-id": group.mc_service_group_id,
                "version": group.version,
                "display-name": group.configuration.display_name,
                "key-material-generation": group.key_material.as_ref().map(|k| k.generation),
            })
        }
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

pub(crate) fn event_flow(
    event: &mcx_model::events::ClientEvent,
) -> Option<(&'static str, &'static str)> {
    use mcx_model::events::ClientEvent as E;
    Some(match event {
        // Traced when the MC service server emitted it (step 4b), before step 5.
        E::RegroupRequestReturn(_) => return None,
        E::GroupConfigurationChanged { .. } => ("GMS", "Group configuration notification"),
        E::GroupDeleted { .. } => ("GMS", "Group deletion notification"),
        E::GroupCopyBehind { .. } => ("GMS", "Group configuration behind its primary"),
        E::AffiliationStatusChanged { .. } => (
            "MC service server",
            "MC service group affiliation response (host answered)",
        ),
        E::AffiliationChangeRequested { .. } => (
            "MC service server",
            "MC service group affiliation change request",
        ),
        E::AffiliationChangeCompleted { .. } => (
            "MC service server",
            "MC service group affiliation change response",
        ),
        E::AffiliationChangeAcknowledged { .. } => (
            "MC service server",
            "MC service group affiliation change response (target acknowledged)",
        ),
        E::RegroupCompleted { .. } => ("MC service server", "Preconfigured regroup response"),
        E::RegroupRequested { .. } => ("MC service server", "Preconfigured regroup request"),
        E::RegroupCancelled { .. } => ("MC service server", "Preconfigured regroup cancel request"),
        E::AcmPendingData(_) => ("ACM server", "Pending ACM data notification"),
        E::AcmProvisionStored(_) => (
            "ACM server",
            "Group information provision stored indication",
        ),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "kebab-case")]
pub(super) struct TraceQuery {
    /// Entries after this position (`seq`); 0 for the oldest kept.
    #[serde(default)]
    after: u64,
    /// At most this many entries (default 1000, at most 10000).
    limit: Option<usize>,
}

/// The flows this server sent and received (group administrators): time, entity, peer,
/// flow, correlation, key elements. The newest 50,000 are kept.
#[utoipa::path(get, path = "/v1/trace", tag = "system", security(("bearer" = [])),
    params(TraceQuery),
    responses(
        (status = 200, description = "The trace", body = TraceList),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(query): AppQuery<TraceQuery>,
) -> Result<Json<TraceList>, ApiError> {
    caller
        .requester
        .require(Permission::GroupAdministration, "read the flow trace")?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000);
    Ok(Json(TraceList {
        entries: state.system.trace.after(query.after, limit),
    }))
}
