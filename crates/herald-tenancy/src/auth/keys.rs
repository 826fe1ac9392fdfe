//! Tenant server keys. A key is `hk_` + 256 random bits (base64url). Only its SHA-256 is
//! stored: with that much entropy a slow password hash adds nothing, and a fast hash keeps
//! every request's lookup cheap.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_engine::ids::{KeyId, TenantId};
use herald_engine::store::{Store, StoreError};
use herald_engine::tenant::ApiKey;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub const KEY_PREFIX: &str = "hk_";

pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A freshly created key: the secret is shown once, then only its hash exists.
pub struct NewKey {
    pub key: ApiKey,
    pub secret: String,
}

pub async fn create(
    store: &dyn Store,
    tenant: &TenantId,
    name: &str,
    now: OffsetDateTime,
) -> Result<NewKey, StoreError> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let mut id_bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut id_bytes);
    let key = ApiKey {
        id: KeyId::parse(format!("key_{}", hex::encode(id_bytes)))
            .expect("generated ids are valid"),
        tenant_id: tenant.clone(),
        name: name.to_string(),
        prefix: secret[..KEY_PREFIX.len() + 6].to_string(),
        created_at: now,
        revoked_at: None,
    };
    store.create_api_key(&key, hash(&secret)).await?;
    Ok(NewKey { key, secret })
}

/// The live key a bearer secret names, if any.
pub async fn authenticate(store: &dyn Store, secret: &str) -> Result<Option<ApiKey>, StoreError> {
    if !secret.starts_with(KEY_PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    store.find_api_key(hash(secret)).await
}
