//! `GET /v1/system` and `GET /v1/openapi.json`.

use axum::Json;
use axum::extract::State;
use mcx_model::api::SystemInfo;

use super::AppState;

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

/// This API's OpenAPI 3.1 description (served by the router; declared here so the
/// description lists itself).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
#[expect(
    dead_code,
    reason = "declares the route for the OpenAPI document; the router serves it"
)]
pub(super) async fn openapi_json() {}
