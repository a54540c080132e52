//! `GET /v1/events`: the client's event stream (Server-Sent Events). Every notification
//! for the session is stored before it is sent; a client that reconnects with
//! `Last-Event-ID` (header, or `last-event-id` query parameter) gets everything after it,
//! and the server forgets what the client has confirmed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mcx_model::api::Problem;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::extract::Caller;
use super::problem::{ApiError, codes};

/// With several nodes on one database, a stream re-checks the store at least this often
/// (a wake-up from another node cannot reach this one yet). A single node's streams wait
/// for its own wake-ups only: an idle stream costs no store query.
const POLL: Duration = Duration::from_secs(2);

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "kebab-case")]
pub(super) struct StreamQuery {
    /// Resume after this event ID (same as the Last-Event-ID header).
    last_event_id: Option<i64>,
}

/// The client's event stream. Each SSE event has `id:` (send it back as `Last-Event-ID`
/// when reconnecting), `event:` (the kind) and `data:` (a `ClientEvent` as JSON). The
/// stream ends when the session ends.
#[utoipa::path(get, path = "/v1/events", tag = "session", security(("bearer" = [])),
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event ID")),
    responses(
        (status = 200, description = "An event stream of ClientEvent", content_type = "text/event-stream"),
        (status = 401, description = "Not logged on", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    super::extract::AppQuery(query): super::extract::AppQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let from_header = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        codes::INVALID_HEADER,
                        "Last-Event-ID must be the numeric id of an event received on this stream",
                    )
                })?,
        ),
    };
    let mut cursor = from_header.or(query.last_event_id).unwrap_or(0).max(0);
    let session = caller.requester.session_id.clone();
    let peer = format!(
        "{} ({})",
        caller.requester.mc_service_id, caller.requester.client_id
    );
    if cursor > 0 {
        state
            .system
            .discard_events_through(&session, cursor)
            .await?;
    }

    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    let system = state.system.clone();
    let mut shutdown = state.shutdown.clone();
    let poll = (!state.system.settings.single_node).then_some(POLL);
    tokio::spawn(async move {
        let waker = system.wakers.waker(&session);
        loop {
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (batch, full) = match system.events.fetch(&session, cursor).await {
                Ok(Some(fetched)) => (fetched.events, fetched.more),
                Ok(None) => return, // the session ended
                Err(e) => {
                    tracing::warn!(error = %e, session, "event stream: reading events failed; retrying");
                    (Vec::new(), false)
                }
            };
            for delivered in batch {
                cursor = delivered.id;
                let Ok(data) = serde_json::to_string(&delivered.event) else {
                    continue;
                };
                if let Some((entity, flow)) = super::trace::event_flow(&delivered.event) {
                    system.trace.record(mcx_core::trace::Flow {
                        entity,
                        direction: mcx_core::trace::Direction::Sent,
                        peer: peer.clone(),
                        flow,
                        correlation: delivered.id.to_string(),
                        elements: super::trace::event_elements(&delivered.event),
                    });
                }
                let event = Event::default()
                    .id(delivered.id.to_string())
                    .event(delivered.event.name())
                    .data(data);
                if tx.send(Ok(event)).await.is_err() {
                    return; // the client went away
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = async {
                    match poll {
                        Some(every) => tokio::time::sleep(every).await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = tx.closed() => return,
                _ = shutdown.wait_for(|down| *down) => return,
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
