//! Waking clients' event streams when their sessions get new events. The events
//! themselves are in the store; this only says "look again", so a missed wake-up costs a
//! poll interval at worst, never an event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mcx_model::events::DeliveredEvent;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::error::{Error, ErrorKind, Result, codes};
use crate::ports::{Effects, EventStore};

/// Commits effects that go with no other change, then wakes the event streams that got
/// events and the outbox dispatcher if requests to partners were queued. `false`: a
/// guarded write among them found its state moved on, and nothing was kept.
pub(crate) async fn commit_and_wake(
    commits: &dyn EventStore,
    wakers: &StreamWakers,
    outbox: &crate::outbox_signal::OutboxSignal,
    effects: &Effects,
) -> Result<bool> {
    let committed = commits.commit(effects).await?;
    if committed.conflict {
        return Ok(false);
    }
    wakers.wake(&committed.woken_sessions);
    outbox.committed(&committed);
    Ok(true)
}

/// A partner's transaction being handled: who sent it, and its ID.
pub(crate) type Inbound<'a> = (&'a mcx_model::SystemDomain, mcx_model::TransactionId);

/// What an entity answers a partner's flow.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Recorded with the flow's effects (or an earlier copy's answer).
    Recorded(mcx_model::flows::partner::PartnerResponse),
    /// Not recorded yet: the flow changed nothing, and the answer is recorded alone.
    Unrecorded(mcx_model::flows::partner::PartnerResponse),
}

/// The answer a partner's transaction got.
#[derive(Debug)]
pub(crate) enum Given {
    /// This handling's answer, committed with its effects.
    Now(mcx_model::flows::partner::PartnerResponse),
    /// The answer of a copy that committed first; this handling kept nothing.
    Before(mcx_model::flows::partner::PartnerResponse),
}

impl Given {
    pub(crate) fn answer(self) -> mcx_model::flows::partner::PartnerResponse {
        match self {
            Given::Now(answer) | Given::Before(answer) => answer,
        }
    }
}

/// Commits `effects` with `answer` to a partner's transaction, recorded under its unique
/// key (sender, transaction ID) in the same commit and checked first: the flow's effects
/// and its answer are kept together or not at all. `None`: a guarded write among
/// `effects` found its state moved on, and nothing was kept.
pub(crate) async fn commit_answer(
    commits: &dyn EventStore,
    answers: &dyn crate::ports::InterconnectionStore,
    wakers: &StreamWakers,
    outbox: &crate::outbox_signal::OutboxSignal,
    mut effects: Effects,
    (from, transaction): Inbound<'_>,
    answer: mcx_model::flows::partner::PartnerResponse,
) -> Result<Option<Given>> {
    effects.inbound_answer = Some(crate::ports::InboundAnswer {
        partner: from.clone(),
        transaction,
        answer: answer.clone(),
    });
    let committed = commits.commit(&effects).await?;
    if committed.conflict {
        return Ok(answers
            .inbound_answer(from, transaction)
            .await?
            .map(Given::Before));
    }
    wakers.wake(&committed.woken_sessions);
    outbox.committed(&committed);
    Ok(Some(Given::Now(answer)))
}

/// [`commit_answer`] of an answer with no other effect (a refusal, an answer already
/// known): always given, this one or an earlier copy's.
pub(crate) async fn commit_answer_alone(
    commits: &dyn EventStore,
    answers: &dyn crate::ports::InterconnectionStore,
    wakers: &StreamWakers,
    outbox: &crate::outbox_signal::OutboxSignal,
    inbound: Inbound<'_>,
    answer: mcx_model::flows::partner::PartnerResponse,
) -> Result<mcx_model::flows::partner::PartnerResponse> {
    commit_answer(
        commits,
        answers,
        wakers,
        outbox,
        Effects::none(),
        inbound,
        answer,
    )
    .await?
    .map(Given::answer)
    .ok_or_else(|| being_answered(inbound.1))
}

/// The answer a copy of a partner's transaction recorded first.
pub(crate) async fn recorded_answer(
    answers: &dyn crate::ports::InterconnectionStore,
    (from, transaction): Inbound<'_>,
) -> Result<mcx_model::flows::partner::PartnerResponse> {
    answers
        .inbound_answer(from, transaction)
        .await?
        .ok_or_else(|| being_answered(transaction))
}

/// A copy of the transaction conflicts, but its answer is not readable yet.
fn being_answered(transaction: mcx_model::TransactionId) -> Error {
    Error::refused(
        ErrorKind::Unavailable,
        codes::STORAGE_FAILURE,
        format!("transaction {transaction} is being answered; retry later"),
    )
}

