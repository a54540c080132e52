//! Prometheus metrics (issue 18): `GET /metrics` for group administrators. Counters and
//! histograms are recorded where things happen (requests here, flows in the core's
//! trace, affiliation answers in the MC service server, group-commit batches in the
//! store); gauges of state (outbox backlog, affiliations held, connections) are read
//! when scraped. The recorder is the process's: the first node of a process installs
//! it, and several nodes in one process (tests) share it.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mcx_model::profile::Permission;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::api::AppState;
use crate::api::extract::Caller;
use crate::api::problem::ApiError;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request latency buckets, in seconds.
const LATENCY: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
/// Writes per group commit.
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Installs the recorder once per process; `None` if another recorder is installed.
pub(crate) fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("mcx_group_commit_writes".into()), BATCH)
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(handle) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: no recorder installed; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The handles of the request series, by (route, method, status) and by route: a
/// request looks its series up here instead of building labels and asking the registry
/// (a sixth of the cheapest request's time in `mcx bench`). Routes are the declared
/// ones (a few dozen), each kept once as a `&'static str`, so the maps stay small.
#[derive(Default)]
struct RequestSeries {
    routes: Vec<&'static str>,
    counters: std::collections::HashMap<(&'static str, axum::http::Method, u16), metrics::Counter>,
    latencies: std::collections::HashMap<&'static str, metrics::Histogram>,
}

impl RequestSeries {
    fn route(&mut self, route: &str) -> &'static str {
        if let Some(known) = self.routes.iter().find(|r| **r == route) {
            return known;
        }
        let leaked: &'static str = Box::leak(route.to_string().into_boxed_str());
        self.routes.push(leaked);
        leaked
    }
}

static REQUEST_SERIES: std::sync::LazyLock<std::sync::Mutex<RequestSeries>> =
    std::sync::LazyLock::new(Default::default);

/// Counts each request by route, method and status, and times it.
pub(crate) async fn count_requests(
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let (counter, latency) = {
        let mut series = REQUEST_SERIES.lock().unwrap_or_else(|e| e.into_inner());
        let route = matched
            .as_ref()
            .map_or("unmatched", |m| series.route(m.as_str()));
        let counter = series
            .counters
            .entry((route, method.clone(), status))
            .or_insert_with(|| {
                metrics::counter!("mcx_http_requests_total", "route" => route, "method" => method.as_str().to_string(), "status" => status.to_string())
            })
            .clone();
        let latency = series
            .latencies
            .entry(route)
            .or_insert_with(
                || metrics::histogram!("mcx_http_request_duration_seconds", "route" => route),
            )
            .clone();
        (counter, latency)
    };
    latency.record(elapsed);
    counter.increment(1);
    response
}

/// An open client event stream, counted while it lives.
pub(crate) struct OpenStream;

impl OpenStream {
    pub(crate) fn opened() -> Self {
        metrics::gauge!("mcx_event_streams_open").increment(1.0);
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("mcx_event_streams_open").decrement(1.0);
    }
}

/// `GET /metrics`: the Prometheus text format (group administrators).
pub(crate) async fn scrape(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller
        .requester
        .require(Permission::GroupAdministration, "read the server's metrics")?;
    render(&state).await
}

/// `GET /metrics` on the metrics listener (`[server] metrics-listen`): no token; the
/// listener's address is what limits who may scrape.
pub(crate) async fn scrape_open(State(state): State<AppState>) -> Result<Response, ApiError> {
    render(&state).await
}

/// The metrics listener's router.
pub(crate) fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape_open))
        .fallback(crate::api::problem::no_route)
        .with_state(state)
}

async fn render(state: &AppState) -> Result<Response, ApiError> {
    let Some(handle) = install() else {
        return Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            String::new(),
        )
            .into_response());
    };
    read_state(state).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
        .into_response())
}

/// The gauges of state, read now.
async fn read_state(state: &AppState) -> Result<(), ApiError> {
    for (name, counters) in [
        ("client-api", &state.listeners.client_api),
        ("interconnection", &state.listeners.interconnection),
    ] {
        let stats = counters.stats(name);
        metrics::gauge!("mcx_connections_open", "listener" => name).set(stats.open as f64);
        metrics::counter!("mcx_connections_refused_over_limit_total", "listener" => name)
            .absolute(stats.refused_over_limit);
        metrics::counter!("mcx_connections_timed_out_total", "listener" => name)
            .absolute(stats.timed_out);
        metrics::counter!("mcx_connection_accept_errors_total", "listener" => name)
            .absolute(stats.accept_errors);
    }
    let now = time::OffsetDateTime::now_utc();
    for status in crate::api::system::partner_statuses(&state.system, now).await? {
        let partner = status.partner.to_string();
        let age = status
            .oldest_queued_at
            .map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
        metrics::gauge!("mcx_outbox_depth", "partner" => partner.clone())
            .set(status.outbox_depth as f64);
        metrics::gauge!("mcx_outbox_oldest_age_seconds", "partner" => partner.clone()).set(age);
        let up = status.link == mcx_model::api::PartnerLinkState::Up;
        metrics::gauge!("mcx_partner_link_up", "partner" => partner).set(if up {
            1.0
        } else {
            0.0
        });
    }
    let held = state
        .system
        .affiliations_held()
        .await
        .map_err(mcx_core::error::Error::from)?;
    metrics::gauge!("mcx_affiliations_held").set(held as f64);
    Ok(())
}
