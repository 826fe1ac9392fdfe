//! [`Runtime`]: the running parts one node shares — ports, the live hub, the engine's handle,
//! the delivery core, the app cache — handed to the engine task, the delivery workers and
//! every front door.

use std::sync::Arc;

use herald_engine::ids::{TenantId, UserId};
use herald_engine::ports::{ChannelRegistry, Clock, DeliveryQueue, NotifyStore, Store};
use herald_engine::store::Appended;
use herald_tenancy::apps::AppCache;
use herald_tenancy::seal::Sealer;
use tokio::sync::Notify;

use crate::cluster::{Leadership, Peers};
use crate::config::{DeliveryConfig, EngineConfig, LiveConfig};
use crate::delivery::DeliveryCore;
use crate::live::hub::Hub;
use crate::live::presence::Presence;
use crate::live::routed::Routed;
use crate::notify::{EngineHandle, Signal};

/// A handle on [`Parts`]: one pointer, so the clone every request, connection and live
/// session takes is one reference count, not a copy of the whole (over a kilobyte, which an
/// idle live session held twice).
#[derive(Clone)]
pub struct Runtime(Arc<Parts>);

pub struct Parts {
    pub store: Arc<dyn Store>,
    /// The same store, seen through the notification engine's port.
    pub notify: Arc<dyn NotifyStore>,
    /// The same store, seen through the delivery queue's port.
    pub queue: Arc<dyn DeliveryQueue>,
    pub sealer: Sealer,
    pub hub: Arc<Hub>,
    pub clock: Arc<dyn Clock>,
    pub channels: ChannelRegistry,
    /// Every reader's apps: the engine's rules and the delivery core's credentials.
    pub apps: Arc<AppCache>,
    pub engine: EngineHandle,
    /// Tells delivery workers that new deliveries were committed.
    pub delivery_wakeup: Arc<Notify>,
    /// What the delivery workers share: breakers, endpoint health, bulkheads.
    pub delivery: Arc<DeliveryCore>,
    /// Whether this node decides (always, on the embedded store).
    pub leadership: Leadership,
    /// The other nodes of a cluster; `None` on the embedded store.
    pub peers: Option<Arc<dyn Peers>>,
    pub settings: Settings,
}

/// The runtime's sections of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub live: LiveConfig,
    pub delivery: DeliveryConfig,
    pub engine: EngineConfig,
}

impl Runtime {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    /// After events were committed: live sessions get them (on every node), and the
    /// notification engine is woken to evaluate them (else it would find them only at its
    /// next poll).
    pub fn committed(&self, tenant: &TenantId, appended: &[Appended]) {
        let routed = Routed::of(appended);
        self.hub.publish(tenant, &routed);
        if let Some(peers) = &self.peers
            && !routed.is_empty()
        {
            peers.committed(tenant, &routed);
        }
        if appended.iter().any(|a| !a.duplicate) {
            self.engine.here(Signal::Wake);
        }
    }

    /// Events another node committed: this node's sessions get them, and its engine looks.
    pub fn committed_elsewhere(&self, tenant: &TenantId, routed: &[Routed]) {
        self.hub.publish(tenant, routed);
        self.engine.here(Signal::Wake);
    }

    /// Whether the user is looking: on this node, or in a cluster on any live node.
    pub async fn presence(&self, tenant: &TenantId, user: &UserId) -> Presence {
        let here = self.hub.presence(tenant, user);
        match &self.peers {
            Some(peers) => {
                let key = [(tenant.clone(), user.clone())];
                let elsewhere = peers.presence(&key).await.into_iter().next();
                elsewhere.map_or(here, |elsewhere| crate::cluster::merge(here, elsewhere))
            }
            None => here,
        }
    }

    /// An app changed through this node: the next decision and delivery read it again.
    pub fn app_changed(&self, tenant: &TenantId) {
        self.apps.invalidate(tenant);
    }
}

impl std::ops::Deref for Runtime {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}
