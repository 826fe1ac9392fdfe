//! The appends the store writes on a caller's behalf (participants, reads), each deciding
//! under the conversation's lock, and reading transcripts and conversations back.

use herald_engine::event::{
    EventBody, MessageRead, NewEvent, ParticipantJoined, ParticipantLeft, StoredEvent,
};
use herald_engine::ids::{ConversationId, EventId, TenantId, UserId};
use herald_engine::participant::Participant;
use herald_engine::store::{Appended, Conversation, StoreError};
use herald_engine::validate::Invalid;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::{Tx, corrupt, count_at, get, int, limit, query, query_opt, rows, time_at};
use crate::membership;
use crate::transcript::{append, beyond_the_transcript, lock_conversation, not_a_participant};

/// Appends `participant.joined` only when the participant is new or changed, with who added
/// them.
pub(crate) async fn put_participant(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    (participant, by): (&Participant, Option<&UserId>),
    event_id: EventId,
    now: OffsetDateTime,
) -> Result<Option<Appended>, StoreError> {
    lock_conversation(tx, tenant, conversation).await?;
    // The email address is private to Herald: it is kept on the membership, never written
    // into the transcript that every participant reads.
    let public = Participant {
        email: None,
        ..participant.clone()
    };
    let current = membership::get_one(tx, tenant, conversation, &participant.user_id).await?;
    let unchanged = current.is_some_and(|m| {
        Participant {
            email: None,
            ..m.participant
        } == public
    });
    let appended = if unchanged {
        None
    } else {
        let body = EventBody::ParticipantJoined(ParticipantJoined {
            participant: public,
            by: by.cloned(),
        });
        Some(append_own(tx, tenant, conversation, body, event_id, now).await?)
    };
    let email = participant.email.as_deref();
    membership::set_email(tx, tenant, conversation, &participant.user_id, email).await?;
    Ok(appended)
}

/// Appends `participant.left` only when the user was a participant.
pub(crate) async fn remove_participant(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    event_id: EventId,
    now: OffsetDateTime,
) -> Result<Option<Appended>, StoreError> {
    lock_conversation(tx, tenant, conversation).await?;
    if membership::get_one(tx, tenant, conversation, user)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let body = EventBody::ParticipantLeft(ParticipantLeft {
        user_id: user.clone(),
    });
    append_own(tx, tenant, conversation, body, event_id, now)
        .await
        .map(Some)
}

/// Appends `message.read` only when it moves the reader's position forward.
pub(crate) async fn mark_read(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    position: u64,
    event_id: EventId,
    now: OffsetDateTime,
) -> Result<Option<Appended>, StoreError> {
    lock_conversation(tx, tenant, conversation).await?;
    let member = membership::get_one(tx, tenant, conversation, user)
        .await?
        .ok_or_else(|| not_a_participant(0))?;
    let last = last_position(tx, tenant, conversation).await?.unwrap_or(0);
    if position > last {
        return Err(beyond_the_transcript(0));
    }
    if position <= member.read_position {
        return Ok(None);
    }
    let body = EventBody::MessageRead(MessageRead {
        reader_id: user.clone(),
        position,
    });
    append_own(tx, tenant, conversation, body, event_id, now)
        .await
        .map(Some)
}

/// Appends an event the store writes on the caller's behalf, occurring now.
async fn append_own(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    body: EventBody,
    event_id: EventId,
    now: OffsetDateTime,
) -> Result<Appended, StoreError> {
    let event = NewEvent {
        event_id,
        conversation_id: conversation.clone(),
        occurred_at: now,
        body,
    };
    append(tx, tenant, 0, &event, now).await
}

async fn last_position(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Option<u64>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT last_position FROM conversations WHERE tenant_id = $1 AND id = $2",
        &[&tenant.as_str(), &conversation.as_str()],
    )
    .await?;
    row.map(|row| count_at(&row, 0)).transpose()
}

pub(crate) async fn events_after(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    after: u64,
    n: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let found = query(
        tx,
        "SELECT position, body, recorded_at FROM events
         WHERE tenant_id = $1 AND conversation_id = $2 AND position > $3
         ORDER BY position LIMIT $4",
        &[
            &tenant.as_str(),
            &conversation.as_str(),
            &int(after),
            &limit(n),
        ],
    )
    .await?;
    rows(found, stored_event)
}

/// A row of `SELECT position, body, recorded_at FROM events`.
pub(crate) fn stored_event(row: &Row) -> Result<StoredEvent, StoreError> {
    let body: &str = get(row, 1)?;
    let value = serde_json::from_str(body).map_err(|e| corrupt("event", e))?;
    Ok(StoredEvent {
        position: count_at(row, 0)?,
        event: NewEvent::from_json(value).map_err(|e: Invalid| corrupt("event", e))?,
        recorded_at: time_at(row, 2)?,
    })
}

pub(crate) async fn conversation(
    tx: &Tx<'_>,
    tenant: &TenantId,
    id: &ConversationId,
) -> Result<Option<Conversation>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT last_position, created_at FROM conversations WHERE tenant_id = $1 AND id = $2",
        &[&tenant.as_str(), &id.as_str()],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Conversation {
        id: id.clone(),
        last_position: count_at(&row, 0)?,
        created_at: time_at(&row, 1)?,
        participants: membership::list(tx, tenant, id).await?,
    }))
}
