//! Transcripts: appending events — idempotency, gap-free positions, the membership and unread
//! projections, the effects live sessions need — and reading them back.
//!
//! Appends run on the single writer, so "read the last position, write the next one" needs no
//! lock. A failing event returns an error, which rolls the whole job (the batch) back.

use std::collections::BTreeMap;

use herald_engine::event::{
    Actor, EventBody, MessageRead, NewEvent, ParticipantJoined, ParticipantLeft, StoredEvent,
};
use herald_engine::ids::{ConversationId, EventId, TenantId, UserId};
use herald_engine::participant::Participant;
use herald_engine::store::{Appended, Conversation, Effects, StoreError, UnreadChange};
use herald_engine::unread::counts_as_unread;
use herald_engine::validate::Invalid;
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::codec::{count_at, db, int, millis, parsed_at, stored_time, time_at};
use crate::membership;

/// Appends a batch; the first failing event fails it all (the caller's job rolls back).
pub(crate) fn append_batch(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    events: &[NewEvent],
    now: OffsetDateTime,
) -> Result<Vec<Appended>, StoreError> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| append(tx, tenant, index, event, now))
        .collect()
}

/// Appends one event; `index` is its place in the caller's batch, for errors.
fn append(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    index: usize,
    event: &NewEvent,
    now: OffsetDateTime,
) -> Result<Appended, StoreError> {
    let wire = event.to_json();
    // serde_json objects keep their keys sorted, so this text is canonical: the same event
    // always hashes the same.
    let body = serde_json::to_string(&wire)
        .map_err(|e| StoreError::Unavailable(format!("event json: {e}")))?;
    let hash: [u8; 32] = Sha256::digest(body.as_bytes()).into();
    if let Some(original) = stored_id(tx, tenant, &event.event_id)? {
        if original.hash != hash {
            return Err(StoreError::EventConflict { index });
        }
        return Ok(Appended {
            event_id: event.event_id.clone(),
            conversation_id: original.conversation_id,
            position: original.position,
            duplicate: true,
            effects: None,
        });
    }
    // Only what reads back is stored: an event built without validation would otherwise
    // make every later read of its transcript fail.
    event
        .validate()
        .map_err(|invalid| StoreError::EventInvalid { index, invalid })?;
    let conversation = &event.conversation_id;
    let position = last_position(tx, tenant, conversation)?.unwrap_or(0) + 1;
    let recorded_at = stored_time(now)?;
    tx.prepare_cached(
        "INSERT INTO conversations (tenant_id, id, last_position, created_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, id) DO UPDATE SET last_position = excluded.last_position",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            conversation.as_str(),
            int(position),
            millis(recorded_at),
        ])
    })
    .map_err(db)?;
    let (sender_id, sender_role) = match &event.body {
        EventBody::MessageCreated(m) => (Some(m.sender.id.as_str()), Some(m.sender.role.as_str())),
        _ => (None, None),
    };
    tx.prepare_cached(
        "INSERT INTO events (tenant_id, conversation_id, position, event_id, hash, type,
                             sender_id, sender_role, body, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            conversation.as_str(),
            int(position),
            event.event_id.as_str(),
            hash,
            event.body.type_name(),
            sender_id,
            sender_role,
            body,
            millis(recorded_at),
        ])
    })
    .map_err(db)?;

    // The notification engine evaluates the event after the acknowledgement; queuing it in the
    // same transaction means an acknowledged event is never lost to the engine.
    if herald_engine::notify::evaluates(&event.body) {
        crate::notify::enqueue(tx, tenant, conversation, position)?;
    }
    let touched = project(tx, tenant, index, event, position)?;
    let mut recipients = membership::user_ids(tx, tenant, conversation)?;
    if let Some(removed) = touched.removed {
        recipients.push(removed);
        recipients.sort();
        recipients.dedup();
    }
    let unread = touched
        .unread
        .into_iter()
        .map(|(user_id, count)| {
            Ok(UnreadChange {
                total: membership::total_unread(tx, tenant, &user_id)?,
                conversation_id: conversation.clone(),
                user_id,
                count,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Appended {
        event_id: event.event_id.clone(),
        conversation_id: conversation.clone(),
        position,
        duplicate: false,
        effects: Some(Effects {
            event: StoredEvent {
                position,
                event: event.clone(),
                recorded_at,
            },
            recipients,
            unread,
        }),
    })
}

/// What an event did to the membership projection, for its effects.
#[derive(Default)]
struct Touched {
    /// The new unread count of every user whose count changed, or whose read position moved.
    unread: BTreeMap<UserId, u64>,
    /// The user a `participant.left` removed: told, though no longer a participant.
    removed: Option<UserId>,
}

/// Applies the event (already stored at `position`) to memberships and unread counts.
fn project(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    index: usize,
    event: &NewEvent,
    position: u64,
) -> Result<Touched, StoreError> {
    let conversation = &event.conversation_id;
    let mut touched = Touched::default();
    match &event.body {
        EventBody::MessageCreated(message) => {
            membership::join(
                tx,
                tenant,
                conversation,
                &participant(&message.sender),
                position,
            )?;
            for user in membership::user_ids(tx, tenant, conversation)? {
                if counts_as_unread(&event.body, &user) {
                    let count = membership::add_unread(tx, tenant, conversation, &user)?;
                    touched.unread.insert(user, count);
                }
            }
        }
        EventBody::CallRinging(call) => {
            membership::join(
                tx,
                tenant,
                conversation,
                &participant(&call.caller),
                position,
            )?;
        }
        EventBody::ParticipantJoined(joined) => {
            membership::upsert(tx, tenant, conversation, &joined.participant, position)?;
        }
        EventBody::ParticipantLeft(left) => {
            if let Some(unread) = membership::remove(tx, tenant, conversation, &left.user_id)?
                && unread > 0
            {
                touched.unread.insert(left.user_id.clone(), 0);
            }
            touched.removed = Some(left.user_id.clone());
        }
        EventBody::MessageRead(read) => {
            let member = membership::get(tx, tenant, conversation, &read.reader_id)?
                .ok_or_else(|| not_a_participant(index))?;
            // The read may cover everything before it, not itself.
            if read.position >= position {
                return Err(beyond_the_transcript(index));
            }
            // Reads never go back: a stale read (another device, a retry) changes nothing.
            let read_position = member.read_position.max(read.position);
            let unread =
                membership::count_unread(tx, tenant, conversation, &read.reader_id, read_position)?;
            if read_position != member.read_position || unread != member.unread {
                membership::set_read(
                    tx,
                    tenant,
                    conversation,
                    &read.reader_id,
                    read_position,
                    unread,
                )?;
                touched.unread.insert(read.reader_id.clone(), unread);
            }
        }
        EventBody::Notice(..) | EventBody::Call(..) => {}
    }
    Ok(touched)
}

/// Someone who writes or calls takes part: they join as their actor says.
fn participant(actor: &Actor) -> Participant {
    Participant {
        user_id: actor.id.clone(),
        role: actor.role,
        secondary: false,
        name: actor.name.clone(),
        email: None,
    }
}

fn not_a_participant(index: usize) -> StoreError {
    StoreError::EventInvalid {
        index,
        invalid: Invalid::new("reader_id", "is not a participant of the conversation"),
    }
}

fn beyond_the_transcript(index: usize) -> StoreError {
    StoreError::EventInvalid {
        index,
        invalid: Invalid::new("position", "is beyond the end of the transcript"),
    }
}

struct StoredId {
    conversation_id: ConversationId,
    position: u64,
    hash: [u8; 32],
}

fn stored_id(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    event_id: &EventId,
) -> Result<Option<StoredId>, StoreError> {
    tx.prepare_cached(
        "SELECT conversation_id, position, hash FROM events WHERE tenant_id = ?1 AND event_id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row([tenant.as_str(), event_id.as_str()], |row| {
            Ok(StoredId {
                conversation_id: parsed_at(row, 0, ConversationId::parse)?,
                position: count_at(row, 1)?,
                hash: row.get(2)?,
            })
        })
        .optional()
    })
    .map_err(db)
}

