//! Apps: the public document as JSON text beside the sealed secrets, which the store keeps
//! as opaque bytes.

use herald_engine::ids::{AppId, TenantId};
use herald_engine::store::{StoreError, StoredApp};
use tokio_postgres::Row;

use crate::codec::{
    Tx, execute, get, json_at, millis, parsed_at, query, query_opt, rows, time_at, to_json,
};

const COLUMNS: &str = "app_id, document, sealed_secrets, created_at, updated_at";

/// Answers whether the app was created. A replacement keeps the first `created_at`.
pub(crate) async fn put(
    tx: &Tx<'_>,
    tenant: &TenantId,
    app: &StoredApp,
) -> Result<bool, StoreError> {
    let document = to_json(&app.document)?;
    // `xmax = 0` only on a row this statement inserted (an update leaves its own xid).
    let row = crate::codec::query_one(
        tx,
        "INSERT INTO apps (tenant_id, app_id, document, sealed_secrets, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, app_id) DO UPDATE SET
             document = excluded.document,
             sealed_secrets = excluded.sealed_secrets,
             updated_at = excluded.updated_at
         RETURNING (xmax = 0)",
        &[
            &tenant.as_str(),
            &app.app_id.as_str(),
            &document,
            &app.sealed_secrets,
            &millis(app.created_at),
            &millis(app.updated_at),
        ],
    )
    .await?;
    get(&row, 0)
}

pub(crate) async fn get_one(
    tx: &Tx<'_>,
    tenant: &TenantId,
    app: &AppId,
) -> Result<Option<StoredApp>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM apps WHERE tenant_id = $1 AND app_id = $2");
    let row = query_opt(tx, &sql, &[&tenant.as_str(), &app.as_str()]).await?;
    row.as_ref().map(app_from).transpose()
}

pub(crate) async fn list(tx: &Tx<'_>, tenant: &TenantId) -> Result<Vec<StoredApp>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM apps WHERE tenant_id = $1 ORDER BY app_id");
    rows(query(tx, &sql, &[&tenant.as_str()]).await?, app_from)
}

/// Deletes the app and every device registered for it.
pub(crate) async fn delete(
    tx: &Tx<'_>,
    tenant: &TenantId,
    app: &AppId,
) -> Result<bool, StoreError> {
    let keys: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant.as_str(), &app.as_str()];
    execute(
        tx,
        "DELETE FROM devices WHERE tenant_id = $1 AND app_id = $2",
        &keys,
    )
    .await?;
    let deleted = execute(
        tx,
        "DELETE FROM apps WHERE tenant_id = $1 AND app_id = $2",
        &keys,
    )
    .await?;
    Ok(deleted > 0)
}

fn app_from(row: &Row) -> Result<StoredApp, StoreError> {
    Ok(StoredApp {
        app_id: parsed_at(row, 0, AppId::parse)?,
        document: json_at(row, 1)?,
        sealed_secrets: get(row, 2)?,
        created_at: time_at(row, 3)?,
        updated_at: time_at(row, 4)?,
    })
}
