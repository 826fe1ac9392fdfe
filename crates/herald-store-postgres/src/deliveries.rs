//! The delivery queue (the engine's `DeliveryQueue` port) on the `deliveries` table.
//!
//! - A delivery is inserted `pending` with no attempt made (`insert`, called inside the
//!   notification engine's own transaction, or `PostgresStore::enqueue_deliveries`).
//! - `claim` leases due, unleased (or lease-expired) pending deliveries, earliest first:
//!   `FOR UPDATE SKIP LOCKED` hands each row to one claimer, on any node, and the lease moves
//!   `next_attempt_at` to its end, so leased deliveries leave the due range.
//! - `settle` records a claimed delivery's outcome and releases its lease (row locked
//!   `FOR UPDATE`). It applies only to a delivery that is pending and leased; anything else is
//!   a no-op, so settling twice is harmless.
//! - A claim checks a device target against the devices table: a delivery is never handed out
//!   for a device that was removed or moved to another user.
//! - An invalid device target removes the device (only while it still holds the token the
//!   delivery was made for) and fails every other pending delivery made for that token.
//!
//! `attempts` counts the attempts made; a claimed delivery's `attempt` is `attempts + 1`.
//! `history` is the JSON array of `Attempt`s; `note` says in words why a delivery waits,
//! failed or expired.

mod settle;

pub(crate) use settle::settle;

use herald_engine::delivery::{Attempt, DeliveryStatus, DeliveryView};
use herald_engine::ids::{AppId, TenantId};
use herald_engine::push::{Delivery, Push, Target};
use herald_engine::store::StoreError;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::{
    Tx, corrupt, count_at, execute, from_millis, get, json_at, known, limit, millis, parsed_at,
    query, query_opt, rows, time_at, to_json,
};
use crate::devices;

