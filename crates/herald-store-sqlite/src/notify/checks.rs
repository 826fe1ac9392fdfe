//! Web Push health checks: sent, expired, acknowledged, unhealthy.

use herald_engine::ids::{AppId, DeviceId, TenantId, UserId};
use herald_engine::store::StoreError;
use rusqlite::{Transaction, params};
use time::OffsetDateTime;

use super::*;
use crate::codec::{db, millis};

pub(crate) fn expire_checks(
    tx: &Transaction<'_>,
    now: OffsetDateTime,
) -> Result<Vec<(TenantId, UserId, DeviceId)>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE device_checks SET expired = 1, unhealthy_since = coalesce(unhealthy_since, ?1)
             WHERE acknowledged_at IS NULL AND expired = 0 AND deadline <= ?1
             RETURNING tenant_id, user_id, device_id",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([millis(now)], |row| {
            Ok((
                id_at(row, 0, TenantId::parse)?,
                id_at(row, 1, UserId::parse)?,
                id_at(row, 2, DeviceId::parse)?,
            ))
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// `INDEXED BY`: without statistics SQLite would walk every check of the tenant by the primary
/// key's `tenant_id` prefix (see `crate::plans`).
pub(crate) const UNHEALTHY_DEVICES: &str = "SELECT c.device_id, c.app_id
     FROM device_checks c INDEXED BY device_checks_unhealthy
     JOIN devices d ON d.tenant_id = c.tenant_id AND d.id = c.device_id AND d.user_id = c.user_id
     WHERE c.tenant_id = ?1 AND c.user_id = ?2 AND c.unhealthy_since IS NOT NULL
     ORDER BY c.device_id";

pub(crate) fn acknowledge_check(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
    device: &DeviceId,
    check_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE device_checks SET acknowledged_at = ?5, unhealthy_since = NULL
             WHERE tenant_id = ?1 AND user_id = ?2 AND device_id = ?3 AND check_id = ?4 AND acknowledged_at IS NULL",
        )
        .and_then(|mut stmt| stmt.execute(params![tenant.as_str(), user.as_str(), device.as_str(), check_id, millis(now)]))
        .map_err(db)?;
    Ok(changed > 0)
}

pub(crate) fn unhealthy_devices(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<(DeviceId, AppId)>, StoreError> {
    // Only devices still registered to the user count.
    let mut stmt = tx.prepare_cached(UNHEALTHY_DEVICES).map_err(db)?;
    let rows = stmt
        .query_map([tenant.as_str(), user.as_str()], |row| {
            Ok((
                id_at(row, 0, DeviceId::parse)?,
                id_at(row, 1, AppId::parse)?,
            ))
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}
