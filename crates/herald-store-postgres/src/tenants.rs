//! Tenants, their client-token settings and their API keys. Keys are found by the hash of
//! the secret only; every other key operation is scoped to the tenant that owns the key.

use herald_engine::ids::{KeyId, TenantId};
use herald_engine::store::StoreError;
use herald_engine::tenant::{ApiKey, Tenant, TenantAuth};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::{
    Tx, execute, get, millis, opt_time_at, parsed_at, query, query_opt, rows, time_at,
};

pub(crate) async fn create(
    tx: &Tx<'_>,
    tenant: &Tenant,
    auth: &TenantAuth,
) -> Result<(), StoreError> {
    let inserted = execute(
        tx,
        "INSERT INTO tenants (id, name, created_at, sealed_secrets, public_key_pem, public_key_alg)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
        &[
            &tenant.id.as_str(),
            &tenant.name,
            &millis(tenant.created_at),
            &auth.sealed_secrets,
            &auth.public_key_pem,
            &auth.public_key_alg,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(crate) async fn list(tx: &Tx<'_>) -> Result<Vec<Tenant>, StoreError> {
    let found = query(
        tx,
        "SELECT id, name, created_at FROM tenants ORDER BY id",
        &[],
    )
    .await?;
    rows(found, tenant_from)
}

pub(crate) async fn get_one(
    tx: &Tx<'_>,
    id: &TenantId,
) -> Result<Option<(Tenant, TenantAuth)>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT id, name, created_at, sealed_secrets, public_key_pem, public_key_alg
         FROM tenants WHERE id = $1",
        &[&id.as_str()],
    )
    .await?;
    row.map(|row| {
        let auth = TenantAuth {
            sealed_secrets: get(&row, 3)?,
            public_key_pem: get(&row, 4)?,
            public_key_alg: get(&row, 5)?,
        };
        Ok((tenant_from(&row)?, auth))
    })
    .transpose()
}

pub(crate) async fn set_auth(
    tx: &Tx<'_>,
    id: &TenantId,
    auth: &TenantAuth,
) -> Result<bool, StoreError> {
    let updated = execute(
        tx,
        "UPDATE tenants SET sealed_secrets = $2, public_key_pem = $3, public_key_alg = $4
         WHERE id = $1",
        &[
            &id.as_str(),
            &auth.sealed_secrets,
            &auth.public_key_pem,
            &auth.public_key_alg,
        ],
    )
    .await?;
    Ok(updated > 0)
}

/// A key id or a hash that is already stored is `AlreadyExists`: a hash names one key.
pub(crate) async fn create_key(
    tx: &Tx<'_>,
    key: &ApiKey,
    hash: [u8; 32],
) -> Result<(), StoreError> {
    let inserted = execute(
        tx,
        "INSERT INTO api_keys (tenant_id, id, name, prefix, hash, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT DO NOTHING",
        &[
            &key.tenant_id.as_str(),
            &key.id.as_str(),
            &key.name,
            &key.prefix,
            &&hash[..],
            &millis(key.created_at),
            &key.revoked_at.map(millis),
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(crate) async fn find_key(tx: &Tx<'_>, hash: [u8; 32]) -> Result<Option<ApiKey>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT tenant_id, id, name, prefix, created_at, revoked_at
         FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
        &[&&hash[..]],
    )
    .await?;
    row.as_ref().map(key_from).transpose()
}

/// Oldest first, the order an operator created them in.
pub(crate) async fn list_keys(tx: &Tx<'_>, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
    let found = query(
        tx,
        "SELECT tenant_id, id, name, prefix, created_at, revoked_at
         FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
        &[&tenant.as_str()],
    )
    .await?;
    rows(found, key_from)
}

/// Answers whether the tenant has such a key; revoking twice keeps the first revocation time.
pub(crate) async fn revoke_key(
    tx: &Tx<'_>,
    tenant: &TenantId,
    id: &KeyId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = execute(
        tx,
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3)
         WHERE tenant_id = $1 AND id = $2",
        &[&tenant.as_str(), &id.as_str(), &millis(at)],
    )
    .await?;
    Ok(updated > 0)
}

fn tenant_from(row: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: parsed_at(row, 0, TenantId::parse)?,
        name: get(row, 1)?,
        created_at: time_at(row, 2)?,
    })
}

fn key_from(row: &Row) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        tenant_id: parsed_at(row, 0, TenantId::parse)?,
        id: parsed_at(row, 1, KeyId::parse)?,
        name: get(row, 2)?,
        prefix: get(row, 3)?,
        created_at: time_at(row, 4)?,
        revoked_at: opt_time_at(row, 5)?,
    })
}
