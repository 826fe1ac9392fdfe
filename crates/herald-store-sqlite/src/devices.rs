//! Devices. A device is unique per (tenant, app, channel, token); registration follows SPEC §2.3
//! (see `register`).

use herald_engine::device::{Device, DeviceChannel, DeviceRegistration, Platform, Registered};
use herald_engine::ids::{AppId, DeviceId, TenantId, UserId};
use herald_engine::store::StoreError;
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use time::OffsetDateTime;

use crate::codec::{conversion, db, known, millis, parsed_at, time_at};

const COLUMNS: &str = "id, app_id, user_id, channel, token, subscription, platform, locale, \
                       installation_id, created_at, updated_at";

/// In order:
/// 1. The token is registered for this app and channel: it is refreshed, and moves to the
///    registering user if another user held it.
/// 2. Else a device of the same installation is registered: it takes the new token in place
///    (the app was given a new token) and belongs to the registering user.
/// 3. Else a device is created with `new_id`.
///
/// After 1, another device of the same installation (its previous token, still registered)
/// is deleted, so an installation is never reached twice. Updates keep a known installation id
/// when the registration has none (see `update`).
pub(crate) fn register(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    registration: &DeviceRegistration,
    new_id: &DeviceId,
    now: OffsetDateTime,
) -> Result<(Device, Registered), StoreError> {
    let (id, registered) = if let Some((id, owner)) = by_token(tx, tenant, registration)? {
        if registration.installation_id.is_some() {
            delete_installation_except(tx, tenant, registration, &id)?;
        }
        update(tx, tenant, &id, registration, now)?;
        let registered = if owner == registration.user_id {
            Registered::Refreshed
        } else {
            Registered::Transferred
        };
        (id, registered)
    } else if let Some(id) = by_installation(tx, tenant, registration)? {
        update(tx, tenant, &id, registration, now)?;
        (id, Registered::Rotated)
    } else {
        insert(tx, tenant, new_id, registration, now)?;
        (new_id.clone(), Registered::Created)
    };
    // Read back, so the answer is exactly what later reads return.
    let device = get(tx, tenant, &id)?
        .ok_or_else(|| StoreError::Unavailable("a registered device vanished".into()))?;
    Ok((device, registered))
}

fn by_token(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    r: &DeviceRegistration,
) -> Result<Option<(DeviceId, UserId)>, StoreError> {
    tx.prepare_cached(
        "SELECT id, user_id FROM devices
         WHERE tenant_id = ?1 AND app_id = ?2 AND channel = ?3 AND token = ?4",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                tenant.as_str(),
                r.app_id.as_str(),
                r.channel.as_str(),
                r.token
            ],
            |row| {
                Ok((
                    parsed_at(row, 0, DeviceId::parse)?,
                    parsed_at(row, 1, UserId::parse)?,
                ))
            },
        )
        .optional()
    })
    .map_err(db)
}

fn by_installation(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    r: &DeviceRegistration,
) -> Result<Option<DeviceId>, StoreError> {
    let Some(installation) = &r.installation_id else {
        return Ok(None);
    };
    tx.prepare_cached(
        "SELECT id FROM devices
         WHERE tenant_id = ?1 AND app_id = ?2 AND channel = ?3 AND installation_id = ?4",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                tenant.as_str(),
                r.app_id.as_str(),
                r.channel.as_str(),
                installation
            ],
            |row| parsed_at(row, 0, DeviceId::parse),
        )
        .optional()
    })
    .map_err(db)
}

fn delete_installation_except(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    r: &DeviceRegistration,
    keep: &DeviceId,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "DELETE FROM devices
         WHERE tenant_id = ?1 AND app_id = ?2 AND channel = ?3 AND installation_id = ?4
           AND id <> ?5",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            r.app_id.as_str(),
            r.channel.as_str(),
            r.installation_id,
            keep.as_str(),
        ])
    })
    .map_err(db)?;
    Ok(())
}

fn insert(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &DeviceId,
    r: &DeviceRegistration,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO devices (tenant_id, id, app_id, user_id, channel, token, subscription,
                              platform, locale, installation_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            id.as_str(),
            r.app_id.as_str(),
            r.user_id.as_str(),
            r.channel.as_str(),
            r.token,
            subscription_json(r)?,
            r.platform.as_str(),
            r.locale,
            r.installation_id,
            millis(now),
        ])
    })
    .map_err(db)?;
    Ok(())
}

