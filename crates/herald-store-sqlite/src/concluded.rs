//! A notification's status follows its deliveries: once none is pending, a record that says
//! `sent` may become `partial`, `failed` or `cancelled` (see `NotificationRecord::conclude`). Runs inside the
//! transaction that ended the last pending delivery, so the two never disagree.

use std::collections::BTreeMap;

use herald_engine::ids::TenantId;
use herald_engine::notify::record::{NotificationRecord, Tally};
use herald_engine::store::StoreError;
use rusqlite::{OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use crate::codec::db;

pub(crate) const STATUSES: &str =
    "SELECT status, count(*) FROM deliveries INDEXED BY deliveries_by_notification
     WHERE tenant_id = ?1 AND notification_id = ?2 GROUP BY status";

/// Re-derives the status of `notification` from its deliveries.
pub(crate) fn conclude(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    notification: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let counts: BTreeMap<String, usize> = tx
        .prepare_cached(STATUSES)
        .and_then(|mut stmt| {
            stmt.query_map([tenant.as_str(), notification], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?
            .map(|r| r.map(|(s, n)| (s, usize::try_from(n).unwrap_or(0))))
            .collect()
        })
        .map_err(db)?;
    if counts.contains_key("pending") {
        return Ok(());
    }
    let count = |status: &str| counts.get(status).copied().unwrap_or(0);
    let ended = Tally {
        total: counts.values().sum(),
        delivered: count("delivered"),
        cancelled: count("cancelled"),
    };
    let stored: Option<String> = tx
        .prepare_cached("SELECT record FROM notifications WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), notification], |row| row.get(0))
                .optional()
        })
        .map_err(db)?;
    let Some(stored) = stored else {
        return Ok(());
    };
    let mut record: NotificationRecord = serde_json::from_str(&stored)
        .map_err(|e| StoreError::Unavailable(format!("notification record: {e}")))?;
    if !record.conclude(ended, now) {
        return Ok(());
    }
    let json = serde_json::to_string(&record)
        .map_err(|e| StoreError::Unavailable(format!("notification record: {e}")))?;
    tx.prepare_cached(
        "UPDATE notifications SET status = ?3, record = ?4 WHERE tenant_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            notification,
            record.status.as_str(),
            json
        ])
    })
    .map_err(db)?;
    Ok(())
}
