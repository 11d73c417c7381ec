//! The `marquee` binary's library: assembling services into a running system, for `marquee up`,
//! `marquee serve` and the test kit alike.
//!
//! # Layout
//! - [`services`]: the registry of services and how each is built.
//! - [`system`]: starting several services in one process (the embedded mode, and tests).
//! - [`loadtest`]: traffic against a running deployment, with throughput and percentiles.
//! - [`ledger`]: `marquee check ledger`: money, seats and tickets agree.
//! - [`backups`]: `marquee backup create|list|restore`, over the backup service's API.

pub mod backups;
pub mod effects;
pub mod ledger;
pub mod loadtest;
pub mod overhead;
pub mod rush;
pub mod services;
pub mod system;
pub mod watch;
