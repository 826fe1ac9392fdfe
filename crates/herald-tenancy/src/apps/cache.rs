//! The one cache of opened apps, per tenant, shared by the notification engine (rules,
//! templates, webhook subscriptions), the delivery core (credentials) and `herald push test`.
//!
//! A tenant's entry is trusted for [`FRESH_FOR`]; after that the tenant's apps are listed again
//! and only those whose `updated_at` changed are opened again (opening secrets and parsing is
//! the costly part). Changes made through this node's API invalidate at once; changes made by
//! another process (the operator CLI, another node) are seen within [`FRESH_FOR`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use herald_engine::app::AppConfig;
use herald_engine::ids::{AppId, TenantId};
use herald_engine::store::{Store, StoreError};
use time::OffsetDateTime;

use crate::seal::Sealer;

/// How long a tenant's entry is used without looking at the store.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

/// A tenant's apps that could be opened, in the store's order.
pub type Apps = Arc<Vec<(AppId, Arc<AppConfig>)>>;

#[derive(Debug)]
pub enum AppLookup {
    Found(Arc<AppConfig>),
    /// The app no longer exists.
    Gone,
    /// The store could not be read, or the stored app could not be opened; try later.
    Unavailable(String),
}

struct Opened {
    updated_at: OffsetDateTime,
    config: Result<Arc<AppConfig>, String>,
}

struct Entry {
    checked: Instant,
    opened: HashMap<AppId, Opened>,
    apps: Apps,
}

pub struct AppCache {
    store: Arc<dyn Store>,
    sealer: Sealer,
    tenants: Mutex<HashMap<TenantId, Entry>>,
    /// Bumped by every invalidation: a load that started before one must not be cached, or
    /// it would put back the apps the invalidation removed.
    generation: AtomicU64,
}

impl AppCache {
    pub fn new(store: Arc<dyn Store>, sealer: Sealer) -> AppCache {
        AppCache {
            store,
            sealer,
            tenants: Mutex::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Every app of the tenant that could be opened. One that cannot (it no longer parses, or
    /// its secrets do not open) is left out loudly rather than stopping the tenant's pushes.
    pub async fn tenant(&self, tenant: &TenantId) -> Result<Apps, StoreError> {
        if let Some(entry) = self.lock().get(tenant)
            && entry.checked.elapsed() < FRESH_FOR
        {
            return Ok(entry.apps.clone());
        }
        self.load(tenant).await
    }

    /// One app, with its secrets.
    pub async fn get(&self, tenant: &TenantId, app_id: &AppId) -> AppLookup {
        let fresh = self
            .lock()
            .get(tenant)
            .filter(|entry| entry.checked.elapsed() < FRESH_FOR)
            .map(|entry| lookup(entry, app_id));
        if let Some(found) = fresh {
            return found;
        }
        if let Err(e) = self.load(tenant).await {
            return AppLookup::Unavailable(format!("reading the app: {e}"));
        }
        match self.lock().get(tenant) {
            Some(entry) => lookup(entry, app_id),
            // Invalidated while it loaded: the store has just been read, so ask once more.
            None => AppLookup::Unavailable("the app changed while it was read".into()),
        }
    }

    pub fn invalidate(&self, tenant: &TenantId) {
        // Under the map's lock, so a load cannot check the generation between the bump and
        // the removal.
        let mut tenants = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        tenants.remove(tenant);
    }

    async fn load(&self, tenant: &TenantId) -> Result<Apps, StoreError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let stored = self.store.list_apps(tenant).await?;
        let mut previous = self
            .lock()
            .get_mut(tenant)
            .map(|entry| std::mem::take(&mut entry.opened))
            .unwrap_or_default();
        let mut opened = HashMap::with_capacity(stored.len());
        let mut apps = Vec::with_capacity(stored.len());
        for app in stored {
            let reopened = match previous.remove(&app.app_id) {
                Some(known) if known.updated_at == app.updated_at => known,
                _ => Opened {
                    updated_at: app.updated_at,
                    config: super::open(&self.sealer, tenant, &app).map(Arc::new),
                },
            };
            match &reopened.config {
                Ok(config) => apps.push((app.app_id.clone(), config.clone())),
                Err(why) => {
                    tracing::error!(tenant.id = %tenant, app.id = %app.app_id, why, "a stored app cannot be opened")
                }
            }
            opened.insert(app.app_id, reopened);
        }
        let apps = Arc::new(apps);
        let mut tenants = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            tenants.insert(
                tenant.clone(),
                Entry {
                    checked: Instant::now(),
                    opened,
                    apps: apps.clone(),
                },
            );
        }
        Ok(apps)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, Entry>> {
        self.tenants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn lookup(entry: &Entry, app_id: &AppId) -> AppLookup {
    match entry.opened.get(app_id) {
        None => AppLookup::Gone,
        Some(Opened { config: Ok(c), .. }) => AppLookup::Found(c.clone()),
        Some(Opened {
            config: Err(why), ..
        }) => AppLookup::Unavailable(why.clone()),
    }
}