/// Inserts a new pending delivery, due at `next_attempt_at`. `delivery.attempt` is ignored: a
/// new delivery has made no attempt. An id already stored for the tenant is `AlreadyExists`.
pub(crate) async fn insert(
    tx: &Tx<'_>,
    delivery: &Delivery,
    next_attempt_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (device_id, endpoint_id) = match &delivery.target {
        Target::Device { device } => (Some(device.id.as_str()), None),
        Target::Webhook { endpoint_id, .. } => (None, Some(endpoint_id.as_str())),
        Target::Email { .. } => (None, None),
    };
    let inserted = execute(
        tx,
        "INSERT INTO deliveries (tenant_id, id, notification_id, app_id, channel, device_id,
                                 endpoint_id, target, push, status, attempts, history, note,
                                 next_attempt_at, lease_until, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, '[]', NULL, $10, NULL,
                 $11, $11)
         ON CONFLICT DO NOTHING",
        &[
            &delivery.tenant_id.as_str(),
            &delivery.id,
            &delivery.notification_id,
            &delivery.app_id.as_str(),
            &delivery.channel,
            &device_id,
            &endpoint_id,
            &to_json(&delivery.target)?,
            &to_json(&delivery.push)?,
            &millis(next_attempt_at),
            &millis(now),
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

/// Due deliveries, earliest first; rows another claimer holds are skipped, not waited for.
const CLAIM_DUE: &str = "SELECT tenant_id, id, notification_id, app_id, channel, target, push,
            attempts
     FROM deliveries
     WHERE status = 'pending' AND next_attempt_at <= $1
       AND (lease_until IS NULL OR lease_until <= $1)
     ORDER BY next_attempt_at, tenant_id, id
     LIMIT $2
     FOR UPDATE SKIP LOCKED";

/// Leases up to `limit` due deliveries until `now + lease`, earliest due first. A device
/// target is checked against the device as it is now: removed, or moved to another user → the
/// delivery is cancelled instead; re-registered by the same user → it goes to the device as
/// it is now.
pub(crate) async fn claim(
    tx: &Tx<'_>,
    now: OffsetDateTime,
    lease: time::Duration,
    n: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let due = rows(
        query(tx, CLAIM_DUE, &[&millis(now), &limit(n)]).await?,
        delivery_from,
    )?;
    let until = millis(now + lease);
    let mut leased = Vec::with_capacity(due.len());
    for mut delivery in due {
        let mut target = None;
        if let Target::Device { device } = &delivery.target {
            match devices::get_one(tx, &delivery.tenant_id, &device.id).await? {
                Some(current) if current == *device => {}
                Some(current) if current.user_id == device.user_id => {
                    delivery.target = Target::Device { device: current };
                    target = Some(to_json(&delivery.target)?);
                }
                Some(_) => {
                    cancel(tx, &delivery, "the device was moved to another user", now).await?;
                    continue;
                }
                None => {
                    cancel(tx, &delivery, "the device was removed", now).await?;
                    continue;
                }
            }
        }
        execute(
            tx,
            "UPDATE deliveries SET lease_until = $3, next_attempt_at = $3,
                                   target = coalesce($4, target)
             WHERE tenant_id = $1 AND id = $2",
            &[&delivery.tenant_id.as_str(), &delivery.id, &until, &target],
        )
        .await?;
        leased.push(delivery);
    }
    Ok(leased)
}

/// A delivery whose device went away before it could go: cancelled, never sent.
async fn cancel(
    tx: &Tx<'_>,
    delivery: &Delivery,
    reason: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE deliveries SET status = 'cancelled', note = $3, lease_until = NULL,
                               updated_at = $4
         WHERE tenant_id = $1 AND id = $2",
        &[
            &delivery.tenant_id.as_str(),
            &delivery.id,
            &reason,
            &millis(now),
        ],
    )
    .await?;
    crate::concluded::conclude(tx, &delivery.tenant_id, &delivery.notification_id, now).await
}

fn delivery_from(row: &Row) -> Result<Delivery, StoreError> {
    let target: Target = json_at(row, 5)?;
    let push: Push = json_at(row, 6)?;
    let attempts = u32::try_from(count_at(row, 7)?).unwrap_or(u32::MAX);
    Ok(Delivery {
        tenant_id: parsed_at(row, 0, TenantId::parse)?,
        id: get(row, 1)?,
        notification_id: get(row, 2)?,
        app_id: parsed_at(row, 3, AppId::parse)?,
        channel: get(row, 4)?,
        target,
        push,
        attempt: attempts.saturating_add(1),
    })
}

/// When the earliest pending delivery becomes claimable. A claim sets `next_attempt_at` to the
/// end of the lease, so that is the first row of the `deliveries_due` index.
pub(crate) async fn next_at(tx: &Tx<'_>) -> Result<Option<OffsetDateTime>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT next_attempt_at FROM deliveries WHERE status = 'pending'
         ORDER BY next_attempt_at LIMIT 1",
        &[],
    )
    .await?;
    row.map(|row| from_millis(get(&row, 0)?)).transpose()
}

/// A notification's deliveries, in the order they were created (then by id).
pub(crate) async fn of_notification(
    tx: &Tx<'_>,
    tenant: &TenantId,
    notification_id: &str,
) -> Result<Vec<DeliveryView>, StoreError> {
    let found = query(
        tx,
        "SELECT id, channel, device_id, endpoint_id, status, history, note, next_attempt_at
         FROM deliveries WHERE tenant_id = $1 AND notification_id = $2
         ORDER BY created_at, id",
        &[&tenant.as_str(), &notification_id],
    )
    .await?;
    rows(found, view_from)
}

fn view_from(row: &Row) -> Result<DeliveryView, StoreError> {
    let status = parsed_at(row, 4, |s| {
        known(DeliveryStatus::parse(&s), "delivery status")
    })?;
    let attempts: Vec<Attempt> = json_at(row, 5).map_err(|e| corrupt("history", format!("{e}")))?;
    let next_attempt_at = if status == DeliveryStatus::Pending {
        Some(time_at(row, 7)?)
    } else {
        None
    };
    Ok(DeliveryView {
        id: get(row, 0)?,
        channel: get(row, 1)?,
        device_id: get(row, 2)?,
        endpoint_id: get(row, 3)?,
        status,
        attempts,
        note: get(row, 6)?,
        next_attempt_at,
    })
}
