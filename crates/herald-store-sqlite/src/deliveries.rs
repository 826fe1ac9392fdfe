//! The delivery queue (the engine's `DeliveryQueue` port) on the `deliveries` table.
//!
//! - A delivery is inserted `pending` with no attempt made (`insert`, called inside the
//!   notification engine's own transaction, or `SqliteStore::enqueue_deliveries`).
//! - `claim` leases due, unleased (or lease-expired) pending deliveries, earliest first, in one
//!   writer job: the single writer makes a claim atomic, so two claimers never get the same
//!   delivery.
//! - `settle` records a claimed delivery's outcome and releases its lease. It applies only to a
//!   delivery that is pending and leased; anything else (already settled, released, unknown,
//!   another tenant's) is a no-op, so settling twice is harmless.
//! - A claim checks a device target against the devices table (see `claim`): a delivery is
//!   never handed out for a device that was removed or moved to another user.
//! - An invalid device target removes the device (only while it still holds the token the
//!   delivery was made for) and fails every other pending delivery made for that token.
//! - A `Cancelled` settlement (the delivery core found a newer push with the same collapse key
//!   already sent to the target) ends it `cancelled` with its reason, no attempt recorded.
//!
//! `attempts` counts the attempts made; a claimed delivery's `attempt` is `attempts + 1`.
//! `history` is the JSON array of `Attempt`s; `note` says in words why a delivery waits,
//! failed or expired.

use herald_engine::delivery::{Attempt, DeliveryStatus, DeliveryView, Settlement};
use herald_engine::ids::{AppId, TenantId};
use herald_engine::push::{Delivery, Push, Target};
use herald_engine::store::StoreError;
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use time::OffsetDateTime;

use crate::codec::{conversion, count_at, db, known, millis, parsed_at, time_at};
use crate::devices;

fn json_error(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Unavailable(format!("delivery {what}: {e}"))
}

/// Inserts a new pending delivery, due at `next_attempt_at`. `delivery.attempt` is ignored: a
/// new delivery has made no attempt. An id already stored for the tenant is `AlreadyExists`.
pub(crate) fn insert(
    tx: &Transaction<'_>,
    delivery: &Delivery,
    next_attempt_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (device_id, endpoint_id) = match &delivery.target {
        Target::Device { device } => (Some(device.id.as_str()), None),
        Target::Webhook { endpoint_id, .. } => (None, Some(endpoint_id.as_str())),
        Target::Email { .. } => (None, None),
    };
    let target = serde_json::to_string(&delivery.target).map_err(|e| json_error("target", e))?;
    let push = serde_json::to_string(&delivery.push).map_err(|e| json_error("push", e))?;
    let exists = tx
        .prepare_cached("SELECT 1 FROM deliveries WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.exists([delivery.tenant_id.as_str(), delivery.id.as_str()]))
        .map_err(db)?;
    if exists {
        return Err(StoreError::AlreadyExists);
    }
    tx.prepare_cached(
        "INSERT INTO deliveries (tenant_id, id, notification_id, app_id, channel, device_id,
                                 endpoint_id, target, push, status, attempts, history, note,
                                 next_attempt_at, lease_until, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', 0, '[]', NULL, ?10, NULL,
                 ?11, ?11)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            delivery.tenant_id.as_str(),
            delivery.id,
            delivery.notification_id,
            delivery.app_id.as_str(),
            delivery.channel,
            device_id,
            endpoint_id,
            target,
            push,
            millis(next_attempt_at),
            millis(now),
        ])
    })
    .map_err(db)?;
    Ok(())
}

/// Due deliveries, earliest first: one range of `deliveries_due` (leased deliveries sit past
/// `now`, at the end of their lease).
pub(crate) const CLAIM_DUE: &str =
    "SELECT tenant_id, id, notification_id, app_id, channel, target, push, attempts
     FROM deliveries
     WHERE status = 'pending' AND next_attempt_at <= ?1
       AND (lease_until IS NULL OR lease_until <= ?1)
     ORDER BY next_attempt_at, tenant_id, id
     LIMIT ?2";

