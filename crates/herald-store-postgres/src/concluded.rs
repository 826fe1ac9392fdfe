//! A notification's status follows its deliveries: once none is pending, a record that says
//! `sent` may become `partial`, `failed` or `cancelled` (`NotificationRecord::conclude`). Runs inside the
//! transaction that ended a delivery, after locking the notification row: two deliveries of
//! one notification settled at once on two nodes are counted one after the other, so the
//! last one to end always sees the other's status.

use std::collections::BTreeMap;

use herald_engine::ids::TenantId;
use herald_engine::notify::record::{NotificationRecord, Tally};
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::codec::{Tx, corrupt, execute, get, query, query_opt, to_json};

/// Re-derives the status of `notification` from its deliveries.
pub(crate) async fn conclude(
    tx: &Tx<'_>,
    tenant: &TenantId,
    notification: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let stored = query_opt(
        tx,
        "SELECT record FROM notifications WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        &[&tenant.as_str(), &notification],
    )
    .await?;
    let Some(stored) = stored else {
        return Ok(());
    };
    let counts = statuses(tx, tenant, notification).await?;
    if counts.contains_key("pending") {
        return Ok(());
    }
    let count = |status: &str| counts.get(status).copied().unwrap_or(0);
    let ended = Tally {
        total: counts.values().sum(),
        delivered: count("delivered"),
        cancelled: count("cancelled"),
    };
    let mut record: NotificationRecord =
        serde_json::from_str(get(&stored, 0)?).map_err(|e| corrupt("notification record", e))?;
    if !record.conclude(ended, now) {
        return Ok(());
    }
    execute(
        tx,
        "UPDATE notifications SET status = $3, record = $4 WHERE tenant_id = $1 AND id = $2",
        &[
            &tenant.as_str(),
            &notification,
            &record.status.as_str(),
            &to_json(&record)?,
        ],
    )
    .await?;
    Ok(())
}

async fn statuses(
    tx: &Tx<'_>,
    tenant: &TenantId,
    notification: &str,
) -> Result<BTreeMap<String, usize>, StoreError> {
    let found = query(
        tx,
        "SELECT status, count(*) FROM deliveries
         WHERE tenant_id = $1 AND notification_id = $2 GROUP BY status",
        &[&tenant.as_str(), &notification],
    )
    .await?;
    found
        .iter()
        .map(|row| {
            let n: i64 = get(row, 1)?;
            Ok((get(row, 0)?, usize::try_from(n).unwrap_or(0)))
        })
        .collect()
}
