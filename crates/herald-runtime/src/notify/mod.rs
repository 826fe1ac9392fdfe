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

use std::sync::Arc;

use herald_engine::ids::{TenantId, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::cluster::Peers;

pub use task::spawn;

/// What wakes the engine. In a cluster, signals cross to the node that decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
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
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
    },
}

/// How the rest of the server talks to the engine: this node's engine task and, in a
/// cluster, whichever node decides now (every node hears every signal; only the deciding one
/// acts on it).
#[derive(Clone)]
pub struct EngineHandle {
    signals: mpsc::UnboundedSender<Signal>,
    peers: Option<Arc<dyn Peers>>,
}

impl EngineHandle {
    pub fn new(peers: Option<Arc<dyn Peers>>) -> (EngineHandle, mpsc::UnboundedReceiver<Signal>) {
        let (signals, receiver) = mpsc::unbounded_channel();
        (EngineHandle { signals, peers }, receiver)
    }

    fn send(&self, signal: Signal) {
        if let Some(peers) = &self.peers {
            peers.signal(&signal);
        }
        let _ = self.signals.send(signal);
    }

    /// Something for the engine to do, wherever it runs (a scheduled notification).
    pub fn wake(&self) {
        self.send(Signal::Wake);
    }

    /// Wakes this node's engine only: for events committed here (the other nodes hear of
    /// them with the events), or a signal another node sent.
    pub fn here(&self, signal: Signal) {
        let _ = self.signals.send(signal);
    }

    pub fn foreground(&self, tenant: &TenantId, user: &UserId) {
        self.send(Signal::Foreground {
            tenant: tenant.clone(),
            user: user.clone(),
        });
    }

    pub fn away(&self, tenant: &TenantId, user: &UserId, since: OffsetDateTime) {
        self.send(Signal::Away {
            tenant: tenant.clone(),
            user: user.clone(),
            since,
        });
    }
}
