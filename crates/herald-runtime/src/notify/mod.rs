//! The notification engine task (see docs/ARCHITECTURE.md, "The notification engine"): the
//! only writer of engine state on this node. It evaluates the outbox, fires due timers and
//! reacts to users coming back and going away. Each step loads what a plan of
//! `herald_engine::notify::plan` reads, calls it once, and commits what it decided atomically;
//! every rule lives in the plan, and this task only reads, measures and writes.

mod away;
mod evaluate;
mod health;
mod left;
mod step;
mod task;
mod timers;

use herald_engine::ids::{TenantId, UserId};
use time::OffsetDateTime;
use tokio::sync::mpsc;

pub use task::spawn;

/// What wakes the engine.
#[derive(Debug)]
pub enum Signal {
    /// New events or scheduled notifications were committed.
    Wake,
    /// The user came back to the foreground: cancel what waits for them.
    Foreground { tenant: TenantId, user: UserId },
    /// The user's last foreground session went, `since` that moment (for a dropped session,
    /// told once its reconnect grace ended without a return): decide again what it seemed to
    /// be looking at, and tell the others in their conversations if the app asks.
    Away {
        tenant: TenantId,
        user: UserId,
        since: OffsetDateTime,
    },
}

/// How the rest of the server talks to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    signals: mpsc::UnboundedSender<Signal>,
}

impl EngineHandle {
    pub fn new() -> (EngineHandle, mpsc::UnboundedReceiver<Signal>) {
        let (signals, receiver) = mpsc::unbounded_channel();
        (EngineHandle { signals }, receiver)
    }

    pub fn wake(&self) {
        let _ = self.signals.send(Signal::Wake);
    }

    pub fn foreground(&self, tenant: &TenantId, user: &UserId) {
        let _ = self.signals.send(Signal::Foreground {
            tenant: tenant.clone(),
            user: user.clone(),
        });
    }

    pub fn away(&self, tenant: &TenantId, user: &UserId, since: OffsetDateTime) {
        let _ = self.signals.send(Signal::Away {
            tenant: tenant.clone(),
            user: user.clone(),
            since,
        });
    }
}
