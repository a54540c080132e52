//! Client requests waiting for partner hosts' answers to affiliation requests.
//!
//! Whoever takes a wait decides how the client learns the outcome: the waiting request
//! (in its response) or the answer's handler (by an event committed with the answer),
//! never both and never neither. With one node the wait lives in the process. With
//! several nodes on one store the answer is handled by whichever node holds the
//! partner's outbox lane, so the wait is a row committed with the request: the handler
//! writes the answer into it only while it is open (a guarded write, so its commit keeps
//! nothing if the request gave up meanwhile), the commit tells every node, and the
//! waiting node takes the answer out of the row, or gives up by deleting it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;
use mcx_model::McServiceGroupId;
use mcx_model::flows::affiliation::GroupAffiliationStatus;
use time::OffsetDateTime;
use tokio::sync::{Notify, oneshot};

use super::WaitKey;
use crate::mc_service_server::waiters::Waiters;
use crate::ports::{AffiliationStore, AnswerWaitWrite, Effects};

/// The waits of one MC service server.
pub(in crate::mc_service_server) struct AnswerWaits {
    local: Waiters<WaitKey, GroupAffiliationStatus>,
    /// Several nodes: the stored waits of requests at this node, by key, woken when
    /// some node commits an answer.
    stored: Option<Mutex<HashMap<String, Arc<Notify>>>>,
}

/// A request's wait for one reservation's answer.
pub(in crate::mc_service_server) enum Wait {
    Local(WaitKey, oneshot::Receiver<GroupAffiliationStatus>),
    Stored(WaitKey, String, Arc<Notify>),
}

/// A wait a handler found, to answer with its commit.
pub(in crate::mc_service_server) enum Taken {
    Local(oneshot::Sender<GroupAffiliationStatus>),
    Stored(String),
}

/// The stored form of a wait's key.
fn stored_key((user, service, group, generation): &WaitKey) -> String {
    format!("{generation} {} {user} {group}", service.as_str())
}

impl AnswerWaits {
    /// `stored`: the store is shared by several nodes.
    pub(in crate::mc_service_server) fn new(stored: bool) -> Self {
        Self {
            local: Waiters::default(),
            stored: stored.then(|| Mutex::new(HashMap::new())),
        }
    }

