//! The unit of work every use case writes through: one transaction that holds the state change,
//! the events it emits (outbox) and the commands it makes owed (a refund), committed together.
//! After the commit the relays are woken, so nothing waits for the next poll.
//!
//! ```ignore
//! let mut work = state.effects.begin(&state.db).await?;
//! store::end(work.conn(), id, Status::Confirmed, Status::Cancelled, now).await?;
//! work.emit(BOOKING_CANCELLED, id, &payload).await?;
//! work.owe(close_reference(id)).await?;
//! work.commit().await?;
//! ```

use contracts::CloudEvent;
use platform::db::Db;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::{Command, Commands, Outbox};

/// A service's outlets: its outbox and its command queue, and its name for event sources.
#[derive(Clone)]
pub struct Effects {
    service: &'static str,
    pub outbox: Outbox,
    pub commands: Commands,
}

impl Effects {
    pub fn new(service: &'static str, outbox: Outbox, commands: Commands) -> Self {
        Self { service, outbox, commands }
    }

    /// Begin a unit of work: a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self, db: &Db) -> anyhow::Result<UnitOfWork> {
        Ok(UnitOfWork { tx: db.begin_write().await?, effects: self.clone() })
    }

    /// Write an event inside a transaction someone else owns (a consumer's inbox transaction);
    /// call [`wake`](Self::wake) after it commits.
    pub async fn emit_in<T: Serialize>(
        &self,
        conn: &mut AnyConnection,
        event_type: &str,
        subject: impl Into<String>,
        data: &T,
    ) -> anyhow::Result<()> {
        let event = CloudEvent::new(self.service, event_type, subject, data)?;
        self.outbox.add(conn, event).await
    }

    /// Owe a command inside a transaction someone else owns; see [`emit_in`](Self::emit_in).
    pub async fn owe_in(&self, conn: &mut AnyConnection, command: &Command) -> anyhow::Result<bool> {
        self.commands.add(conn, command).await
    }

    /// Wake both relays (after a commit that wrote to them).
    pub fn wake(&self) {
        self.outbox.wake();
        self.commands.wake();
    }
}

/// One transaction with its events and commands. Dropped without [`commit`](Self::commit), it
/// rolls back and nothing it wrote exists.
pub struct UnitOfWork {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    effects: Effects,
}

impl UnitOfWork {
    /// The transaction's connection, for the store's SQL.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Emit an event with the state change.
    pub async fn emit<T: Serialize>(
        &mut self,
        event_type: &str,
        subject: impl Into<String>,
        data: &T,
    ) -> anyhow::Result<()> {
        self.effects.emit_in(&mut self.tx, event_type, subject, data).await
    }

    /// Make a command owed with the state change; true when it was not owed already.
    pub async fn owe(&mut self, command: &Command) -> anyhow::Result<bool> {
        self.effects.owe_in(&mut self.tx, command).await
    }

    /// The service's outlets, for helpers that write through [`conn`](Self::conn).
    pub fn effects(&self) -> &Effects {
        &self.effects
    }

    /// Commit, then wake the relays (a wake with nothing to do costs one empty poll).
    pub async fn commit(self) -> anyhow::Result<()> {
        self.tx.commit().await?;
        self.effects.wake();
        Ok(())
    }

    pub async fn rollback(self) -> anyhow::Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
