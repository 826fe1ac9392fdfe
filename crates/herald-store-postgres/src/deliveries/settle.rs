//! Settling a claimed delivery: its outcome, its history, and what an invalid device target
//! does to the device and its other deliveries.

use herald_engine::delivery::{Attempt, DeliveryStatus, Settlement};
use herald_engine::device::Device;
use herald_engine::ids::TenantId;
use herald_engine::push::Target;
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::codec::{Tx, count_at, execute, get, json_at, millis, query, query_opt, to_json};

/// What `settle` needs of the stored row.
struct Settling {
    attempts: u32,
    history: Vec<Attempt>,
    target: Target,
    notification: String,
}

impl Settling {
    fn record(&mut self, attempt: Attempt) {
        self.attempts = self.attempts.saturating_add(1);
        self.history.push(attempt);
    }
}

/// (status, next attempt, note); `None` for the next attempt keeps the stored one.
type Outcome = (DeliveryStatus, Option<OffsetDateTime>, Option<String>);

/// Records the outcome of a claimed delivery; a no-op unless it is pending and leased.
pub(crate) async fn settle(
    tx: &Tx<'_>,
    tenant: &TenantId,
    id: &str,
    settlement: Settlement,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let Some(mut row) = leased(tx, tenant, id).await? else {
        return Ok(());
    };
    let invalid_device = match (&settlement, &row.target) {
        (Settlement::InvalidTarget(_), Target::Device { device }) => Some(device.clone()),
        _ => None,
    };
    let (status, next_at, note) = outcome(&mut row, settlement);
    if let Some(device) = invalid_device {
        remove_device(tx, tenant, id, &device, note.as_deref(), now).await?;
    }
    execute(
        tx,
        "UPDATE deliveries SET status = $3, attempts = $4, history = $5, note = $6,
                               next_attempt_at = coalesce($7, next_attempt_at),
                               lease_until = NULL, updated_at = $8
         WHERE tenant_id = $1 AND id = $2",
        &[
            &tenant.as_str(),
            &id,
            &status.as_str(),
            &i64::from(row.attempts),
            &to_json(&row.history)?,
            &note,
            &next_at.map(millis),
            &millis(now),
        ],
    )
    .await?;
    if status != DeliveryStatus::Pending {
        crate::concluded::conclude(tx, tenant, &row.notification, now).await?;
    }
    Ok(())
}

/// The delivery, locked, if it is pending and leased.
async fn leased(tx: &Tx<'_>, tenant: &TenantId, id: &str) -> Result<Option<Settling>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT attempts, history, target, notification_id FROM deliveries
         WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND lease_until IS NOT NULL
         FOR UPDATE",
        &[&tenant.as_str(), &id],
    )
    .await?;
    row.map(|row| {
        Ok(Settling {
            attempts: u32::try_from(count_at(&row, 0)?).unwrap_or(u32::MAX),
            history: json_at(&row, 1)?,
            target: json_at(&row, 2)?,
            notification: get(&row, 3)?,
        })
    })
    .transpose()
}

fn outcome(row: &mut Settling, settlement: Settlement) -> Outcome {
    match settlement {
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
            (DeliveryStatus::InvalidTarget, None, note)
        }
        Settlement::Expired { reason } => (DeliveryStatus::Expired, None, Some(reason)),
        Settlement::Cancelled { reason } => (DeliveryStatus::Cancelled, None, Some(reason)),
    }
}

/// The device is gone: delete it while it still holds the token this delivery was made for (a
/// device that registered a fresh token since is kept), and fail every other pending delivery
/// made for that token — it would never be delivered.
async fn remove_device(
    tx: &Tx<'_>,
    tenant: &TenantId,
    id: &str,
    device: &Device,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    execute(
        tx,
        "DELETE FROM devices WHERE tenant_id = $1 AND id = $2 AND token = $3",
        &[&tenant.as_str(), &device.id.as_str(), &device.token],
    )
    .await?;
    let note = match reason {
        Some(reason) => format!("the device was removed: {reason}"),
        None => "the device was removed".to_string(),
    };
    let failed = query(
        tx,
        "UPDATE deliveries
         SET status = 'invalid_target', note = $5, lease_until = NULL, updated_at = $6
         WHERE tenant_id = $1 AND device_id = $2 AND id <> $3 AND status = 'pending'
           AND (target::jsonb #>> '{device,token}') = $4
         RETURNING notification_id",
        &[
            &tenant.as_str(),
            &device.id.as_str(),
            &id,
            &device.token,
            &note,
            &millis(now),
        ],
    )
    .await?;
    for row in &failed {
        let notification: String = get(row, 0)?;
        crate::concluded::conclude(tx, tenant, &notification, now).await?;
    }
    Ok(())
}
