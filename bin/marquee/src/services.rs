//! The services this build contains, checked against the registry (`contracts::services`):
//! how to migrate each and how to build it.

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use events::EventBus;
use platform::{Platform, db::Db};

/// The services this build contains, in the registry's start order (identity first: the others
/// verify tokens against it). The gateway is not in the list: it has no database and is started
/// last. A test checks every name is the registry's.
pub const SERVICES: &[&str] = &[
    "identity",
    "catalog",
    "showtimes",
    "payments",
    "booking",
    "streaming",
    "reviews",
    "loyalty",
    "notifications",
    "analytics",
    "recommendations",
    "backup",
];

/// `marquee serve`'s default port for a service (the registry's).
pub fn default_port(service: &str) -> u16 {
    contracts::services::spec(service).map_or(8080, |s| s.port)
}

/// Every consuming service's queue and the events it takes, from the registry: declared on the
/// broker before anything is published, so no event is routed nowhere.
pub fn consumers() -> Vec<(&'static str, &'static [&'static str])> {
    contracts::services::SERVICES
        .iter()
        .filter(|s| !s.consumes.is_empty())
        .map(|s| (s.name, s.consumes))
        .collect()
}

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
        "streaming" => Ok(streaming::migrator()),
        "reviews" => Ok(reviews::migrator()),
        "loyalty" => Ok(loyalty::migrator()),
        "notifications" => Ok(notifications::migrator()),
        "analytics" => Ok(analytics::migrator()),
        "recommendations" => Ok(recommendations::migrator()),
        "backup" => Ok(backup::migrator()),
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
        "streaming" => streaming::build(platform, db, bus).await,
        "reviews" => reviews::build(platform, db, bus).await,
        "loyalty" => loyalty::build(platform, db, bus).await,
        "notifications" => notifications::build(platform, db, bus).await,
        "analytics" => analytics::build(platform, db, bus).await,
        "recommendations" => recommendations::build(platform, db, bus).await,
        // It has no events of its own: it reads the others through their snapshot endpoints.
        "backup" => backup::build(platform, db).await,
        other => anyhow::bail!("unknown service {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_services_are_the_registrys_in_its_order() {
        let registry: Vec<&str> = contracts::services::SERVICES.iter().map(|s| s.name).collect();
        let positions: Vec<usize> = super::SERVICES
            .iter()
            .map(|s| {
                registry.iter().position(|r| r == s).unwrap_or_else(|| panic!("{s} is not in the registry"))
            })
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "start order: {positions:?}");
    }
}
