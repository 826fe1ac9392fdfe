//! Devices. A device is unique per (tenant, app, channel, token); registration follows SPEC §2.3
//! (see `register`).

use herald_engine::device::{Device, DeviceChannel, DeviceRegistration, Platform, Registered};
use herald_engine::ids::{AppId, DeviceId, TenantId, UserId};
use herald_engine::store::StoreError;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::{
    Tx, corrupt, execute, get, known, limit, millis, parsed_at, query, query_opt, rows, time_at,
};

pub(crate) const COLUMNS: &str = "d.id, d.app_id, d.user_id, d.channel, d.token, d.subscription, \
     d.platform, d.locale, d.installation_id, d.created_at, d.updated_at";

/// Serializes registrations of one (tenant, app, channel): two nodes registering the same
/// token or installation at once would otherwise both miss the other's row.
const LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3, 1))";

/// In order:
/// 1. The token is registered for this app and channel: it is refreshed, and moves to the
///    registering user if another user held it.
/// 2. Else a device of the same installation is registered: it takes the new token in place
///    and belongs to the registering user.
/// 3. Else a device is created with `new_id`.
///
/// After 1, another device of the same installation (its previous token, still registered)
/// is deleted, so an installation is never reached twice. Updates keep a known installation id
/// when the registration has none.
pub(crate) async fn register(
    tx: &Tx<'_>,
    tenant: &TenantId,
    r: &DeviceRegistration,
    new_id: &DeviceId,
    now: OffsetDateTime,
) -> Result<(Device, Registered), StoreError> {
    execute(
        tx,
        LOCK,
        &[&tenant.as_str(), &r.app_id.as_str(), &r.channel.as_str()],
    )
    .await?;
    let (id, registered) = if let Some((id, owner)) = by_token(tx, tenant, r).await? {
        if r.installation_id.is_some() {
            delete_installation_except(tx, tenant, r, &id).await?;
        }
        write(tx, UPDATE, tenant, &id, r, now).await?;
        let registered = if owner == r.user_id {
            Registered::Refreshed
        } else {
            Registered::Transferred
        };
        (id, registered)
    } else if let Some(id) = by_installation(tx, tenant, r).await? {
        write(tx, UPDATE, tenant, &id, r, now).await?;
        (id, Registered::Rotated)
    } else {
        write(tx, INSERT, tenant, new_id, r, now).await?;
        (new_id.clone(), Registered::Created)
    };
    // Read back, so the answer is exactly what later reads return.
    let device = get_one(tx, tenant, &id)
        .await?
        .ok_or_else(|| StoreError::Unavailable("a registered device vanished".into()))?;
    Ok((device, registered))
}

async fn by_token(
    tx: &Tx<'_>,
    tenant: &TenantId,
    r: &DeviceRegistration,
) -> Result<Option<(DeviceId, UserId)>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT id, user_id FROM devices
         WHERE tenant_id = $1 AND app_id = $2 AND channel = $3 AND token = $4",
        &[
            &tenant.as_str(),
            &r.app_id.as_str(),
            &r.channel.as_str(),
            &r.token,
        ],
    )
    .await?;
    row.map(|row| {
        Ok((
            parsed_at(&row, 0, DeviceId::parse)?,
            parsed_at(&row, 1, UserId::parse)?,
        ))
    })
    .transpose()
}

async fn by_installation(
    tx: &Tx<'_>,
    tenant: &TenantId,
    r: &DeviceRegistration,
) -> Result<Option<DeviceId>, StoreError> {
    let Some(installation) = &r.installation_id else {
        return Ok(None);
    };
    let row = query_opt(
        tx,
        "SELECT id FROM devices
         WHERE tenant_id = $1 AND app_id = $2 AND channel = $3 AND installation_id = $4",
        &[
            &tenant.as_str(),
            &r.app_id.as_str(),
            &r.channel.as_str(),
            installation,
        ],
    )
    .await?;
    row.map(|row| parsed_at(&row, 0, DeviceId::parse))
        .transpose()
}

async fn delete_installation_except(
    tx: &Tx<'_>,
    tenant: &TenantId,
    r: &DeviceRegistration,
    keep: &DeviceId,
) -> Result<(), StoreError> {
    execute(
        tx,
        "DELETE FROM devices
         WHERE tenant_id = $1 AND app_id = $2 AND channel = $3 AND installation_id = $4
           AND id <> $5",
        &[
            &tenant.as_str(),
            &r.app_id.as_str(),
            &r.channel.as_str(),
            &r.installation_id,
            &keep.as_str(),
        ],
    )
    .await?;
    Ok(())
}

