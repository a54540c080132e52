//! Log-on throttling: refused attempts are counted per user and per source address; past
//! an allowance each further refusal doubles the wait before the next attempt is even
//! looked at (a refusal then is `429` with the time to wait). A correct password after
//! the wait still works and clears the user's count. Pure: time comes in as an argument.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use mcx_model::McServiceId;
use time::OffsetDateTime;

/// Refused attempts a user may have before waits begin.
pub const USER_ALLOWANCE: u32 = 5;
/// Refused attempts one source address may have before waits begin (several users may
/// share an address behind a NAT).
pub const ADDRESS_ALLOWANCE: u32 = 20;
/// The first wait; each further refusal doubles it, up to [`MAX_WAIT`].
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// A key with no refusal for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// At most this many keys are tracked; beyond, the stalest are forgotten first.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(McServiceId),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    refused: u32,
    last: OffsetDateTime,
    blocked_until: OffsetDateTime,
}

/// The counts of refused log-ons.
#[derive(Debug, Default)]
pub struct LogOnThrottle {
    entries: Mutex<HashMap<Key, Entry>>,
}

fn keys(user: &McServiceId, source: Option<IpAddr>) -> Vec<(Key, u32)> {
    let mut keys = vec![(Key::User(user.clone()), USER_ALLOWANCE)];
    if let Some(address) = source {
        keys.push((Key::Address(address), ADDRESS_ALLOWANCE));
    }
    keys
}

impl LogOnThrottle {
    /// How long the caller must still wait before an attempt is looked at, if at all.
    pub fn wait(
        &self,
        user: &McServiceId,
        source: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        keys(user, source)
            .iter()
            .filter_map(|(key, _)| entries.get(key))
            .filter(|e| e.blocked_until > now)
            .map(|e| (e.blocked_until - now).unsigned_abs())
            .max()
    }

    /// Records a refused attempt.
    pub fn refused(&self, user: &McServiceId, source: Option<IpAddr>, now: OffsetDateTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| now - e.last < FORGET_AFTER);
            if entries.len() >= MAX_KEYS {
                entries.clear();
            }
        }
        for (key, allowance) in keys(user, source) {
            let entry = entries.entry(key).or_insert(Entry {
                refused: 0,
                last: now,
                blocked_until: now,
            });
            if now - entry.last >= FORGET_AFTER {
                entry.refused = 0;
            }
            entry.refused += 1;
            entry.last = now;
            if entry.refused > allowance {
                let doublings = (entry.refused - allowance - 1).min(20);
                let wait = FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT);
                entry.blocked_until = now + wait;
            }
        }
    }

    /// A successful log-on clears the user's count (not the address's).
    pub fn succeeded(&self, user: &McServiceId) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Key::User(user.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bob() -> McServiceId {
        McServiceId::parse("sip:bob@police.example").expect("a valid ID")
    }

    #[test]
    fn waits_begin_after_the_allowance_and_double() {
        let throttle = LogOnThrottle::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for _ in 0..USER_ALLOWANCE {
            throttle.refused(&bob(), None, t0);
        }
        assert_eq!(throttle.wait(&bob(), None, t0), None);
        throttle.refused(&bob(), None, t0);
        assert_eq!(throttle.wait(&bob(), None, t0), Some(FIRST_WAIT));
        throttle.refused(&bob(), None, t0);
        assert_eq!(throttle.wait(&bob(), None, t0), Some(FIRST_WAIT * 2));
        // After the wait, the next attempt is looked at; a success clears the count.
        let later = t0 + FIRST_WAIT * 2;
        assert_eq!(throttle.wait(&bob(), None, later), None);
        throttle.succeeded(&bob());
        throttle.refused(&bob(), None, later);
        assert_eq!(throttle.wait(&bob(), None, later), None);
    }

    #[test]
    fn a_source_address_is_throttled_across_users() {
        let throttle = LogOnThrottle::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let address: IpAddr = [192, 0, 2, 1].into();
        for i in 0..=ADDRESS_ALLOWANCE {
            let user = McServiceId::parse(&format!("sip:u{i}@police.example")).expect("an ID");
            throttle.refused(&user, Some(address), t0);
        }
        let fresh = McServiceId::parse("sip:new@police.example").expect("an ID");
        assert_eq!(throttle.wait(&fresh, Some(address), t0), Some(FIRST_WAIT));
        assert_eq!(throttle.wait(&fresh, None, t0), None);
        let wait = MAX_WAIT;
        assert!(
            throttle
                .wait(&fresh, Some(address), t0)
                .is_some_and(|w| w <= wait)
        );
    }
}
