//! The client HTTP API under `/v1`: JSON, bearer-token sessions, an SSE event stream per
//! logged-on client, and an OpenAPI 3.1 description generated from these handlers.
//!
//! Handlers are thin: they authenticate, decode, call one entity of `mcx_core`, and encode.

mod acm;
mod affiliation;
mod events;
pub(crate) mod extract;
mod groups;
pub mod problem;
mod regroup;
mod session;
pub(crate) mod system;
mod trace;
mod xcap;

pub use xcap::DEFAULT_ROOT as XCAP_ROOT;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use mcx_core::McSystem;
use tokio::sync::watch;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The MC system.
    pub system: Arc<McSystem>,
    /// Becomes true when the server shuts down; open event streams end then.
    pub shutdown: watch::Receiver<bool>,
    /// Both listeners' connection counters.
    pub listeners: Arc<crate::listener::Listeners>,
    /// Partner certificates the interconnection endpoint refused.
    pub certificate_refusals: Arc<crate::interconnect::refusals::CertificateRefusals>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mcx client API",
        description = "One MC system's API for its MC service clients: log-on, group management, and the event stream that carries every notification. Errors are RFC 9457 problem documents with a stable `code`.",
        license(name = "Apache-2.0")
    ),
    paths(system::openapi_json),
    modifiers(&BearerAuth),
    components(schemas(mcx_model::api::Problem, mcx_model::events::ClientEvent)),
    tags(
        (name = "session", description = "Log on, log off, and the client's event stream"),
        (name = "groups", description = "The group management server: group configuration"),
        (name = "affiliation", description = "Affiliation, de-affiliation and remote change of affiliation (TS 23.280 §10.8)"),
        (name = "acm", description = "Interconnection group IDs for partner users through the ACM servers, store-and-forward (TR 23.700-38)"),
        (name = "regroup", description = "Preconfigured group regroup across MC systems (TS 23.280 §10.15.3.3.1)"),
        (name = "interconnection", description = "Group configuration for interconnection between MC systems (TS 23.280 §10.2.7)"),
        (name = "system", description = "This MC system and this API"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The token from POST /v1/session"))
                    .build(),
            ),
        );
    }
}

/// The router of the client API, and its OpenAPI description.
pub fn router(state: AppState, max_body_bytes: usize, xcap_root: &str) -> axum::Router {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::log_on, session::current, session::log_off))
        .routes(routes!(events::stream))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::read, groups::update, groups::delete))
        .routes(routes!(groups::subscribe, groups::unsubscribe))
        .routes(routes!(groups::share))
        .routes(routes!(groups::rekey))
        .routes(routes!(groups::fetch))
        .routes(routes!(groups::interconnection))
        .routes(routes!(affiliation::affiliate, affiliation::own))
        .routes(routes!(affiliation::deaffiliate))
        .routes(routes!(affiliation::of_user))
        .routes(routes!(affiliation::of_group))
        .routes(routes!(affiliation::request_change))
        .routes(routes!(affiliation::change))
        .routes(routes!(affiliation::answer_change))
        .routes(routes!(regroup::create, regroup::list))
        .routes(routes!(regroup::read, regroup::cancel))
        .routes(routes!(regroup::acknowledge))
        .routes(routes!(acm::provide, acm::sent))
        .routes(routes!(acm::received))
        .routes(routes!(acm::pending))
        .routes(routes!(acm::respond))
        .routes(routes!(acm::apply))
        .routes(routes!(system::info))
        .routes(routes!(system::resources))
        .routes(routes!(system::partners))
        .routes(routes!(trace::list))
        .split_for_parts();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_string();
    let openapi = Arc::new(openapi);
    let traced = axum::middleware::from_fn_with_state(state.clone(), trace::record_client_flows);
    router
        .route_layer(traced)
        .route("/metrics", get(crate::metrics::scrape))
        .route_layer(axum::middleware::from_fn(crate::metrics::count_requests))
        .route(
            "/v1/openapi.json",
            get({
                let openapi = openapi.clone();
                move || async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .merge(xcap::routes(xcap_root))
        .merge(crate::console::routes(xcap_root))
        .fallback(problem::no_route)
        .method_not_allowed_fallback(problem::wrong_method)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}
