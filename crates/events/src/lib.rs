//! Events between services, delivered exactly once in effect.
//!
//! A service writes its events into its own `outbox` table in the same transaction as the state
//! change ([`Outbox::add`]); a [`Relay`] publishes them on the [`EventBus`] and marks them sent,
//! retrying with backoff while the bus is down. A [`Consumer`] handles each delivery in one
//! transaction that also records the event id in its `inbox`, so a redelivered event is a no-op.
//!
//! # Layout
//! - [`bus`]: the [`EventBus`] trait and the consumer side ([`Consumer`], [`EventHandler`]).
//! - [`outbox`]: writing events and the relay that publishes them.
//! - [`commands`]: commands owed to other services, and the relay that carries them out.
//! - [`work`]: the unit of work: a transaction with its events and commands, committed together.
//! - [`memory`]: the in-process bus of the embedded mode.
//! - [`rabbit`]: the RabbitMQ bus of the distributed mode.
//! - [`service`]: the relays and readiness checks every service sets up alike.

pub mod bus;
pub mod commands;
pub mod memory;
pub mod outbox;
pub mod rabbit;
pub mod service;
pub mod work;

pub use bus::{BusReadiness, Consumer, Delivery, EventBus, EventHandler, LocalHandler};
pub use commands::{Command, CommandHandler, CommandRelay, Commands};
pub use contracts::CloudEvent;
pub use memory::InProcessBus;
pub use outbox::{Outbox, Relay};
pub use rabbit::RabbitBus;
pub use work::{Effects, UnitOfWork};

/// The event tables (versions below 100), to combine with a service's own migrations.
pub fn migrations() -> sqlx::migrate::Migrator {
    sqlx::migrate!("./migrations")
}

use std::time::Duration;

/// How often a failing handler is retried before its event is dead-lettered, and how far apart.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    /// From `MARQUEE_EVENT_MAX_ATTEMPTS` and `MARQUEE_EVENT_RETRY_BASE_MS`.
    pub fn from_settings(settings: &platform::Settings) -> anyhow::Result<Self> {
        let d = Self::default();
        Ok(Self {
            max_attempts: settings.parse_or("MARQUEE_EVENT_MAX_ATTEMPTS", d.max_attempts)?.max(1),
            base_delay: Duration::from_millis(
                settings.parse_or("MARQUEE_EVENT_RETRY_BASE_MS", d.base_delay.as_millis() as u64)?,
            ),
            max_delay: d.max_delay,
        })
    }

    /// The wait before retry number `attempt + 1`.
    pub fn delay(&self, attempt: u32) -> Duration {
        backoff(self.base_delay, attempt, self.max_delay)
    }
}

/// Exponential backoff with jitter: base, 2 x base, 4 x base ... capped at `cap`.
pub fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let capped = base.saturating_mul(1u32 << attempt.min(16)).min(cap);
    // Up to 25 % jitter so replicas that failed together do not retry together.
    let jitter = (uuid::Uuid::new_v4().as_u128() % 250) as u32;
    capped + capped * jitter / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        let d0 = backoff(base, 0, cap);
        let d3 = backoff(base, 3, cap);
        assert!(d0 >= base && d0 <= base * 5 / 4, "{d0:?}");
        assert!(d3 >= base * 8 && d3 <= base * 10, "{d3:?}");
        assert!(backoff(base, 30, cap) <= cap * 5 / 4);
    }
}
