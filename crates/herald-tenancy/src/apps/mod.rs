//! Apps (push configurations) as a service: storing a document (validation, presets, VAPID
//! keys, credential checks, sealing its secrets), opening a stored one, and the one cache every
//! reader of apps shares. The HTTP API, the CLI, the notification engine and the delivery core
//! all come here; none of them handles sealed secrets itself.

mod cache;
mod presets;

use std::collections::BTreeMap;

use herald_engine::app::{self, AppConfig};
use herald_engine::ids::{AppId, TenantId};
use herald_engine::store::{Store, StoreError, StoredApp};
use herald_engine::validate::Invalid;
use serde_json::Value;

pub use cache::{AppCache, AppLookup, Apps};

use crate::seal::Sealer;

/// Why an app document was not stored.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The document is invalid; the path names the field.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealed secrets that cannot be opened (a changed master key); never a caller's fault.
    #[error("{0}")]
    Sealed(String),
}

/// The sealing context of an app's secrets: a sealed blob opens only for its own app.
fn context(tenant: &TenantId, app: &AppId) -> String {
    format!("app:{tenant}:{app}")
}

/// The secrets of a stored app, by their paths in the document.
pub fn open_secrets(
    sealer: &Sealer,
    tenant: &TenantId,
    stored: &StoredApp,
) -> Result<BTreeMap<String, String>, AppError> {
    let bytes = sealer
        .open(&context(tenant, &stored.app_id), &stored.sealed_secrets)
        .map_err(|e| AppError::Sealed(format!("open app secrets: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| AppError::Sealed(format!("decode app secrets: {e}")))
}

/// The stored (masked) document with its sealed secrets put back, parsed.
pub fn open(sealer: &Sealer, tenant: &TenantId, stored: &StoredApp) -> Result<AppConfig, String> {
    let secrets = open_secrets(sealer, tenant, stored)
        .map_err(|_| "the app's secrets cannot be opened".to_string())?;
    let mut document = stored.document.clone();
    app::restore_secrets(&mut document, &secrets)
        .map_err(|e| format!("the app's secrets do not fit its document: {}", e.path))?;
    // serde's message could quote a value (a secret): say only that it failed.
    serde_json::from_value(document).map_err(|_| "the stored app does not parse".to_string())
}

/// How an app document is stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// Generate a new VAPID key pair even though the app has one. Every browser subscription
    /// made with the old public key stops working, so this is only ever done when asked.
    pub rotate_vapid_keys: bool,
}

/// Validates and stores an app document. Answers whether it was created, and the stored
/// document with secrets masked. A secret sent back masked keeps its stored value, and so
/// does a VAPID key pair the document leaves out (see [`StoreOptions::rotate_vapid_keys`]).
pub async fn store_app(
    store: &dyn Store,
    sealer: &Sealer,
    tenant: &TenantId,
    app_id: &AppId,
    mut document: Value,
    now: time::OffsetDateTime,
    options: StoreOptions,
) -> Result<(bool, Value), AppError> {
    if !document.is_object() {
        return Err(Invalid::new("", "the app document must be a JSON object").into());
    }
    let existing = store.get_app(tenant, app_id).await?;
    let previous = match &existing {
        Some(stored) => open_secrets(sealer, tenant, stored)?,
        None => BTreeMap::new(),
    };
    app::restore_secrets(&mut document, &previous)?;
    if !options.rotate_vapid_keys
        && let Some(stored) = &existing
    {
        presets::keep_vapid_keys(&mut document, &stored.document, &previous);
    }
    presets::preset_defaults(&mut document);
    presets::vapid_keys(&mut document);
    let config: AppConfig = herald_engine::validate::from_value(document)?;
    config.validate()?;
    herald_channels::credentials::check(&config)?;
    let mut canonical = serde_json::to_value(&config).expect("an app config serialises");
    let secrets = app::take_secrets(&mut canonical);
    let stored = StoredApp {
        app_id: app_id.clone(),
        document: canonical.clone(),
        sealed_secrets: sealer.seal(
            &context(tenant, app_id),
            &serde_json::to_vec(&secrets).expect("a map serialises"),
        ),
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let created = store.put_app(tenant, &stored).await?;
    Ok((created, canonical))
}
