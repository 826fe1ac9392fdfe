//! The decision log and users' preferences.

use herald_engine::ids::{TenantId, UserId};
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::record::NotificationRecord;
use herald_engine::store::StoreError;
use rusqlite::{OptionalExtension, Transaction, params};

use super::*;
use crate::codec::db;

pub(crate) fn notification(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<NotificationRecord>, StoreError> {
    tx.prepare_cached("SELECT record FROM notifications WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), id], |row| json_at(row, 0))
                .optional()
        })
        .map_err(db)
}

pub(crate) fn user_notifications(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
    limit: usize,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT record FROM notifications WHERE tenant_id = ?1 AND user_id = ?2
             ORDER BY created_at DESC, id DESC LIMIT ?3",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(
            params![
                tenant.as_str(),
                user.as_str(),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| json_at(row, 0),
        )
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) fn put_preferences(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
    preferences: &Preferences,
) -> Result<(), StoreError> {
    let document = to_json(preferences)?;
    exec(
        tx,
        "INSERT INTO preferences (tenant_id, user_id, document) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET document = excluded.document",
        params![tenant.as_str(), user.as_str(), document],
    )
}
