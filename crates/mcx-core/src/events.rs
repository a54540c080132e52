//! Waking clients' event streams when their sessions get new events. The events
//! themselves are in the store; this only says "look again", so a missed wake-up costs a
//! poll interval at worst, never an event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// One [`Notify`] per session with an open event stream.
#[derive(Debug, Default)]
pub struct StreamWakers {
    by_session: Mutex<HashMap<String, Arc<Notify>>>,
}

impl StreamWakers {
    /// The session's waker, created on first use.
    pub fn waker(&self, session_id: &str) -> Arc<Notify> {
        let mut map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(session_id.to_string())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes the streams of these sessions.
    pub fn wake<'a>(&self, sessions: impl IntoIterator<Item = &'a String>) {
        let map = self.by_session.lock().unwrap_or_else(|e| e.into_inner());
        for session in sessions {
            if let Some(notify) = map.get(session) {
                notify.notify_waiters();
            }
        }
    }

    /// Forgets a session's waker after waking its streams (they then see it ended).
    pub fn remove(&self, session_id: &str) {
        let removed = self
            .by_session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session_id);
        if let Some(notify) = removed {
            notify.notify_waiters();
        }
    }
}