fn last_position(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Option<u64>, StoreError> {
    tx.prepare_cached("SELECT last_position FROM conversations WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), conversation.as_str()], |row| {
                count_at(row, 0)
            })
            .optional()
        })
        .map_err(db)
}

/// Appends `participant.joined` only when the participant is new or changed, with who added
/// them.
pub(crate) fn put_participant(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    (participant, by): (&Participant, Option<UserId>),
    event_id: EventId,
    now: OffsetDateTime,
) -> Result<Option<Appended>, StoreError> {
    // The email address is private to Herald: it is kept on the membership, never written
    // into the transcript that every participant reads.
    let public = Participant {
        email: None,
        ..participant.clone()
    };
    let current = membership::get(tx, tenant, conversation, &participant.user_id)?;
    let appended = match current {
        Some(m)
            if Participant {
                email: None,
                ..m.participant.clone()
            } == public =>
        {
            None
        }
        _ => {
            let body = EventBody::ParticipantJoined(ParticipantJoined {
                participant: public,
                by,
            });
            Some(append_own(tx, tenant, conversation, body, event_id, now)?)
        }
    };
    membership::set_email(
        tx,
        tenant,
        conversation,
        &participant.user_id,
        participant.email.as_deref(),
    )?;
    Ok(appended)
}

