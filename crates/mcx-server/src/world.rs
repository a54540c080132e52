//! The real world the core and the store are given through their ports: the system's
//! clock and timers, and the operating system's randomness (the simulation gives them
//! simulated ones).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use mcx_core::ports::{Clock, Entropy};
use rand::RngCore as _;
use time::OffsetDateTime;

/// Wall-clock time and tokio timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        tokio::time::sleep(duration).boxed()
    }
}

/// The operating system's cryptographically secure generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, bytes: &mut [u8]) {
        rand::rng().fill_bytes(bytes);
    }
}

/// The store's world in a server.
pub fn store_world() -> mcx_store::StoreWorld {
    mcx_store::StoreWorld {
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
    }
}
