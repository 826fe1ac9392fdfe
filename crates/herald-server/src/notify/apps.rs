//! The engine's view of a tenant's apps: parsed rules, templates and webhook subscriptions
//! (secrets stay masked — the engine never needs them). Cached per tenant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_engine::app::AppConfig;
use herald_engine::ids::{AppId, TenantId};
use herald_engine::store::{Store, StoreError};

pub type Apps = Arc<Vec<(AppId, AppConfig)>>;

/// Changes made through this server's API invalidate at once; changes made by another
/// process (the operator CLI, another node) are seen after at most this long.
const FRESH_FOR: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct AppCache {
    tenants: Mutex<HashMap<TenantId, (Instant, Apps)>>,
    /// Bumped by every invalidation: a load that started before one must not be cached, or
    /// it would put back the rules the invalidation removed.
    generation: AtomicU64,
}

impl AppCache {
    pub async fn get(&self, store: &dyn Store, tenant: &TenantId) -> Result<Apps, StoreError> {
        if let Some((at, apps)) = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(apps.clone());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let mut apps = vec![];
        for stored in store.list_apps(tenant).await? {
            match serde_json::from_value::<AppConfig>(stored.document) {
                Ok(config) => apps.push((stored.app_id, config)),
                // Stored documents were validated on the way in; one that no longer parses is
                // skipped loudly rather than stopping every tenant's notifications.
                Err(e) => {
                    tracing::error!(tenant.id = %tenant, app.id = %stored.app_id, error.message = %e, "stored app does not parse")
                }
            }
        }
        let apps = Arc::new(apps);
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            tenants.insert(tenant.clone(), (Instant::now(), apps.clone()));
        }
        Ok(apps)
    }

    pub fn invalidate(&self, tenant: &TenantId) {
        // Under the map's lock, so a load cannot check the generation between the bump and
        // the removal.
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        tenants.remove(tenant);
    }
}