/// Everything but the id, the app, the channel and `created_at` follows the registration,
/// except that a registration without an installation id keeps the one already known: the
/// token still comes from that installation, and forgetting it would let its next token
/// create a second device.
fn update(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &DeviceId,
    r: &DeviceRegistration,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE devices SET user_id = ?3, token = ?4, subscription = ?5, platform = ?6,
                            locale = ?7, installation_id = coalesce(?8, installation_id),
                            updated_at = ?9
         WHERE tenant_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            id.as_str(),
            r.user_id.as_str(),
            r.token,
            subscription_json(r)?,
            r.platform.as_str(),
            r.locale,
            r.installation_id,
            millis(now),
        ])
    })
    .map_err(db)?;
    Ok(())
}

fn subscription_json(r: &DeviceRegistration) -> rusqlite::Result<Option<String>> {
    r.subscription
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Web Push devices of an app due a health check: never checked, or last checked before
/// `checked_before` with nothing outstanding.
pub(crate) fn to_check(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    app: &AppId,
    checked_before: OffsetDateTime,
    limit: usize,
) -> Result<Vec<Device>, StoreError> {
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("d.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {columns} FROM devices d
             LEFT JOIN device_checks c ON c.tenant_id = d.tenant_id AND c.device_id = d.id
             WHERE d.tenant_id = ?1 AND d.app_id = ?2 AND d.channel = 'webpush'
               AND (c.device_id IS NULL
                    OR (c.sent_at < ?3 AND (c.acknowledged_at IS NOT NULL OR c.expired = 1)))
             ORDER BY d.id LIMIT ?4"
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map(
            rusqlite::params![
                tenant.as_str(),
                app.as_str(),
                millis(checked_before),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            device_from,
        )
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// Oldest first.
pub(crate) fn list(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<Device>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM devices WHERE tenant_id = ?1 AND user_id = ?2
             ORDER BY created_at, id"
        ))
        .map_err(db)?;
    let rows = stmt
        .query_map([tenant.as_str(), user.as_str()], device_from)
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) fn get(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &DeviceId,
) -> Result<Option<Device>, StoreError> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM devices WHERE tenant_id = ?1 AND id = ?2"
    ))
    .and_then(|mut stmt| {
        stmt.query_row([tenant.as_str(), id.as_str()], device_from)
            .optional()
    })
    .map_err(db)
}

pub(crate) fn delete(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &DeviceId,
) -> Result<bool, StoreError> {
    let deleted = tx
        .prepare_cached("DELETE FROM devices WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut stmt| stmt.execute([tenant.as_str(), id.as_str()]))
        .map_err(db)?;
    Ok(deleted > 0)
}

/// Only this user's devices: a token that has since moved to another user stays theirs.
pub(crate) fn delete_by_token(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
    token: &str,
) -> Result<u64, StoreError> {
    let deleted = tx
        .prepare_cached("DELETE FROM devices WHERE tenant_id = ?1 AND user_id = ?2 AND token = ?3")
        .and_then(|mut stmt| stmt.execute([tenant.as_str(), user.as_str(), token]))
        .map_err(db)?;
    Ok(deleted as u64)
}

pub(crate) fn delete_for_user(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<u64, StoreError> {
    let deleted = tx
        .prepare_cached("DELETE FROM devices WHERE tenant_id = ?1 AND user_id = ?2")
        .and_then(|mut stmt| stmt.execute([tenant.as_str(), user.as_str()]))
        .map_err(db)?;
    Ok(deleted as u64)
}

fn device_from(row: &Row<'_>) -> rusqlite::Result<Device> {
    let subscription = row
        .get::<_, Option<String>>(5)?
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| conversion(5, Type::Text, e))?;
    Ok(Device {
        id: parsed_at(row, 0, DeviceId::parse)?,
        app_id: parsed_at(row, 1, AppId::parse)?,
        user_id: parsed_at(row, 2, UserId::parse)?,
        channel: parsed_at(row, 3, |s| known(DeviceChannel::parse(&s), "channel"))?,
        token: row.get(4)?,
        subscription,
        platform: parsed_at(row, 6, |s| known(Platform::parse(&s), "platform"))?,
        locale: row.get(7)?,
        installation_id: row.get(8)?,
        created_at: time_at(row, 9)?,
        updated_at: time_at(row, 10)?,
    })
}
