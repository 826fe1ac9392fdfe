//! Tenants, their client-token settings and their API keys. Keys are found by the hash of
//! the secret only; every other key operation is scoped to the tenant that owns the key.

use herald_engine::ids::{KeyId, TenantId};
use herald_engine::store::StoreError;
use herald_engine::tenant::{ApiKey, Tenant, TenantAuth};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use time::OffsetDateTime;

use crate::codec::{db, millis, opt_time_at, parsed_at, time_at};

pub(crate) fn create(
    tx: &Transaction<'_>,
    tenant: &Tenant,
    auth: &TenantAuth,
) -> Result<(), StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO tenants
                 (id, name, created_at, sealed_secrets, public_key_pem, public_key_alg)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                tenant.id.as_str(),
                tenant.name,
                millis(tenant.created_at),
                auth.sealed_secrets,
                auth.public_key_pem,
                auth.public_key_alg,
            ])
        })
        .map_err(db)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(crate) fn list(tx: &Transaction<'_>) -> Result<Vec<Tenant>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT id, name, created_at FROM tenants ORDER BY id")
        .map_err(db)?;
    let rows = stmt.query_map([], tenant_from).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) fn get(
    tx: &Transaction<'_>,
    id: &TenantId,
) -> Result<Option<(Tenant, TenantAuth)>, StoreError> {
    tx.prepare_cached(
        "SELECT id, name, created_at, sealed_secrets, public_key_pem, public_key_alg
         FROM tenants WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([id.as_str()], |row| {
            let auth = TenantAuth {
                sealed_secrets: row.get(3)?,
                public_key_pem: row.get(4)?,
                public_key_alg: row.get(5)?,
            };
            Ok((tenant_from(row)?, auth))
        })
        .optional()
    })
    .map_err(db)
}

pub(crate) fn set_auth(
    tx: &Transaction<'_>,
    id: &TenantId,
    auth: &TenantAuth,
) -> Result<bool, StoreError> {
    let updated = tx
        .prepare_cached(
            "UPDATE tenants SET sealed_secrets = ?2, public_key_pem = ?3, public_key_alg = ?4
             WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                id.as_str(),
                auth.sealed_secrets,
                auth.public_key_pem,
                auth.public_key_alg,
            ])
        })
        .map_err(db)?;
    Ok(updated > 0)
}

/// A key id or a hash that is already stored is `AlreadyExists`: a hash names one key.
pub(crate) fn create_key(
    tx: &Transaction<'_>,
    key: &ApiKey,
    hash: [u8; 32],
) -> Result<(), StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO api_keys (tenant_id, id, name, prefix, hash, created_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                key.tenant_id.as_str(),
                key.id.as_str(),
                key.name,
                key.prefix,
                hash,
                millis(key.created_at),
                key.revoked_at.map(millis),
            ])
        })
        .map_err(db)?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(crate) fn find_key(tx: &Transaction<'_>, hash: [u8; 32]) -> Result<Option<ApiKey>, StoreError> {
    tx.prepare_cached(
        "SELECT tenant_id, id, name, prefix, created_at, revoked_at
         FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL",
    )
    .and_then(|mut stmt| stmt.query_row([hash], key_from).optional())
    .map_err(db)
}

/// Oldest first, the order an operator created them in.
pub(crate) fn list_keys(
    tx: &Transaction<'_>,
    tenant: &TenantId,
) -> Result<Vec<ApiKey>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT tenant_id, id, name, prefix, created_at, revoked_at
             FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at, id",
        )
        .map_err(db)?;
    let rows = stmt.query_map([tenant.as_str()], key_from).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// Answers whether the tenant has such a key; revoking twice keeps the first revocation time.
pub(crate) fn revoke_key(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &KeyId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = tx
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?3)
             WHERE tenant_id = ?1 AND id = ?2",
        )
        .and_then(|mut stmt| stmt.execute(params![tenant.as_str(), id.as_str(), millis(at)]))
        .map_err(db)?;
    Ok(updated > 0)
}

fn tenant_from(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: parsed_at(row, 0, TenantId::parse)?,
        name: row.get(1)?,
        created_at: time_at(row, 2)?,
    })
}

fn key_from(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        tenant_id: parsed_at(row, 0, TenantId::parse)?,
        id: parsed_at(row, 1, KeyId::parse)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        created_at: time_at(row, 4)?,
        revoked_at: opt_time_at(row, 5)?,
    })
}
