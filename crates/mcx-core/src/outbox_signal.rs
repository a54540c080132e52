//! How a commit that queued requests to partners tells the outbox dispatcher: it hands
//! over the rows as stored, so the dispatcher sends them at once without reading the
//! store. A bare wake makes the dispatcher look at the store instead.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::ports::{Committed, QueuedRequest};

/// Shared by the entities that queue requests and the dispatcher that sends them.
#[derive(Debug, Default)]
pub struct OutboxSignal {
    notify: Notify,
    fresh: Mutex<Vec<QueuedRequest>>,
    look: std::sync::atomic::AtomicBool,
}

impl OutboxSignal {
    /// A new signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// After a commit: hands its queued requests to the dispatcher.
    pub fn committed(&self, committed: &Committed) {
        if committed.queued.is_empty() {
            return;
        }
        self.fresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(committed.queued.iter().cloned());
        self.notify.notify_one();
    }

    /// Makes the dispatcher look at the store (something it was not handed is due).
    pub fn notify_one(&self) {
        self.look.store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_one();
    }

    /// The dispatcher's side: requests handed over since the last call, and whether it
    /// was asked to look at the store.
    pub(crate) fn take(&self) -> (Vec<QueuedRequest>, bool) {
        let fresh = std::mem::take(&mut *self.fresh.lock().unwrap_or_else(|e| e.into_inner()));
        let look = self.look.swap(false, std::sync::atomic::Ordering::AcqRel);
        (fresh, look)
    }

    /// Resolves when something was handed over or a look was asked for.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}
