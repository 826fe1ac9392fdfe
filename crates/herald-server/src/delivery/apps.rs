//! The app configurations deliveries need, with their secrets, cached per (tenant, app). An
//! entry is trusted for a short time; after that the stored app is read again and the entry is
//! rebuilt only if the app's `updated_at` changed (opening secrets and parsing is the costly
//! part). A deleted app is reported as gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use herald_engine::app::{self, AppConfig};
use herald_engine::ids::{AppId, TenantId};
use herald_engine::store::{Store, StoredApp};
use time::OffsetDateTime;

use crate::seal::Sealer;

/// How long an entry is used without looking at the store.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub enum AppLookup {
    Found(Arc<AppConfig>),
    /// The app no longer exists.
    Gone,
    /// The store could not be read, or the stored app could not be opened; try later.
    Unavailable(String),
}

struct Entry {
    config: Arc<AppConfig>,
    updated_at: OffsetDateTime,
    checked: Instant,
}

#[derive(Default)]
pub struct AppCache {
    entries: Mutex<HashMap<(TenantId, AppId), Entry>>,
}

impl AppCache {
    pub async fn get(
        &self,
        store: &dyn Store,
        sealer: &Sealer,
        tenant: &TenantId,
        app_id: &AppId,
    ) -> AppLookup {
        let key = (tenant.clone(), app_id.clone());
        if let Some(entry) = self.lock().get(&key)
            && entry.checked.elapsed() < FRESH_FOR
        {
            return AppLookup::Found(entry.config.clone());
        }
        let stored = match store.get_app(tenant, app_id).await {
            Ok(Some(stored)) => stored,
            Ok(None) => {
                self.lock().remove(&key);
                return AppLookup::Gone;
            }
            Err(e) => return AppLookup::Unavailable(format!("reading the app: {e}")),
        };
        {
            let mut entries = self.lock();
            if let Some(entry) = entries.get_mut(&key)
                && entry.updated_at == stored.updated_at
            {
                entry.checked = Instant::now();
                return AppLookup::Found(entry.config.clone());
            }
        }
        match open(sealer, tenant, &stored) {
            Ok(config) => {
                let config = Arc::new(config);
                self.lock().insert(
                    key,
                    Entry {
                        config: config.clone(),
                        updated_at: stored.updated_at,
                        checked: Instant::now(),
                    },
                );
                AppLookup::Found(config)
            }
            Err(why) => AppLookup::Unavailable(why),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, AppId), Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stored (masked) document with its sealed secrets put back.
fn open(sealer: &Sealer, tenant: &TenantId, stored: &StoredApp) -> Result<AppConfig, String> {
    let secrets = crate::api::apps::open_secrets(sealer, tenant, stored)
        .map_err(|_| "the app's secrets cannot be opened".to_string())?;
    let mut document = stored.document.clone();
    app::restore_secrets(&mut document, &secrets)
        .map_err(|e| format!("the app's secrets do not fit its document: {}", e.path))?;
    // serde's message could quote a value (a secret): say only that it failed.
    serde_json::from_value(document).map_err(|_| "the stored app does not parse".to_string())
}
