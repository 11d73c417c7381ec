//! The time as the business rules see it: holds, renewals and playback sessions ask a [`Clock`],
//! never the system directly, so a test can move time forward instead of rewriting rows.
//!
//! Every service of a process shares one clock; it is the system's time plus an offset that only
//! tests change. Stored times stay epoch milliseconds (see [`crate::time`]).

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use time::OffsetDateTime;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now_ms(&self) -> i64 {
        crate::time::now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn now(&self) -> OffsetDateTime {
        crate::time::from_ms(self.now_ms())
    }

    /// Move this clock (and every service sharing it) forward; tests only.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_is_ahead_for_every_holder() {
        let clock = Clock::system();
        let shared = clock.clone();
        let before = shared.now_ms();
        clock.advance(std::time::Duration::from_secs(600));
        assert!(shared.now_ms() - before >= 600_000);
    }
}
