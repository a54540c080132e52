//! The system clock and timers the core waits on (the simulation gives the core its own).

use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use mcx_core::ports::Clock;
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
