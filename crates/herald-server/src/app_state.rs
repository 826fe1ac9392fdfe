//! The state every handler shares.

use std::sync::Arc;

use herald_engine::clock::Clock;
use herald_engine::delivery::DeliveryQueue;
use herald_engine::ids::TenantId;
use herald_engine::notify::store::NotifyStore;
use herald_engine::store::{Appended, Store};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::Notify;

use crate::config::Config;
use crate::delivery::DeliveryCore;
use crate::delivery::registry::ChannelRegistry;
use crate::live::hub::Hub;
use crate::notify::EngineHandle;
use crate::seal::Sealer;

/// A handle on [`Shared`]: one pointer, so the clone every request, connection and live
/// session takes is one reference count, not a copy of the whole (over a kilobyte, which an
/// idle live session held twice).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Arc<dyn Store>,
    /// The same store, seen through the notification engine's port.
    pub notify: Arc<dyn NotifyStore>,
    /// The same store, seen through the delivery queue's port.
    pub queue: Arc<dyn DeliveryQueue>,
    pub sealer: Sealer,
    pub hub: Arc<Hub>,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// SHA-256 of the operator key; `None` disables the admin API.
    pub operator_key_hash: Option<[u8; 32]>,
    pub metrics: Option<PrometheusHandle>,
    pub channels: ChannelRegistry,
    pub engine: EngineHandle,
    /// Tells delivery workers that new deliveries were committed.
    pub delivery_wakeup: Arc<Notify>,
    /// What the delivery workers share: breakers, endpoint health, bulkheads.
    pub delivery: Arc<DeliveryCore>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// After events were committed: live sessions get them, and the notification engine is
    /// woken to evaluate them (else it would find them only at its next poll).
    pub fn committed(&self, tenant: &TenantId, appended: &[Appended]) {
        self.hub.publish(tenant, appended);
        if appended.iter().any(|a| !a.duplicate) {
            self.engine.wake();
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
