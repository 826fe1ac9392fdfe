//! The notification engine task (see docs/ARCHITECTURE.md, "The notification engine"): the
//! only writer of engine state on this node. It evaluates the outbox, fires due timers and
//! reacts to users coming back. Each step loads what a plan of
//! `herald_engine::notify::plan` reads, calls it once, and commits what it decided atomically;
//! every rule lives in the plan, and this task only reads, measures and writes.

mod evaluate;
mod health;
mod step;
mod task;
mod timers;

use herald_engine::ids::{TenantId, UserId};
use tokio::sync::mpsc;

pub use task::spawn;

/// What wakes the engine.
#[derive(Debug)]
pub enum Signal {
    /// New events or scheduled notifications were committed.
    Wake,
    /// The user came back to the foreground: cancel what waits for them.
    Foreground { tenant: TenantId, user: UserId },
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
}
