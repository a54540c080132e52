//! `GET /v1/system` and `GET /v1/openapi.json`.

use axum::Json;
use axum::extract::State;
use mcx_model::api::{
    PartnerLinkState, PartnerList, PartnerStatus, Problem, SystemInfo, SystemResources,
};
use mcx_model::profile::Permission;

use super::AppState;
use super::extract::Caller;
use super::problem::ApiError;

/// Which MC system this is. No log-on needed.
#[utoipa::path(get, path = "/v1/system", tag = "system",
    responses((status = 200, description = "This system", body = SystemInfo)))]
pub(super) async fn info(State(state): State<AppState>) -> Json<SystemInfo> {
    let settings = &state.system.settings;
    Json(SystemInfo {
        domain: settings.domain.clone(),
        name: settings.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

/// What the server process uses (group administrators): memory now and at its peak, open
/// files. Read from `/proc/self` on Linux; absent elsewhere.
#[utoipa::path(get, path = "/v1/system/resources", tag = "system", security(("bearer" = [])),
    responses(
        (status = 200, description = "The process's resources", body = SystemResources),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn resources(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SystemResources>, ApiError> {
    caller.requester.require(
        Permission::GroupAdministration,
        "read the server's resources",
    )?;
    let mut resources = read_resources();
    resources.listeners = vec![
        state.listeners.client_api.stats("client-api"),
        state.listeners.interconnection.stats("interconnection"),
    ];
    Ok(Json(resources))
}

/// The partner systems and how far behind their flows are (group administrators): the
/// console's overview, and what `/metrics` reports per partner.
#[utoipa::path(get, path = "/v1/system/partners", tag = "system", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every configured partner", body = PartnerList),
        (status = 403, description = "Not a group administrator", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn partners(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<PartnerList>, ApiError> {
    caller
        .requester
        .require(Permission::GroupAdministration, "read the partner links")?;
    Ok(Json(PartnerList {
        partners: partner_statuses(&state.system, time::OffsetDateTime::now_utc()).await?,
    }))
}

/// Each configured partner with what waits for it, as of `now`, ordered by domain: for
/// `GET /v1/system/partners` and the scrape's partner gauges.
pub(crate) async fn partner_statuses(
    system: &mcx_core::McSystem,
    now: time::OffsetDateTime,
) -> Result<Vec<PartnerStatus>, ApiError> {
    let backlog = system
        .outbox_backlog()
        .await
        .map_err(mcx_core::error::Error::from)?;
    let mut partners: Vec<PartnerStatus> = system
        .gateway
        .partners()
        .all()
        .map(|p| {
            let waiting = backlog.iter().find(|b| b.partner == p.domain);
            PartnerStatus {
                partner: p.domain.clone(),
                link: if waiting.is_some_and(|b| b.failing) {
                    PartnerLinkState::Down
                } else {
                    PartnerLinkState::Up
                },
                outbox_depth: waiting.map_or(0, |b| b.depth),
                oldest_queued_at: waiting.map(|b| b.oldest),
                oldest_age_seconds: waiting.map_or(0, |b| {
                    u64::try_from((now - b.oldest).whole_seconds()).unwrap_or(0)
                }),
                last_error: waiting.and_then(|b| b.last_error.clone()),
            }
        })
        .collect();
    partners.sort_by(|a, b| a.partner.cmp(&b.partner));
    Ok(partners)
}

fn read_resources() -> SystemResources {
    // VmRSS / VmHWM lines read "VmRSS:    123456 kB".
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kilobytes = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
    };
    let open_files = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64);
    SystemResources {
        resident_memory_bytes: kilobytes("VmRSS:"),
        peak_resident_memory_bytes: kilobytes("VmHWM:"),
        open_files,
        listeners: Vec::new(),
    }
}

/// This API's OpenAPI 3.1 description (served by the router; declared here so the
/// description lists itself).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
#[expect(
    dead_code,
    reason = "declares the route for the OpenAPI document; the router serves it"
)]
pub(super) async fn openapi_json() {}
