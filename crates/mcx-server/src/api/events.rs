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

use super::AppState;
use super::extract::Caller;
use super::problem::{ApiError, codes};

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
    let cursor = from_header.or(query.last_event_id).unwrap_or(0).max(0);
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

    // The stream is polled by the connection itself: no task and no channel of its own
    // per stream (an idle stream is what thousands of clients hold all day).
    let feed = Feed {
        waker: state.system.wakers.waker(&session),
        system: state.system.clone(),
        session,
        peer,
        cursor,
        read_through: None,
        ready: std::collections::VecDeque::new(),
        shutdown: state.shutdown.clone(),
        _open: crate::metrics::OpenStream::opened(),
    };
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.ready.pop_front() {
                return Some((Ok(event), feed));
            }
            if !feed.fill().await {
                return None;
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One client's stream: where it stands and what is ready to send.
struct Feed {
    system: std::sync::Arc<mcx_core::system::McSystem>,
    session: String,
    /// The client, as the trace names it.
    peer: String,
    /// The last event sent.
    cursor: i64,
    /// The waker's count before the last read that found everything there was: while it
    /// has not moved, nothing new was committed for the session.
    read_through: Option<u64>,
    waker: std::sync::Arc<mcx_core::events::SessionWaker>,
    ready: std::collections::VecDeque<Event>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Counted as open while it lives (a unit struct: no memory per stream).
    _open: crate::metrics::OpenStream,
}

impl Feed {
    /// Waits until there is something to send; false when the stream ends (the session
    /// ended, or the server shuts down).
    async fn fill(&mut self) -> bool {
        loop {
            let waker = self.waker.clone();
            let notified = waker.notified();
            tokio::pin!(notified);
            // Enabled before the read, so a wake-up during it is not missed.
            notified.as_mut().enable();
            let woken = waker.woken();
            if self.read_through != Some(woken) {
                // Boxed: the read's state lives only while it runs, so a waiting stream
                // holds just the few words below.
                let read = Box::pin(self.system.events.fetch(&self.session, self.cursor)).await;
                match read {
                    Ok(Some(fetched)) => {
                        for delivered in fetched.events {
                            self.cursor = delivered.id;
                            if let Some(event) = self.encode(&delivered) {
                                self.ready.push_back(event);
                            }
                        }
                        // Everything committed before the wake-up counted was in it.
                        self.read_through = (!fetched.more).then_some(woken);
                        if !self.ready.is_empty() {
                            return true;
                        }
                        if fetched.more {
                            continue;
                        }
                    }
                    Ok(None) => return false, // the session ended
                    Err(e) => {
                        self.read_through = None;
                        tracing::warn!(error = %e, session = %self.session, "event stream: reading events failed; retrying");
                    }
                }
            }
            // Woken by this node's commits, and on PostgreSQL by the other nodes' (see
            // `SqlStore::relay_wakeups`): an idle stream makes no store query.
            tokio::select! {
                _ = &mut notified => {}
                _ = self.shutdown.wait_for(|down| *down) => return false,
            }
        }
    }

    /// The SSE event of a stored event, recorded in the trace as the flow it carries.
    fn encode(&self, delivered: &mcx_model::events::DeliveredEvent) -> Option<Event> {
        let data = serde_json::to_string(&delivered.event).ok()?;
        if let Some((entity, flow)) = super::trace::event_flow(&delivered.event) {
            self.system.trace.record(mcx_core::trace::Flow {
                entity,
                direction: mcx_core::trace::Direction::Sent,
                peer: self.peer.clone(),
                flow,
                correlation: delivered.id.to_string(),
                elements: super::trace::event_elements(&delivered.event),
            });
        }
        Some(
            Event::default()
                .id(delivered.id.to_string())
                .event(delivered.event.name())
                .data(data),
        )
    }
}
