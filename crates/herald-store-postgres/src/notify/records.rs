//! The decision log, users' preferences and Web Push health checks.

use herald_engine::ids::{AppId, DeviceId, TenantId, UserId};
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::record::NotificationRecord;
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::codec::{
    Tx, execute, json_at, limit, millis, parsed_at, query, query_opt, rows, to_json,
};

pub(crate) async fn notification(
    tx: &Tx<'_>,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<NotificationRecord>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT record FROM notifications WHERE tenant_id = $1 AND id = $2",
        &[&tenant.as_str(), &id],
    )
    .await?;
    row.map(|row| json_at(&row, 0)).transpose()
}

pub(crate) async fn user_notifications(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
    n: usize,
) -> Result<Vec<NotificationRecord>, StoreError> {
    let found = query(
        tx,
        "SELECT record FROM notifications WHERE tenant_id = $1 AND user_id = $2
         ORDER BY created_at DESC, id DESC LIMIT $3",
        &[&tenant.as_str(), &user.as_str(), &limit(n)],
    )
    .await?;
    rows(found, |row| json_at(row, 0))
}

pub(crate) async fn put_preferences(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
    preferences: &Preferences,
) -> Result<(), StoreError> {
    execute(
        tx,
        "INSERT INTO preferences (tenant_id, user_id, document) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET document = excluded.document",
        &[&tenant.as_str(), &user.as_str(), &to_json(preferences)?],
    )
    .await
    .map(drop)
}

pub(crate) async fn expire_checks(
    tx: &Tx<'_>,
    now: OffsetDateTime,
) -> Result<Vec<(TenantId, UserId, DeviceId)>, StoreError> {
    let found = query(
        tx,
        "UPDATE device_checks SET expired = TRUE, unhealthy_since = coalesce(unhealthy_since, $1)
         WHERE acknowledged_at IS NULL AND NOT expired AND deadline <= $1
         RETURNING tenant_id, user_id, device_id",
        &[&millis(now)],
    )
    .await?;
    rows(found, |row| {
        Ok((
            parsed_at(row, 0, TenantId::parse)?,
            parsed_at(row, 1, UserId::parse)?,
            parsed_at(row, 2, DeviceId::parse)?,
        ))
    })
}

pub(crate) async fn acknowledge_check(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
    device: &DeviceId,
    check_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let changed = execute(
        tx,
        "UPDATE device_checks SET acknowledged_at = $5, unhealthy_since = NULL
         WHERE tenant_id = $1 AND user_id = $2 AND device_id = $3 AND check_id = $4
           AND acknowledged_at IS NULL",
        &[
            &tenant.as_str(),
            &user.as_str(),
            &device.as_str(),
            &check_id,
            &millis(now),
        ],
    )
    .await?;
    Ok(changed > 0)
}

/// Only devices still registered to the user count.
pub(crate) async fn unhealthy_devices(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<(DeviceId, AppId)>, StoreError> {
    let found = query(
        tx,
        "SELECT c.device_id, c.app_id FROM device_checks c
         JOIN devices d
           ON d.tenant_id = c.tenant_id AND d.id = c.device_id AND d.user_id = c.user_id
         WHERE c.tenant_id = $1 AND c.user_id = $2 AND c.unhealthy_since IS NOT NULL
         ORDER BY c.device_id",
        &[&tenant.as_str(), &user.as_str()],
    )
    .await?;
    rows(found, |row| {
        Ok((
            parsed_at(row, 0, DeviceId::parse)?,
            parsed_at(row, 1, AppId::parse)?,
        ))
    })
}
