//! The registry: every service by name, how to migrate it and how to build it.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use events::EventBus;
use platform::{Platform, db::Db};

/// The services this build contains, in start order (identity first: the others verify tokens
/// against it). The gateway is not in the list: it has no database and is started last.
pub const SERVICES: &[&str] = &["identity", "catalog", "showtimes", "payments", "booking"];

pub fn is_known(service: &str) -> bool {
    SERVICES.contains(&service) || service == gateway::SERVICE
}

/// The static name of a service (platforms and metrics keep `&'static str`).
pub fn static_name(service: &str) -> anyhow::Result<&'static str> {
    SERVICES
        .iter()
        .chain(std::iter::once(&gateway::SERVICE))
        .find(|s| **s == service)
        .copied()
        .with_context(|| format!("unknown service {service:?}; known: {}, gateway", SERVICES.join(", ")))
}

pub fn migrator(service: &str) -> anyhow::Result<sqlx::migrate::Migrator> {
    match service {
        "identity" => Ok(identity::migrator()),
        "catalog" => Ok(catalog::migrator()),
        "showtimes" => Ok(showtimes::migrator()),
        "payments" => Ok(payments::migrator()),
        "booking" => Ok(booking::migrator()),
        other => anyhow::bail!("{other} has no database"),
    }
}

/// Build one service with a database and a bus.
pub async fn build(
    service: &str,
    platform: Platform,
    db: Db,
    bus: Arc<dyn EventBus>,
) -> anyhow::Result<Router> {
    match service {
        "identity" => identity::build(platform, db, bus).await,
        "catalog" => catalog::build(platform, db, bus).await,
        "showtimes" => showtimes::build(platform, db, bus).await,
        "payments" => payments::build(platform, db, bus).await,
        "booking" => booking::build(platform, db, bus).await,
        other => anyhow::bail!("unknown service {other:?}"),
    }
}
