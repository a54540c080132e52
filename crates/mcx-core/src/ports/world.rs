//! The world outside a system: partner systems, time and randomness.

use async_trait::async_trait;
use mcx_model::flows::partner::{PartnerRequest, PartnerResponse};
use mcx_model::{SystemDomain, TransactionId};
use time::OffsetDateTime;
/// Why a request to a partner did not get an answer from the partner's procedures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The partner could not be reached (or timed out, or failed): try again later.
    #[error("partner system '{partner}' is unreachable: {message}")]
    Unreachable {
        /// The partner.
        partner: SystemDomain,
        /// Why.
        message: String,
    },
    /// The partner refused the request before its procedures ran (not authorised, not a
    /// partner, malformed): sending it again would not help.
    #[error("partner system '{partner}' refused the request: {message}")]
    Refused {
        /// The partner.
        partner: SystemDomain,
        /// The partner's reason.
        message: String,
    },
}

/// The link to partner systems: sends one request and waits for its answer.
#[async_trait]
pub trait PartnerLink: Send + Sync {
    /// Sends `request` to `partner` as exchange `transaction`.
    async fn send(
        &self,
        partner: &SystemDomain,
        transaction: TransactionId,
        request: &PartnerRequest,
    ) -> Result<PartnerResponse, LinkError>;
}

/// The time source, and the only way the core waits: the server shell gives it the
/// system's clock and timers, the simulation a simulated clock.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
    /// Completes when `duration` of this clock's time has passed.
    fn sleep(&self, duration: std::time::Duration) -> futures_util::future::BoxFuture<'static, ()>;
}

/// Randomness: the only source of the core's identifiers (transactions, changes,
/// regroups, ACM requests, sessions), secrets (session tokens, group keys) and retry
/// jitter. The server gives it the operating system's generator; the simulation a seeded
/// one, so that a run replays exactly.
pub trait Entropy: Send + Sync {
    /// Fills `bytes` with random bytes.
    fn fill(&self, bytes: &mut [u8]);
}

impl dyn Entropy {
    /// A random 64-bit number.
    pub fn next_u64(&self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    /// A number in [0, 1).
    pub fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A time-ordered identifier (UUID version 7) made at `now`: sortable by creation.
    pub fn uuid_v7(&self, now: time::OffsetDateTime) -> uuid::Uuid {
        let mut random = [0u8; 10];
        self.fill(&mut random);
        let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    /// A transaction identifier for a request to a partner.
    pub fn transaction_id(&self, now: time::OffsetDateTime) -> TransactionId {
        TransactionId(self.uuid_v7(now))
    }
}
