//! The notification engine's state: the outbox, threads (with their timers), per-user state,
//! calls, preferences and the decision log. Engine state is stored as JSON documents: the
//! engine owns their shape, the store only indexes what it must query (due times, users).

use std::collections::BTreeMap;

use herald_engine::event::StoredEvent;
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::notify::calls::CallState;
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::record::NotificationRecord;
use herald_engine::notify::store::{
    EventInputs, MAX_TRANSCRIPT_LINES, NotifyCommit, OutboxItem, ThreadKey, UserContext,
};
use herald_engine::notify::timing::{Thread, UserState};
use herald_engine::store::StoreError;
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::codec::{conversion, count_at, db, int, millis, opt_time_at, parsed_at};
use crate::{devices, membership};

fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unavailable(format!("engine state: {e}")))
}

/// Runs one cached statement.
fn exec(tx: &Transaction<'_>, sql: &str, values: impl rusqlite::Params) -> Result<(), StoreError> {
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(values))
        .map_err(db)?;
    Ok(())
}

fn json_at<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| conversion(idx, Type::Text, e))
}

fn id_at<T>(
    row: &Row<'_>,
    idx: usize,
    parse: fn(String) -> Result<T, herald_engine::validate::Invalid>,
) -> rusqlite::Result<T> {
    parsed_at(row, idx, parse)
}

pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    position: u64,
) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO outbox (tenant_id, conversation_id, position) VALUES (?1, ?2, ?3)",
        params![tenant.as_str(), conversation.as_str(), int(position)],
    )
}

pub(crate) fn outbox(tx: &Transaction<'_>, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT seq, tenant_id, conversation_id, position FROM outbox ORDER BY seq LIMIT ?1",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            Ok(OutboxItem {
                seq: row.get(0)?,
                tenant: id_at(row, 1, TenantId::parse)?,
                conversation: id_at(row, 2, ConversationId::parse)?,
                position: count_at(row, 3)?,
            })
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) fn user_context(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
    conversation: Option<&ConversationId>,
) -> Result<UserContext, StoreError> {
    let mut threads = BTreeMap::new();
    let mut stmt = tx
        .prepare_cached(
            "SELECT app_id, conversation_id, state FROM threads
             WHERE tenant_id = ?1 AND user_id = ?2 AND (?3 IS NULL OR conversation_id = ?3)",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(
            params![
                tenant.as_str(),
                user.as_str(),
                conversation.map(|c| c.as_str())
            ],
            |row| {
                Ok((
                    (
                        id_at(row, 0, AppId::parse)?,
                        id_at(row, 1, ConversationId::parse)?,
                    ),
                    json_at::<Thread>(row, 2)?,
                ))
            },
        )
        .map_err(db)?;
    for row in rows {
        let (key, thread) = row.map_err(db)?;
        threads.insert(key, thread);
    }
    let mut states = BTreeMap::new();
    let mut stmt = tx
        .prepare_cached(
            "SELECT app_id, state FROM user_states WHERE tenant_id = ?1 AND user_id = ?2",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([tenant.as_str(), user.as_str()], |row| {
            Ok((id_at(row, 0, AppId::parse)?, json_at::<UserState>(row, 1)?))
        })
        .map_err(db)?;
    for row in rows {
        let (app, state) = row.map_err(db)?;
        states.insert(app, state);
    }
    let preferences = tx
        .prepare_cached("SELECT document FROM preferences WHERE tenant_id = ?1 AND user_id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), user.as_str()], |row| {
                json_at::<Preferences>(row, 0)
            })
            .optional()
        })
        .map_err(db)?
        .unwrap_or_default();
    let member_email = match conversation {
        Some(c) => membership::get(tx, tenant, c, user)?.and_then(|m| m.participant.email),
        None => None,
    };
    Ok(UserContext {
        email: preferences.email.clone().or(member_email),
        devices: devices::list(tx, tenant, user)?,
        threads,
        states,
        preferences,
        unread_total: membership::total_unread(tx, tenant, user)?,
    })
}

pub(crate) fn call(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    call_id: &str,
) -> Result<Option<CallState>, StoreError> {
    tx.prepare_cached("SELECT state FROM calls WHERE tenant_id = ?1 AND call_id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), call_id], |row| json_at(row, 0))
                .optional()
        })
        .map_err(db)
}

