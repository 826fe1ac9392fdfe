//! What an engine step reads: the outbox, user contexts, calls, recent messages, due timers.

use std::collections::BTreeMap;

use herald_engine::event::StoredEvent;
use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
use herald_engine::notify::calls::CallState;
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::store::{
    EventInputs, MAX_TRANSCRIPT_LINES, OutboxItem, ThreadKey, UserContext,
};
use herald_engine::notify::timing::{Thread, UserState};
use herald_engine::store::StoreError;
use rusqlite::{OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use super::*;
use crate::codec::{count_at, db, int, millis, opt_time_at};
use crate::{devices, membership};

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

pub(crate) fn event_inputs(
    tx: &Transaction<'_>,
    item: &OutboxItem,
) -> Result<EventInputs, StoreError> {
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
