//! Creating tenants (with their first key and token secrets) — shared by the CLI, the admin API
//! and the first start of the embedded default.

use std::path::Path;

use herald_engine::ids::TenantId;
use herald_engine::store::{Store, StoreError};
use herald_engine::tenant::{Tenant, TenantAuth};
use time::OffsetDateTime;

use crate::auth::keys::{self, NewKey};
use crate::auth::tokens::TenantSecrets;
use crate::seal::Sealer;

pub const DEFAULT_TENANT: &str = "default";
pub const DEFAULT_KEY_FILE: &str = "default-tenant.key";

pub async fn create_tenant(
    store: &dyn Store,
    sealer: &Sealer,
    id: &TenantId,
    name: &str,
    now: OffsetDateTime,
) -> Result<NewKey, StoreError> {
    let tenant = Tenant {
        id: id.clone(),
        name: name.to_string(),
        created_at: now,
    };
    let auth = TenantAuth {
        sealed_secrets: TenantSecrets::generate().seal(sealer, id),
        public_key_pem: None,
        public_key_alg: None,
    };
    store.create_tenant(&tenant, &auth).await?;
    keys::create(store, id, "initial", now).await
}

/// On the first start of an empty store: creates tenant `default`, prints its key once and
/// writes it (mode 0600) to the data folder so a newcomer can start at once.
pub async fn default_tenant(
    store: &dyn Store,
    sealer: &Sealer,
    data_dir: &Path,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    if !store.list_tenants().await?.is_empty() {
        return Ok(());
    }
    let id = TenantId::parse(DEFAULT_TENANT).expect("valid id");
    let key = match create_tenant(store, sealer, &id, "Default tenant", now).await {
        Ok(key) => key,
        // Cluster nodes starting together race to create it; the first one prints its key.
        Err(_) if store.get_tenant(&id).await?.is_some() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let file = data_dir.join(DEFAULT_KEY_FILE);
    // A key file left from a wiped store names a key that no longer exists.
    let _ = std::fs::remove_file(&file);
    crate::fsutil::write_private(&file, format!("{}\n", key.secret).as_bytes())?;
    // Printed once, on purpose: this is the operator's first credential. It is not logged.
    println!(
        "Created tenant `default`. Its server key (also in {}):\n\n    {}\n",
        file.display(),
        key.secret
    );
    Ok(())
}