fn event_inputs(tx: &Transaction<'_>, item: &OutboxItem) -> Result<EventInputs, StoreError> {
    let (tenant, conversation_id) = (&item.tenant, &item.conversation);
    let event = crate::transcript::events_after(tx, tenant, conversation_id, item.position - 1, 1)?
        .pop()
        .filter(|e| e.position == item.position);
    let conversation = crate::transcript::conversation(tx, tenant, conversation_id)?;
    let (Some(stored), Some(found)) = (&event, &conversation) else {
        return Ok(EventInputs {
            event,
            conversation,
            ..EventInputs::default()
        });
    };
    let actor = stored.event.body.actor_id();
    let contexts = found
        .participants
        .iter()
        .filter(|m| Some(&m.participant.user_id) != actor)
        .map(|m| {
            let user = &m.participant.user_id;
            Ok((
                user.clone(),
                user_context(tx, tenant, user, Some(conversation_id))?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    let recent = recent_messages(
        tx,
        tenant,
        conversation_id,
        item.position,
        MAX_TRANSCRIPT_LINES,
    )?;
    Ok(EventInputs {
        event,
        conversation,
        contexts,
        recent,
    })
}

pub(crate) fn recent_messages(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    position: u64,
    n: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT position, body, recorded_at FROM events
             WHERE tenant_id = ?1 AND conversation_id = ?2 AND position <= ?3 AND type = 'message.created'
             ORDER BY position DESC LIMIT ?4",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(
            params![
                tenant.as_str(),
                conversation.as_str(),
                int(position),
                i64::try_from(n).unwrap_or(i64::MAX)
            ],
            crate::transcript::stored_event,
        )
        .map_err(db)?;
    let mut events: Vec<StoredEvent> = rows.collect::<Result<_, _>>().map_err(db)?;
    events.reverse();
    Ok(events)
}

pub(crate) fn due_threads(
    tx: &Transaction<'_>,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<ThreadKey>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT tenant_id, user_id, app_id, conversation_id FROM threads
             WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(
            params![millis(now), i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                Ok(ThreadKey {
                    tenant: id_at(row, 0, TenantId::parse)?,
                    user: id_at(row, 1, UserId::parse)?,
                    app: id_at(row, 2, AppId::parse)?,
                    conversation: id_at(row, 3, ConversationId::parse)?,
                })
            },
        )
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) fn due_notifications(
    tx: &Transaction<'_>,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<(TenantId, String)>, StoreError> {
    let mut stmt = tx
        .prepare_cached("SELECT tenant_id, id FROM notifications WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2")
        .map_err(db)?;
    let rows = stmt
        .query_map(
            params![millis(now), i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| Ok((id_at(row, 0, TenantId::parse)?, row.get(1)?)),
        )
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) fn next_due(tx: &Transaction<'_>) -> Result<Option<OffsetDateTime>, StoreError> {
    tx.prepare_cached(
        "SELECT min(due) FROM (SELECT min(due_at) AS due FROM threads WHERE due_at IS NOT NULL
                              UNION ALL SELECT min(due_at) FROM notifications WHERE due_at IS NOT NULL)",
    )
    .and_then(|mut stmt| stmt.query_row([], |row| opt_time_at(row, 0)))
    .map_err(db)
}

pub(crate) fn commit(
    tx: &Transaction<'_>,
    commit: &NotifyCommit,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for seq in &commit.evaluated {
        exec(tx, "DELETE FROM outbox WHERE seq = ?1", [seq])?;
    }
    for (key, thread) in &commit.threads {
        let keys = params![
            key.tenant.as_str(),
            key.user.as_str(),
            key.app.as_str(),
            key.conversation.as_str()
        ];
        if *thread == Thread::default() {
            exec(
                tx,
                "DELETE FROM threads WHERE tenant_id = ?1 AND user_id = ?2 AND app_id = ?3 AND conversation_id = ?4",
                keys,
            )?;
            continue;
        }
        let state = to_json(thread)?;
        exec(
            tx,
            "INSERT INTO threads (tenant_id, user_id, app_id, conversation_id, state, due_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, user_id, app_id, conversation_id) DO UPDATE SET state = excluded.state, due_at = excluded.due_at",
            params![key.tenant.as_str(), key.user.as_str(), key.app.as_str(), key.conversation.as_str(), state, thread.due_at().map(millis)],
        )?;
    }
    for (tenant, user, app, state) in &commit.user_states {
        let state = to_json(state)?;
        exec(
            tx,
            "INSERT INTO user_states (tenant_id, user_id, app_id, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, user_id, app_id) DO UPDATE SET state = excluded.state",
            params![tenant.as_str(), user.as_str(), app.as_str(), state],
        )?;
    }
    for (tenant, call_id, state) in &commit.calls {
        let state = to_json(state)?;
        exec(
            tx,
            "INSERT INTO calls (tenant_id, call_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant_id, call_id) DO UPDATE SET state = excluded.state",
            params![tenant.as_str(), call_id, state],
        )?;
    }
    for record in &commit.records {
        let document = to_json(record)?;
        // Only a scheduled proactive notification has a timer of its own; pending pushes wait
        // on their thread's timer.
        let due = record
            .due_at
            .filter(|_| record.status == herald_engine::notify::record::Status::Scheduled)
            .map(millis);
        exec(
            tx,
            "INSERT INTO notifications (tenant_id, id, user_id, app_id, conversation_id, kind, status, record, created_at, due_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status, record = excluded.record, due_at = excluded.due_at",
            params![
                record.tenant_id.as_str(),
                record.id,
                record.user_id.as_str(),
                record.app_id.as_ref().map(|a| a.as_str()),
                record.conversation_id.as_ref().map(|c| c.as_str()),
                record.kind.as_str(),
                record.status.as_str(),
                document,
                millis(record.created_at),
                due,
            ],
        )?;
    }
    for check in &commit.checks {
        exec(
            tx,
            "INSERT INTO device_checks (tenant_id, device_id, app_id, user_id, check_id, sent_at, deadline, acknowledged_at, expired)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 0)
             ON CONFLICT (tenant_id, device_id) DO UPDATE SET app_id = excluded.app_id, user_id = excluded.user_id,
                 check_id = excluded.check_id, sent_at = excluded.sent_at, deadline = excluded.deadline,
                 acknowledged_at = NULL, expired = 0",
            params![
                check.tenant.as_str(),
                check.device.as_str(),
                check.app.as_str(),
                check.user.as_str(),
                check.check_id,
                millis(now),
                millis(check.deadline),
            ],
        )?;
    }
    for delivery in &commit.deliveries {
        crate::deliveries::insert(tx, delivery, now, now)?;
    }
    Ok(())
}

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

#[async_trait::async_trait]
impl herald_engine::notify::store::NotifyStore for crate::SqliteStore {
    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.pool.read(move |tx| outbox(tx, limit)).await
    }

    async fn event_inputs(&self, items: &[OutboxItem]) -> Result<Vec<EventInputs>, StoreError> {
        let items = items.to_vec();
        self.pool
            .read(move |tx| items.iter().map(|item| event_inputs(tx, item)).collect())
            .await
    }

    async fn user_context(
        &self,
        tenant: &TenantId,
        user: &UserId,
        conversation: Option<&ConversationId>,
    ) -> Result<UserContext, StoreError> {
        let (tenant, user, conversation) = (tenant.clone(), user.clone(), conversation.cloned());
        self.pool
            .read(move |tx| user_context(tx, &tenant, &user, conversation.as_ref()))
            .await
    }

    async fn call(
        &self,
        tenant: &TenantId,
        call_id: &str,
    ) -> Result<Option<CallState>, StoreError> {
        let (tenant, call_id) = (tenant.clone(), call_id.to_string());
        self.pool.read(move |tx| call(tx, &tenant, &call_id)).await
    }

    async fn recent_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        position: u64,
        n: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (tenant, conversation) = (tenant.clone(), conversation.clone());
        self.pool
            .read(move |tx| recent_messages(tx, &tenant, &conversation, position, n))
            .await
    }

    async fn due_threads(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ThreadKey>, StoreError> {
        self.pool.read(move |tx| due_threads(tx, now, limit)).await
    }

    async fn due_notifications(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>, StoreError> {
        self.pool
            .read(move |tx| due_notifications(tx, now, limit))
            .await
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.pool.read(next_due).await
    }

    async fn commit_notify(
        &self,
        batch: NotifyCommit,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.pool.write(move |tx| commit(tx, &batch, now)).await
    }

    async fn notification(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_string());
        self.pool
            .read(move |tx| notification(tx, &tenant, &id))
            .await
    }

    async fn user_notifications(
        &self,
        tenant: &TenantId,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.pool
            .read(move |tx| user_notifications(tx, &tenant, &user, limit))
            .await
    }

    async fn put_preferences(
        &self,
        tenant: &TenantId,
        user: &UserId,
        preferences: &Preferences,
    ) -> Result<(), StoreError> {
        let (tenant, user, preferences) = (tenant.clone(), user.clone(), preferences.clone());
        self.pool
            .write(move |tx| put_preferences(tx, &tenant, &user, &preferences))
            .await
    }

    async fn devices_to_check(
        &self,
        tenant: &TenantId,
        app: &AppId,
        checked_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<herald_engine::device::Device>, StoreError> {
        let (tenant, app) = (tenant.clone(), app.clone());
        self.pool
            .read(move |tx| devices::to_check(tx, &tenant, &app, checked_before, limit))
            .await
    }

    async fn expire_checks(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(TenantId, UserId, DeviceId)>, StoreError> {
        self.pool.write(move |tx| expire_checks(tx, now)).await
    }

    async fn acknowledge_check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        device: &DeviceId,
        check_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (tenant, user, device, check_id) = (
            tenant.clone(),
            user.clone(),
            device.clone(),
            check_id.to_string(),
        );
        self.pool
            .write(move |tx| acknowledge_check(tx, &tenant, &user, &device, &check_id, now))
            .await
    }

    async fn unhealthy_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<(DeviceId, AppId)>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.pool
            .read(move |tx| unhealthy_devices(tx, &tenant, &user))
            .await
    }
}
