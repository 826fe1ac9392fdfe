//! Apps: the public document as JSON text beside the sealed secrets, which the store keeps
//! as opaque bytes.

use herald_engine::ids::{AppId, TenantId};
use herald_engine::store::{StoreError, StoredApp};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::codec::{db, millis, parsed_at, time_at};

/// Answers whether the app was created. A replacement keeps the first `created_at`.
pub(crate) fn put(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    app: &StoredApp,
) -> Result<bool, StoreError> {
    let document = serde_json::to_string(&app.document)
        .map_err(|e| StoreError::Unavailable(format!("app document: {e}")))?;
    let existed = tx
        .prepare_cached("SELECT 1 FROM apps WHERE tenant_id = ?1 AND app_id = ?2")
        .and_then(|mut stmt| stmt.exists([tenant.as_str(), app.app_id.as_str()]))
        .map_err(db)?;
    tx.prepare_cached(
        "INSERT INTO apps (tenant_id, app_id, document, sealed_secrets, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant_id, app_id) DO UPDATE SET
             document = excluded.document,
             sealed_secrets = excluded.sealed_secrets,
             updated_at = excluded.updated_at",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            app.app_id.as_str(),
            document,
            app.sealed_secrets,
            millis(app.created_at),
            millis(app.updated_at),
        ])
    })
    .map_err(db)?;
    Ok(!existed)
}

pub(crate) fn get(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    app: &AppId,
) -> Result<Option<StoredApp>, StoreError> {
    tx.prepare_cached(
        "SELECT app_id, document, sealed_secrets, created_at, updated_at
         FROM apps WHERE tenant_id = ?1 AND app_id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row([tenant.as_str(), app.as_str()], app_from)
            .optional()
    })
    .map_err(db)
}

pub(crate) fn list(tx: &Transaction<'_>, tenant: &TenantId) -> Result<Vec<StoredApp>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT app_id, document, sealed_secrets, created_at, updated_at
             FROM apps WHERE tenant_id = ?1 ORDER BY app_id",
        )
        .map_err(db)?;
    let rows = stmt.query_map([tenant.as_str()], app_from).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// Deletes the app and every device registered for it.
pub(crate) fn delete(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    app: &AppId,
) -> Result<bool, StoreError> {
    let keys = [tenant.as_str(), app.as_str()];
    tx.prepare_cached("DELETE FROM devices WHERE tenant_id = ?1 AND app_id = ?2")
        .and_then(|mut stmt| stmt.execute(keys))
        .map_err(db)?;
    let deleted = tx
        .prepare_cached("DELETE FROM apps WHERE tenant_id = ?1 AND app_id = ?2")
        .and_then(|mut stmt| stmt.execute(keys))
        .map_err(db)?;
    Ok(deleted > 0)
}

fn app_from(row: &Row<'_>) -> rusqlite::Result<StoredApp> {
    Ok(StoredApp {
        app_id: parsed_at(row, 0, AppId::parse)?,
        document: parsed_at(row, 1, |text| serde_json::from_str(&text))?,
        sealed_secrets: row.get(2)?,
        created_at: time_at(row, 3)?,
        updated_at: time_at(row, 4)?,
    })
}