    fn woken(
        stored: &Mutex<HashMap<String, Arc<Notify>>>,
    ) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        stored.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for `keys`; made before the commit that sends the requests (a stored wait is
    /// opened by that commit, valid until `until`), so an answer cannot overtake it.
    pub(in crate::mc_service_server) fn open(
        &self,
        keys: &[WaitKey],
        until: OffsetDateTime,
        effects: &mut Effects,
    ) -> Vec<Wait> {
        let Some(stored) = &self.stored else {
            return self
                .local
                .register_all(keys)
                .into_iter()
                .map(|(key, rx)| Wait::Local(key, rx))
                .collect();
        };
        let mut woken = Self::woken(stored);
        keys.iter()
            .map(|key| {
                let text = stored_key(key);
                effects.service.answer_waits.push(AnswerWaitWrite::Open {
                    key: text.clone(),
                    until,
                });
                let notify = Arc::new(Notify::new());
                woken.insert(text.clone(), notify.clone());
                Wait::Stored(key.clone(), text, notify)
            })
            .collect()
    }

    /// The commit that was to open `keys` did not happen.
    pub(in crate::mc_service_server) fn abandon(&self, keys: &[WaitKey]) {
        match &self.stored {
            None => {
                self.local.forget_all(keys);
            }
            Some(stored) => {
                let mut woken = Self::woken(stored);
                for key in keys {
                    woken.remove(&stored_key(key));
                }
            }
        }
    }

    /// Some node committed the answer for the stored wait `key`.
    pub(in crate::mc_service_server) fn answered(&self, key: &str) {
        if let Some(stored) = &self.stored
            && let Some(notify) = Self::woken(stored).get(key)
        {
            // A permit is kept if the request is not yet waiting for it.
            notify.notify_one();
        }
    }

    /// Answers may have been committed without this node hearing of it: every waiting
    /// request looks again.
    pub(in crate::mc_service_server) fn look_again(&self) {
        if let Some(stored) = &self.stored {
            for notify in Self::woken(stored).values() {
                notify.notify_one();
            }
        }
    }

    /// The answers that came for `waits` before `deadline`; the others are given up
    /// (their outcome reaches the client as an event).
    pub(in crate::mc_service_server) async fn answers(
        &self,
        waits: Vec<Wait>,
        deadline: BoxFuture<'static, ()>,
        store: &dyn AffiliationStore,
    ) -> crate::error::Result<BTreeMap<McServiceGroupId, GroupAffiliationStatus>> {
        let mut deadline = Deadline {
            timer: deadline,
            passed: false,
        };
        let mut answered = BTreeMap::new();
        for wait in waits {
            match wait {
                Wait::Local(key, mut answer) => {
                    let got = match deadline.before(&mut answer).await {
                        Some(got) => got.ok(),
                        // Given up: unless the answer is already being stored for this
                        // wait, it comes as an event instead.
                        None if self.local.forget(&key) => None,
                        None => answer.await.ok(),
                    };
                    if let Some(status) = got {
                        answered.insert(key.2, status);
                    }
                }
                Wait::Stored(key, text, notify) => {
                    let got = Self::stored_answer(&text, &notify, &mut deadline, store).await;
                    if let Some(stored) = &self.stored {
                        Self::woken(stored).remove(&text);
                    }
                    if let Some(status) = got? {
                        answered.insert(key.2, status);
                    }
                }
            }
        }
        Ok(answered)
    }

    async fn stored_answer(
        key: &str,
        notify: &Notify,
        deadline: &mut Deadline,
        store: &dyn AffiliationStore,
    ) -> crate::error::Result<Option<GroupAffiliationStatus>> {
        loop {
            if deadline.before(notify.notified()).await.is_none() {
                // The row decides: an answer committed before this delete is taken, one
                // committed after finds the wait gone and becomes an event.
                return Ok(store.end_answer_wait(key, true).await?);
            }
            if let Some(answer) = store.end_answer_wait(key, false).await? {
                return Ok(Some(answer));
            }
        }
    }

    /// The waits for `keys` that a handler may answer with its commit (`None`: no
    /// request waits, the client is told by an event).
    pub(in crate::mc_service_server) async fn take(
        &self,
        keys: &[WaitKey],
        now: OffsetDateTime,
        store: &dyn AffiliationStore,
    ) -> crate::error::Result<Vec<Option<Taken>>> {
        if self.stored.is_none() {
            return Ok(keys
                .iter()
                .map(|key| self.local.take(key).map(Taken::Local))
                .collect());
        }
        let texts: Vec<String> = keys.iter().map(stored_key).collect();
        let open = store.open_answer_waits(&texts, now).await?;
        Ok(texts
            .into_iter()
            .map(|text| open.contains(&text).then_some(Taken::Stored(text)))
            .collect())
    }

    /// A handler that took waits will not answer them after all (its commit did not
    /// happen, or another path answers).
    pub(in crate::mc_service_server) fn put_back(&self, key: WaitKey, taken: Taken) {
        if let Taken::Local(waiter) = taken {
            self.local.put_back(key, waiter);
        }
    }
}

impl Taken {
    /// The part of the handler's commit that answers this wait.
    pub(in crate::mc_service_server) fn answer_in(
        &self,
        answer: &GroupAffiliationStatus,
        effects: &mut Effects,
    ) {
        if let Taken::Stored(key) = self {
            effects.service.answer_waits.push(AnswerWaitWrite::Answer {
                key: key.clone(),
                answer: answer.clone(),
            });
        }
    }

    /// After the handler's commit: the waiting request hears the answer (a stored wait
    /// hears it from the commit's notification).
    pub(in crate::mc_service_server) fn deliver(self, answer: GroupAffiliationStatus) {
        if let Taken::Local(waiter) = self {
            let _ = waiter.send(answer);
        }
    }
}

/// The bound of a request's wait, shared by its waits.
struct Deadline {
    timer: BoxFuture<'static, ()>,
    passed: bool,
}

impl Deadline {
    /// `what`'s output if it comes before the deadline (a timer is not polled again
    /// once it has fired).
    async fn before<F: std::future::Future>(&mut self, what: F) -> Option<F::Output> {
        if self.passed {
            return None;
        }
        tokio::select! {
            _ = &mut self.timer => {
                self.passed = true;
                None
            }
            got = what => Some(got),
        }
    }
}
