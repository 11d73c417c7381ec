//! What every service that owns a database and talks on the bus sets up the same way: its
//! outbox relay, and the readiness checks of its database, broker and cache.

use std::sync::Arc;

use platform::{Platform, db::Db, server::ReadinessCheck};

use crate::{
    BusReadiness, CommandHandler, CommandRelay, Commands, Effects, EventBus, Outbox, Relay,
    commands::CommandConfig, outbox::RelayConfig,
};

/// Start the service's outbox relay (stopped by the platform's shutdown) and return the outbox
/// its handlers write to.
pub fn start_outbox(platform: &Platform, db: &Db, bus: &Arc<dyn EventBus>) -> anyhow::Result<Outbox> {
    let outbox = Outbox::new();
    let relay = Relay::new(platform.service, db.clone(), bus.clone(), outbox.clone())
        .with_config(RelayConfig::from_settings(&platform.settings)?);
    platform.tasks.spawn(relay.run(platform.shutdown.clone()));
    Ok(outbox)
}

/// Start the service's outbox relay and, when it owes other services commands, its command
/// relay (both stopped by the platform's shutdown); the [`Effects`] its use cases write through.
pub fn start_effects(
    platform: &Platform,
    db: &Db,
    bus: &Arc<dyn EventBus>,
    commands: Option<Arc<dyn CommandHandler>>,
) -> anyhow::Result<Effects> {
    let outbox = start_outbox(platform, db, bus)?;
    let queue = Commands::default();
    if let Some(handler) = commands {
        let relay = CommandRelay::new(
            platform.service,
            db.clone(),
            handler,
            queue.clone(),
            CommandConfig::from_settings(&platform.settings)?,
        );
        platform.tasks.spawn(relay.run(platform.shutdown.clone()));
    }
    Ok(Effects::new(platform.service, outbox, queue))
}

/// `/health/ready`: the database, the broker, and the cache when it is a shared one.
pub fn readiness(platform: &Platform, db: &Db, bus: &Arc<dyn EventBus>) -> Vec<Arc<dyn ReadinessCheck>> {
    let mut checks: Vec<Arc<dyn ReadinessCheck>> =
        vec![Arc::new(db.clone()), Arc::new(BusReadiness(bus.clone()))];
    checks.extend(platform.cache_check());
    checks
}
