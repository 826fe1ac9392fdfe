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
use time::OffsetDateTime;

use crate::codec::{
    Tx, count_at, execute, get, int, json_at, limit, millis, opt_time_at, parsed_at, query,
    query_one, query_opt, rows,
};
use crate::conversation::{conversation, events_after, stored_event};
use crate::{devices, membership};

/// Outbox rows are numbered by an identity column. Appends to one conversation hold its lock
/// to commit, so their rows are numbered in position order.
pub(crate) async fn enqueue(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    position: u64,
) -> Result<(), StoreError> {
    execute(
        tx,
        "INSERT INTO outbox (tenant_id, conversation_id, position) VALUES ($1, $2, $3)",
        &[&tenant.as_str(), &conversation.as_str(), &int(position)],
    )
    .await
    .map(drop)
}

pub(crate) async fn outbox(tx: &Tx<'_>, n: usize) -> Result<Vec<OutboxItem>, StoreError> {
    let found = query(
        tx,
        "SELECT seq, tenant_id, conversation_id, position FROM outbox ORDER BY seq LIMIT $1",
        &[&limit(n)],
    )
    .await?;
    rows(found, |row| {
        Ok(OutboxItem {
            seq: get(row, 0)?,
            tenant: parsed_at(row, 1, TenantId::parse)?,
            conversation: parsed_at(row, 2, ConversationId::parse)?,
            position: count_at(row, 3)?,
        })
    })
}

pub(crate) async fn user_context(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
    conversation: Option<&ConversationId>,
) -> Result<UserContext, StoreError> {
    let keys: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant.as_str(), &user.as_str()];
    let found = query(
        tx,
        "SELECT app_id, conversation_id, state FROM threads
         WHERE tenant_id = $1 AND user_id = $2 AND ($3::TEXT IS NULL OR conversation_id = $3)",
        &[
            &tenant.as_str(),
            &user.as_str(),
            &conversation.map(|c| c.as_str()),
        ],
    )
    .await?;
    let mut threads = BTreeMap::new();
    for row in &found {
        let key = (
            parsed_at(row, 0, AppId::parse)?,
            parsed_at(row, 1, ConversationId::parse)?,
        );
        threads.insert(key, json_at::<Thread>(row, 2)?);
    }
    let found = query(
        tx,
        "SELECT app_id, state FROM user_states WHERE tenant_id = $1 AND user_id = $2",
        &keys,
    )
    .await?;
    let mut states = BTreeMap::new();
    for row in &found {
        states.insert(
            parsed_at(row, 0, AppId::parse)?,
            json_at::<UserState>(row, 1)?,
        );
    }
    let preferences = query_opt(
        tx,
        "SELECT document FROM preferences WHERE tenant_id = $1 AND user_id = $2",
        &keys,
    )
    .await?
    .map(|row| json_at::<Preferences>(&row, 0))
    .transpose()?
    .unwrap_or_default();
    let member_email = match conversation {
        Some(c) => membership::get_one(tx, tenant, c, user)
            .await?
            .and_then(|m| m.participant.email),
        None => None,
    };
    Ok(UserContext {
        email: preferences.email.clone().or(member_email),
        devices: devices::list(tx, tenant, user).await?,
        threads,
        states,
        preferences,
        unread_total: membership::total_unread(tx, tenant, user).await?,
    })
}

pub(crate) async fn call(
    tx: &Tx<'_>,
    tenant: &TenantId,
    call_id: &str,
) -> Result<Option<CallState>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT state FROM calls WHERE tenant_id = $1 AND call_id = $2",
        &[&tenant.as_str(), &call_id],
    )
    .await?;
    row.map(|row| json_at(&row, 0)).transpose()
}

pub(crate) async fn event_inputs(
    tx: &Tx<'_>,
    item: &OutboxItem,
) -> Result<EventInputs, StoreError> {
    let (tenant, conversation_id) = (&item.tenant, &item.conversation);
    let event = events_after(
        tx,
        tenant,
        conversation_id,
        item.position.saturating_sub(1),
        1,
    )
    .await?
    .pop()
    .filter(|e| e.position == item.position);
    let conversation = conversation(tx, tenant, conversation_id).await?;
    let (Some(stored), Some(found)) = (&event, &conversation) else {
        return Ok(EventInputs {
            event,
            conversation,
            ..EventInputs::default()
        });
    };
    let actor = stored.event.body.actor_id();
    let mut contexts = BTreeMap::new();
    for m in &found.participants {
        let user = &m.participant.user_id;
        if Some(user) != actor {
            let context = user_context(tx, tenant, user, Some(conversation_id)).await?;
            contexts.insert(user.clone(), context);
        }
    }
    let recent = recent_messages(
        tx,
        tenant,
        conversation_id,
        item.position,
        MAX_TRANSCRIPT_LINES,
    )
    .await?;
    Ok(EventInputs {
        event,
        conversation,
        contexts,
        recent,
    })
}

pub(crate) async fn recent_messages(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    position: u64,
    n: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let found = query(
        tx,
        "SELECT position, body, recorded_at FROM events
         WHERE tenant_id = $1 AND conversation_id = $2 AND position <= $3
           AND type = 'message.created'
         ORDER BY position DESC LIMIT $4",
        &[
            &tenant.as_str(),
            &conversation.as_str(),
            &int(position),
            &limit(n),
        ],
    )
    .await?;
    let mut events = rows(found, stored_event)?;
    events.reverse();
    Ok(events)
}

pub(crate) async fn due_threads(
    tx: &Tx<'_>,
    now: OffsetDateTime,
    n: usize,
) -> Result<Vec<ThreadKey>, StoreError> {
    let found = query(
        tx,
        "SELECT tenant_id, user_id, app_id, conversation_id FROM threads
         WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2",
        &[&millis(now), &limit(n)],
    )
    .await?;
    rows(found, |row| {
        Ok(ThreadKey {
            tenant: parsed_at(row, 0, TenantId::parse)?,
            user: parsed_at(row, 1, UserId::parse)?,
            app: parsed_at(row, 2, AppId::parse)?,
            conversation: parsed_at(row, 3, ConversationId::parse)?,
        })
    })
}

pub(crate) async fn due_notifications(
    tx: &Tx<'_>,
    now: OffsetDateTime,
    n: usize,
) -> Result<Vec<(TenantId, String)>, StoreError> {
    let found = query(
        tx,
        "SELECT tenant_id, id FROM notifications
         WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2",
        &[&millis(now), &limit(n)],
    )
    .await?;
    rows(found, |row| {
        Ok((parsed_at(row, 0, TenantId::parse)?, get(row, 1)?))
    })
}

pub(crate) async fn next_due(tx: &Tx<'_>) -> Result<Option<OffsetDateTime>, StoreError> {
    let row = query_one(
        tx,
        "SELECT least((SELECT min(due_at) FROM threads WHERE due_at IS NOT NULL),
                      (SELECT min(due_at) FROM notifications WHERE due_at IS NOT NULL))",
        &[],
    )
    .await?;
    opt_time_at(&row, 0)
}
