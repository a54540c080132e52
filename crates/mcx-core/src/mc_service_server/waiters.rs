//! Client requests waiting, in this process, for partners' answers that the outbox
//! delivers. Whoever takes a key out decides how the client learns the outcome: the
//! waiting request (in its response) or the answer's handler (by an event committed with
//! the answer), never both and never neither.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

pub(super) struct Waiters<K, V> {
    waiting: Mutex<HashMap<K, oneshot::Sender<V>>>,
}

impl<K, V> Default for Waiters<K, V> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Waiters<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, oneshot::Sender<V>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for `key`; registered before the commit that sends the request, so an
    /// answer cannot overtake it.
    pub(super) fn register(&self, key: &K) -> oneshot::Receiver<V> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(key.clone(), tx);
        rx
    }

    /// Waits for each of `keys`.
    pub(super) fn register_all(&self, keys: &[K]) -> Vec<(K, oneshot::Receiver<V>)> {
        keys.iter().map(|k| (k.clone(), self.register(k))).collect()
    }

    /// Gives up waiting for `key`; false if a handler took it already (its outcome is
    /// on its way to the receiver).
    pub(super) fn forget(&self, key: &K) -> bool {
        self.lock().remove(key).is_some()
    }

    /// Gives up waiting for every key; true if none was taken.
    pub(super) fn forget_all(&self, keys: &[K]) -> bool {
        let mut waiting = self.lock();
        let removed: Vec<bool> = keys.iter().map(|k| waiting.remove(k).is_some()).collect();
        removed.into_iter().all(|r| r)
    }

    /// Puts back a wait a handler took but will not answer itself after all.
    pub(super) fn put_back(&self, key: K, waiter: oneshot::Sender<V>) {
        self.lock().insert(key, waiter);
    }

    /// A handler takes the wait for `key`, if a request still waits.
    pub(super) fn take(&self, key: &K) -> Option<oneshot::Sender<V>> {
        self.lock().remove(key)
    }
}
