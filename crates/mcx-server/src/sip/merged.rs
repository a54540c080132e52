//! Merged requests (RFC 3261 §8.2.2.2): a request outside a dialog that arrives twice on
//! different paths (a forking proxy upstream) carries the same From tag, Call-ID and
//! CSeq on two branches. The transaction layer sees two transactions; the UAS must do
//! the request once and answer the copy 482 (Loop Detected). rsipstack 0.7.14 does not,
//! so mcx does it here.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rsipstack::sip::Request;
use rsipstack::sip::prelude::HeadersExt as _;

/// How long a request is remembered: 64·T1 (32 s), the life of a non-INVITE server
/// transaction over UDP (Timer J), after which a copy can no longer be told from a new
/// request of a client that reused its CSeq.
const REMEMBERED: Duration = Duration::from_secs(32);
/// At most this many requests are remembered; beyond it (a flood of distinct requests)
/// new ones are not, and a copy of one of them is done as a request of its own.
const AT_MOST: usize = 100_000;

/// The From tag, Call-ID and CSeq of a request.
type Identity = (String, String, String);

/// The requests without a To tag seen in the last 32 s, with the transaction each came in.
#[derive(Default)]
pub(crate) struct Recent {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: HashMap<Identity, String>,
    order: VecDeque<(Instant, Identity)>,
}

impl Recent {
    /// Whether `request`, which came in the transaction `transaction`, is a copy of a
    /// request of another transaction (a merged request); remembers it if not.
    pub(crate) fn merged(&self, request: &Request, transaction: &str) -> bool {
        let Some(identity) = identity(request) else {
            return false;
        };
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((at, _)) = inner.order.front() {
            if now.duration_since(*at) < REMEMBERED {
                break;
            }
            if let Some((_, old)) = inner.order.pop_front() {
                inner.seen.remove(&old);
            }
        }
        match inner.seen.get(&identity) {
            Some(first) => first != transaction,
            None => {
                if inner.seen.len() < AT_MOST {
                    inner.seen.insert(identity.clone(), transaction.to_string());
                    inner.order.push_back((now, identity));
                }
                false
            }
        }
    }
}

/// The From tag, Call-ID and CSeq of a request outside a dialog (no To tag); `None` for
/// one in a dialog, or without them (those are answered 400 before this is asked).
fn identity(request: &Request) -> Option<Identity> {
    let value = |long: &str, compact: &str| {
        request
            .header_value(long)
            .or_else(|| request.header_value(compact))
    };
    if tag(&value("To", "t")?).is_some() {
        return None;
    }
    let from_tag = tag(&value("From", "f")?)?;
    let call_id = value("Call-ID", "i")?;
    // CSeq's number and method, with the whitespace between them made one space.
    let cseq = request
        .header_value("CSeq")?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some((from_tag, call_id, cseq))
}

/// The `tag` parameter of a From or To value (after the name-addr).
fn tag(value: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|param| {
        let (name, tag) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("tag")
            .then(|| tag.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::tag;

    #[test]
    fn the_tag_is_read_after_the_name_addr() {
        assert_eq!(
            tag("\"Bob\" <sip:bob@x;tag=no>;tag=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(tag("sip:bob@x;TAG=abc ").as_deref(), Some("abc"));
        assert_eq!(tag("<sip:bob@x>"), None);
    }
}