/// Appends `participant.left` only when the user was a participant.
pub(crate) fn remove_participant(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    event_id: EventId,
    now: OffsetDateTime,
) -> Result<Option<Appended>, StoreError> {
    if membership::get(tx, tenant, conversation, user)?.is_none() {
        return Ok(None);
    }
    let body = EventBody::ParticipantLeft(ParticipantLeft {
        user_id: user.clone(),
    });
    append_own(tx, tenant, conversation, body, event_id, now).map(Some)
}

/// Appends `message.read` only when it moves the reader's position forward.
pub(crate) fn mark_read(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    position: u64,
    event_id: EventId,
    now: OffsetDateTime,
) -> Result<Option<Appended>, StoreError> {
    let member =
        membership::get(tx, tenant, conversation, user)?.ok_or_else(|| not_a_participant(0))?;
    if position > last_position(tx, tenant, conversation)?.unwrap_or(0) {
        return Err(beyond_the_transcript(0));
    }
    if position <= member.read_position {
        return Ok(None);
    }
    let body = EventBody::MessageRead(MessageRead {
        reader_id: user.clone(),
        position,
    });
    append_own(tx, tenant, conversation, body, event_id, now).map(Some)
}

/// Appends an event the store writes on the caller's behalf, occurring now.
fn append_own(
    tx: &Transaction<'_>,
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
    append(tx, tenant, 0, &event, now)
}

pub(crate) fn events_after(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT position, body, recorded_at FROM events
             WHERE tenant_id = ?1 AND conversation_id = ?2 AND position > ?3
             ORDER BY position LIMIT ?4",
        )
        .map_err(db)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(
            params![tenant.as_str(), conversation.as_str(), int(after), limit],
            stored_event,
        )
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// A row of `SELECT position, body, recorded_at FROM events`.
pub(crate) fn stored_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        position: count_at(row, 0)?,
        event: parsed_at(row, 1, |body| {
            let value = serde_json::from_str(&body).map_err(|e| Invalid::new("", e.to_string()))?;
            NewEvent::from_json(value)
        })?,
        recorded_at: time_at(row, 2)?,
    })
}

pub(crate) fn conversation(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    id: &ConversationId,
) -> Result<Option<Conversation>, StoreError> {
    let row = tx
        .prepare_cached(
            "SELECT last_position, created_at FROM conversations WHERE tenant_id = ?1 AND id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), id.as_str()], |row| {
                Ok((count_at(row, 0)?, time_at(row, 1)?))
            })
            .optional()
        })
        .map_err(db)?;
    let Some((last_position, created_at)) = row else {
        return Ok(None);
    };
    Ok(Some(Conversation {
        id: id.clone(),
        last_position,
        created_at,
        participants: membership::list(tx, tenant, id)?,
    }))
}