/// Leases up to `limit` due deliveries until `now + lease`, earliest due first. A device
/// target is checked against the device as it is now: removed, or moved to another user → the
/// delivery is cancelled instead (a signed-out user gets nothing); re-registered by the same
/// user (a rotated token) → it goes to the device as it is now.
pub(crate) fn claim(
    tx: &Transaction<'_>,
    now: OffsetDateTime,
    lease: time::Duration,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let claimed = {
        let mut stmt = tx.prepare_cached(CLAIM_DUE).map_err(db)?;
        let rows = stmt
            .query_map(params![millis(now), limit], delivery_from)
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)?
    };
    let until = millis(now + lease);
    let mut leased = Vec::with_capacity(claimed.len());
    for mut delivery in claimed {
        let mut target = None;
        if let Target::Device { device } = &delivery.target {
            match devices::get(tx, &delivery.tenant_id, &device.id)? {
                Some(current) if current == *device => {}
                // Same user, re-registered (a new token for the same installation, new keys):
                // the push goes to the device as it is now.
                Some(current) if current.user_id == device.user_id => {
                    let json = serde_json::to_string(&Target::Device {
                        device: current.clone(),
                    })
                    .map_err(|e| json_error("target", e))?;
                    target = Some(json);
                    delivery.target = Target::Device { device: current };
                }
                Some(_) => {
                    cancel(tx, &delivery, "the device was moved to another user", now)?;
                    continue;
                }
                None => {
                    cancel(tx, &delivery, "the device was removed", now)?;
                    continue;
                }
            }
        }
        // The delivery leaves the due range until its lease runs out (see `next_at`).
        tx.prepare_cached(
            "UPDATE deliveries SET lease_until = ?3, next_attempt_at = ?3,
                                   target = coalesce(?4, target)
             WHERE tenant_id = ?1 AND id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                delivery.tenant_id.as_str(),
                delivery.id,
                until,
                target
            ])
        })
        .map_err(db)?;
        leased.push(delivery);
    }
    Ok(leased)
}

/// A delivery whose device went away (signed out, deregistered, moved to another user) before
/// it could go: cancelled, never sent.
fn cancel(
    tx: &Transaction<'_>,
    delivery: &Delivery,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE deliveries SET status = 'cancelled', note = ?3, lease_until = NULL, updated_at = ?4
         WHERE tenant_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            delivery.tenant_id.as_str(),
            delivery.id,
            reason,
            millis(now)
        ])
    })
    .map_err(db)?;
    crate::concluded::conclude(tx, &delivery.tenant_id, &delivery.notification_id, now)
}

fn delivery_from(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let target: Target = serde_json::from_str(&row.get::<_, String>(5)?)
        .map_err(|e| conversion(5, Type::Text, e))?;
    let push: Push = serde_json::from_str(&row.get::<_, String>(6)?)
        .map_err(|e| conversion(6, Type::Text, e))?;
    let attempts = u32::try_from(count_at(row, 7)?).unwrap_or(u32::MAX);
    Ok(Delivery {
        tenant_id: parsed_at(row, 0, TenantId::parse)?,
        id: row.get(1)?,
        notification_id: row.get(2)?,
        app_id: parsed_at(row, 3, AppId::parse)?,
        channel: row.get(4)?,
        target,
        push,
        attempt: attempts.saturating_add(1),
    })
}

/// What `settle` needs of the stored row.
struct Settling {
    attempts: u32,
    history: Vec<Attempt>,
    target: Target,
}

/// Records the outcome of a claimed delivery; a no-op unless it is pending and leased.
pub(crate) fn settle(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &str,
    settlement: Settlement,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let row = tx
        .prepare_cached(
            "SELECT attempts, history, target, notification_id FROM deliveries
             WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending' AND lease_until IS NOT NULL",
        )
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), id], |row| {
                Ok((
                    count_at(row, 0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .optional()
        })
        .map_err(db)?;
    let Some((attempts, history, target, notification)) = row else {
        return Ok(());
    };
    let mut row = Settling {
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        history: serde_json::from_str(&history).map_err(|e| json_error("history", e))?,
        target: serde_json::from_str(&target).map_err(|e| json_error("target", e))?,
    };

    // (status, next attempt, note); `None` for the next attempt keeps the stored one.
    let (status, next_at, note) = match settlement {
        Settlement::Delivered(attempt) => {
            row.record(attempt);
            (DeliveryStatus::Delivered, None, None)
        }
        Settlement::Retry { attempt, next_at } => {
            let note = attempt.outcome.reason().map(str::to_string);
            row.record(attempt);
            (DeliveryStatus::Pending, Some(next_at), note)
        }
        Settlement::Postpone { next_at, reason } => {
            (DeliveryStatus::Pending, Some(next_at), Some(reason))
        }
        Settlement::Failed(attempt) => {
            let note = attempt.outcome.reason().map(str::to_string);
            row.record(attempt);
            (DeliveryStatus::Failed, None, note)
        }
        Settlement::GaveUp(attempt) => {
            let note = attempt.outcome.reason().map(str::to_string).map(|r| {
                format!(
                    "gave up after {} attempt{}: {r}",
                    row.attempts + 1,
                    if row.attempts == 0 { "" } else { "s" }
                )
            });
            row.record(attempt);
            (DeliveryStatus::Failed, None, note)
        }
        Settlement::InvalidTarget(attempt) => {
            let note = attempt.outcome.reason().map(str::to_string);
            row.record(attempt);
            if let Target::Device { device } = &row.target {
                remove_device(tx, tenant, id, device, note.as_deref(), now)?;
            }
            (DeliveryStatus::InvalidTarget, None, note)
        }
        Settlement::Expired { reason } => (DeliveryStatus::Expired, None, Some(reason)),
        Settlement::Cancelled { reason } => (DeliveryStatus::Cancelled, None, Some(reason)),
    };
    let history = serde_json::to_string(&row.history).map_err(|e| json_error("history", e))?;
    tx.prepare_cached(
        "UPDATE deliveries SET status = ?3, attempts = ?4, history = ?5, note = ?6,
                               next_attempt_at = coalesce(?7, next_attempt_at),
                               lease_until = NULL, updated_at = ?8
         WHERE tenant_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            id,
            status.as_str(),
            i64::from(row.attempts),
            history,
            note,
            next_at.map(millis),
            millis(now),
        ])
    })
    .map_err(db)?;
    if status != DeliveryStatus::Pending {
        crate::concluded::conclude(tx, tenant, &notification, now)?;
    }
    Ok(())
}

