//! Simulated time and seeded randomness: the ports a simulated system gets instead of the
//! wall clock and the operating system's generator.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use mcx_core::ports::{Clock, Entropy};
use rand::rngs::StdRng;
use rand::{Rng as _, RngCore as _, SeedableRng as _};
use time::OffsetDateTime;

/// A clock that moves only when the simulation moves it. Waiting on it advances it, so
/// a procedure that waits completes at once, later in simulated time.
#[derive(Debug)]
pub struct SimClock {
    now: Mutex<OffsetDateTime>,
}

impl SimClock {
    /// A clock at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock on.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for SimClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

/// A seeded generator shared by everything in one run: the same seed, the same run.
#[derive(Debug)]
pub struct SeededEntropy {
    rng: Mutex<StdRng>,
}

impl SeededEntropy {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// True with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_bool(p.clamp(0.0, 1.0))
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&self, n: usize) -> usize {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(0..n.max(1))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, bytes: &mut [u8]) {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fill_bytes(bytes);
    }
}