/// A session's waker: wakes its streams and counts the wake-ups, so that a stream that
/// read everything committed before the last one can wait without reading again (after
/// it sent a change, the read that found nothing more was half of a fan-out's reads).
#[derive(Debug, Default)]
pub struct SessionWaker {
    notify: Notify,
    woken: AtomicU64,
}

impl SessionWaker {
    /// Wake-ups so far. Read after enabling a `notified()`: a wake-up that this count
    /// misses still completes that future.
    pub fn woken(&self) -> u64 {
        self.woken.load(Ordering::Acquire)
    }

    fn wake(&self) {
        self.woken.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }
}

impl std::ops::Deref for SessionWaker {
    type Target = Notify;

    fn deref(&self) -> &Notify {
        &self.notify
    }
}

/// One [`SessionWaker`] per session with an open event stream.
#[derive(Debug, Default)]
pub struct StreamWakers {
    by_session: Mutex<HashMap<String, Arc<SessionWaker>>>,
}

impl StreamWakers {
    /// The session's waker, created on first use.
    pub fn waker(&self, session_id: &str) -> Arc<SessionWaker> {
        let mut map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(session_id.to_string()).or_default().clone()
    }

    /// Wakes the streams of these sessions.
    pub fn wake<'a>(&self, sessions: impl IntoIterator<Item = &'a String>) {
        let map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        for session in sessions {
            if let Some(waker) = map.get(session) {
                waker.wake();
            }
        }
    }

    /// Wakes every stream of this process (each re-reads the store): after wake-ups may
    /// have been missed.
    pub fn wake_all(&self) {
        let map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        for waker in map.values() {
            waker.wake();
        }
    }

    /// Forgets a session's waker after waking its streams (they then see it ended).
    pub fn remove(&self, session_id: &str) {
        let removed = self
            .by_session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session_id);
        if let Some(waker) = removed {
            waker.wake();
        }
    }
}

/// A stream's share of a batched read.
#[derive(Debug, Clone)]
pub struct FetchedEvents {
    /// The events after the stream's cursor, oldest first.
    pub events: Vec<DeliveredEvent>,
    /// Whether more may be waiting (the read was cut at its limit).
    pub more: bool,
}

struct Fetch {
    session: String,
    after: i64,
    reply: oneshot::Sender<Result<Option<FetchedEvents>, String>>,
}

/// Reads the events of many streams together. Every stream woken by a commit asks here;
/// the requests that queue while one read runs go in the next read, so a change that
/// reaches thousands of sessions costs a few queries, not one per stream, and nothing
/// waits for a timer.
pub struct EventFetcher {
    store: Arc<dyn EventStore>,
    queue: OnceLock<mpsc::UnboundedSender<Fetch>>,
}

/// Sessions per read.
const SESSIONS_PER_READ: usize = 200;
/// Events per session per read.
pub const EVENTS_PER_FETCH: u32 = 256;

impl EventFetcher {
    /// A fetcher over the store (its worker starts on first use).
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            queue: OnceLock::new(),
        }
    }

    /// The session's next events after `after` (at most [`EVENTS_PER_FETCH`]); `None`
    /// when the session ended.
    pub async fn fetch(&self, session: &str, after: i64) -> Result<Option<FetchedEvents>> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(serve_fetches(self.store.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let unavailable = |message: String| {
            Error::refused(ErrorKind::Unavailable, codes::STORAGE_FAILURE, message)
        };
        queue
            .send(Fetch {
                session: session.to_string(),
                after,
                reply,
            })
            .map_err(|_| unavailable("the event reader has stopped".into()))?;
        answer
            .await
            .map_err(|_| unavailable("the event reader has stopped".into()))?
            .map_err(unavailable)
    }
}

async fn serve_fetches(store: Arc<dyn EventStore>, mut queue: mpsc::UnboundedReceiver<Fetch>) {
    let limit = EVENTS_PER_FETCH;
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < SESSIONS_PER_READ {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let wanted: Vec<(String, i64)> =
            batch.iter().map(|f| (f.session.clone(), f.after)).collect();
        match store.events_of_sessions(&wanted, limit).await {
            Ok(found) => {
                for (fetch, found) in batch.into_iter().zip(found) {
                    let answer = found.exists.then_some(FetchedEvents {
                        more: found.events.len() >= limit as usize,
                        events: found.events,
                    });
                    let _ = fetch.reply.send(Ok(answer));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for fetch in batch {
                    let _ = fetch.reply.send(Err(message.clone()));
                }
            }
        }
    }
}