impl Settling {
    fn record(&mut self, attempt: Attempt) {
        self.attempts = self.attempts.saturating_add(1);
        self.history.push(attempt);
    }
}

// `INDEXED BY`: without statistics SQLite would walk the tenant's whole delivery history by
// the primary key's `tenant_id` prefix (see `crate::plans`). The first fails a dead device's
// other pending deliveries to the same token.
pub(crate) const FAIL_DEVICE_DELIVERIES: &str =
    "UPDATE deliveries INDEXED BY deliveries_pending_by_device
     SET status = 'invalid_target', note = ?5, lease_until = NULL, updated_at = ?6
     WHERE tenant_id = ?1 AND device_id = ?2 AND id <> ?3 AND status = 'pending'
       AND json_extract(target, '$.device.token') = ?4
     RETURNING notification_id";
pub(crate) const OF_NOTIFICATION: &str =
    "SELECT id, channel, device_id, endpoint_id, status, history, note, next_attempt_at
     FROM deliveries INDEXED BY deliveries_by_notification
     WHERE tenant_id = ?1 AND notification_id = ?2
     ORDER BY created_at, id";

/// The device is gone: delete it while it still holds the token this delivery was made for (a
/// device that registered a fresh token since is kept), and fail every other pending delivery
/// made for that token — it would never be delivered.
fn remove_device(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &str,
    device: &herald_engine::device::Device,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM devices WHERE tenant_id = ?1 AND id = ?2 AND token = ?3")
        .and_then(|mut stmt| stmt.execute([tenant.as_str(), device.id.as_str(), &device.token]))
        .map_err(db)?;
    let note = match reason {
        Some(reason) => format!("the device was removed: {reason}"),
        None => "the device was removed".to_string(),
    };
    let failed: Vec<String> = tx
        .prepare_cached(FAIL_DEVICE_DELIVERIES)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    tenant.as_str(),
                    device.id.as_str(),
                    id,
                    device.token,
                    note,
                    millis(now),
                ],
                |row| row.get(0),
            )?
            .collect()
        })
        .map_err(db)?;
    for notification in failed {
        crate::concluded::conclude(tx, tenant, &notification, now)?;
    }
    Ok(())
}

/// When the earliest pending delivery becomes claimable. A claim sets `next_attempt_at` to the
/// end of the lease, so that is the first row of the `deliveries_due` index.
pub(crate) fn next_at(tx: &Transaction<'_>) -> Result<Option<OffsetDateTime>, StoreError> {
    let earliest: Option<i64> = tx
        .prepare_cached(
            "SELECT next_attempt_at FROM deliveries WHERE status = 'pending'
             ORDER BY next_attempt_at LIMIT 1",
        )
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
        .map_err(db)?;
    earliest
        .map(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map_err(|_| StoreError::Unavailable("time out of range".into()))
        })
        .transpose()
}

/// A notification's deliveries, in the order they were created (then by id).
pub(crate) fn of_notification(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    notification_id: &str,
) -> Result<Vec<DeliveryView>, StoreError> {
    let mut stmt = tx.prepare_cached(OF_NOTIFICATION).map_err(db)?;
    let rows = stmt
        .query_map([tenant.as_str(), notification_id], view_from)
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn view_from(row: &Row<'_>) -> rusqlite::Result<DeliveryView> {
    let status = parsed_at(row, 4, |s| {
        known(DeliveryStatus::parse(&s), "delivery status")
    })?;
    let attempts: Vec<Attempt> = serde_json::from_str(&row.get::<_, String>(5)?)
        .map_err(|e| conversion(5, Type::Text, e))?;
    let next_attempt_at = if status == DeliveryStatus::Pending {
        Some(time_at(row, 7)?)
    } else {
        None
    };
    Ok(DeliveryView {
        id: row.get(0)?,
        channel: row.get(1)?,
        device_id: row.get(2)?,
        endpoint_id: row.get(3)?,
        status,
        attempts,
        note: row.get(6)?,
        next_attempt_at,
    })
}