const INSERT: &str = "INSERT INTO devices (tenant_id, id, app_id, user_id, channel, token,
        subscription, platform, locale, installation_id, created_at, updated_at)
     VALUES ($1, $2, $10, $3, $11, $4, $5, $6, $7, $8, $9, $9)";

/// Everything but the id, the app, the channel and `created_at` follows the registration,
/// except that a registration without an installation id keeps the one already known.
const UPDATE: &str = "UPDATE devices SET user_id = $3, token = $4, subscription = $5,
        platform = $6, locale = $7, installation_id = coalesce($8, installation_id),
        updated_at = $9
     WHERE tenant_id = $1 AND id = $2 AND app_id = $10 AND channel = $11";

async fn write(
    tx: &Tx<'_>,
    sql: &str,
    tenant: &TenantId,
    id: &DeviceId,
    r: &DeviceRegistration,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let subscription = r
        .subscription
        .as_ref()
        .map(crate::codec::to_json)
        .transpose()?;
    execute(
        tx,
        sql,
        &[
            &tenant.as_str(),
            &id.as_str(),
            &r.user_id.as_str(),
            &r.token,
            &subscription,
            &r.platform.as_str(),
            &r.locale,
            &r.installation_id,
            &millis(now),
            &r.app_id.as_str(),
            &r.channel.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// Web Push devices of an app due a health check: never checked, or last checked before
/// `checked_before` with nothing outstanding.
pub(crate) async fn to_check(
    tx: &Tx<'_>,
    tenant: &TenantId,
    app: &AppId,
    checked_before: OffsetDateTime,
    n: usize,
) -> Result<Vec<Device>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM devices d
         LEFT JOIN device_checks c ON c.tenant_id = d.tenant_id AND c.device_id = d.id
         WHERE d.tenant_id = $1 AND d.app_id = $2 AND d.channel = 'webpush'
           AND (c.device_id IS NULL
                OR (c.sent_at < $3 AND (c.acknowledged_at IS NOT NULL OR c.expired)))
         ORDER BY d.id LIMIT $4"
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
        &tenant.as_str(),
        &app.as_str(),
        &millis(checked_before),
        &limit(n),
    ];
    rows(query(tx, &sql, &params).await?, device_from)
}

/// Oldest first.
pub(crate) async fn list(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<Device>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM devices d WHERE d.tenant_id = $1 AND d.user_id = $2
         ORDER BY d.created_at, d.id"
    );
    rows(
        query(tx, &sql, &[&tenant.as_str(), &user.as_str()]).await?,
        device_from,
    )
}

pub(crate) async fn get_one(
    tx: &Tx<'_>,
    tenant: &TenantId,
    id: &DeviceId,
) -> Result<Option<Device>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM devices d WHERE d.tenant_id = $1 AND d.id = $2");
    let row = query_opt(tx, &sql, &[&tenant.as_str(), &id.as_str()]).await?;
    row.as_ref().map(device_from).transpose()
}

pub(crate) async fn delete(
    tx: &Tx<'_>,
    tenant: &TenantId,
    id: &DeviceId,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM devices WHERE tenant_id = $1 AND id = $2";
    Ok(execute(tx, sql, &[&tenant.as_str(), &id.as_str()]).await? > 0)
}

/// Only this user's devices: a token that has since moved to another user stays theirs.
pub(crate) async fn delete_by_token(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
    token: &str,
) -> Result<u64, StoreError> {
    let sql = "DELETE FROM devices WHERE tenant_id = $1 AND user_id = $2 AND token = $3";
    execute(tx, sql, &[&tenant.as_str(), &user.as_str(), &token]).await
}

pub(crate) async fn delete_for_user(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<u64, StoreError> {
    let sql = "DELETE FROM devices WHERE tenant_id = $1 AND user_id = $2";
    execute(tx, sql, &[&tenant.as_str(), &user.as_str()]).await
}

pub(crate) fn device_from(row: &Row) -> Result<Device, StoreError> {
    let subscription = get::<Option<&str>>(row, 5)?
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| corrupt("subscription", e))?;
    Ok(Device {
        id: parsed_at(row, 0, DeviceId::parse)?,
        app_id: parsed_at(row, 1, AppId::parse)?,
        user_id: parsed_at(row, 2, UserId::parse)?,
        channel: parsed_at(row, 3, |s| known(DeviceChannel::parse(&s), "channel"))?,
        token: get(row, 4)?,
        subscription,
        platform: parsed_at(row, 6, |s| known(Platform::parse(&s), "platform"))?,
        locale: get(row, 7)?,
        installation_id: get(row, 8)?,
        created_at: time_at(row, 9)?,
        updated_at: time_at(row, 10)?,
    })
}
