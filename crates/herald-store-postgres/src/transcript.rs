//! Appending events: idempotency, gap-free positions, the membership and unread projections,
//! the effects live sessions need.
//!
//! Positions: an append first takes the conversation's lock (a transaction-scoped advisory
//! lock on the (tenant, conversation) key, which also covers conversations not created yet),
//! then bumps `conversations.last_position` with an upsert that returns the new value — the
//! row lock that upsert takes is held to commit, so writers on any number of nodes take
//! positions one after another and a rolled-back append gives its position back. A failing
//! event returns an error, which rolls the whole batch back.

use std::collections::{BTreeMap, BTreeSet};

use herald_engine::event::{Actor, EventBody, NewEvent, StoredEvent};
use herald_engine::ids::{ConversationId, EventId, TenantId, UserId};
use herald_engine::participant::Participant;
use herald_engine::store::{Appended, Effects, StoreError, UnreadChange};
use herald_engine::unread::counts_as_unread;
use herald_engine::validate::Invalid;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::codec::{
    Tx, count_at, execute, get, int, millis, parsed_at, query_one, query_opt, stored_time,
};
use crate::membership;

/// Serializes every read-decide-write on one conversation, across nodes.
pub(crate) async fn lock_conversation(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<(), StoreError> {
    execute(
        tx,
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))",
        &[&tenant.as_str(), &conversation.as_str()],
    )
    .await
    .map(drop)
}

/// Appends a batch; the first failing event fails it all (the transaction rolls back).
///
/// The batch's conversations are locked up front in one order (sorted ids) that every batch
/// shares, so two batches naming the same conversations in opposite orders wait for each
/// other instead of deadlocking. `append` takes each lock again; advisory locks are re-entrant.
pub(crate) async fn append_batch(
    tx: &Tx<'_>,
    tenant: &TenantId,
    events: &[NewEvent],
    now: OffsetDateTime,
) -> Result<Vec<Appended>, StoreError> {
    let conversations: BTreeSet<&ConversationId> =
        events.iter().map(|e| &e.conversation_id).collect();
    for conversation in conversations {
        lock_conversation(tx, tenant, conversation).await?;
    }
    let mut appended = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        appended.push(append(tx, tenant, index, event, now).await?);
    }
    Ok(appended)
}

/// Appends one event; `index` is its place in the caller's batch, for errors.
pub(crate) async fn append(
    tx: &Tx<'_>,
    tenant: &TenantId,
    index: usize,
    event: &NewEvent,
    now: OffsetDateTime,
) -> Result<Appended, StoreError> {
    let conversation = &event.conversation_id;
    lock_conversation(tx, tenant, conversation).await?;
    // serde_json objects keep their keys sorted, so this text is canonical: the same event
    // always hashes the same.
    let body = crate::codec::to_json(&event.to_json())?;
    let hash: [u8; 32] = Sha256::digest(body.as_bytes()).into();
    if let Some(original) = stored_id(tx, tenant, &event.event_id).await? {
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
    // Only what reads back is stored.
    event
        .validate()
        .map_err(|invalid| StoreError::EventInvalid { index, invalid })?;
    let recorded_at = stored_time(now)?;
    let position = next_position(tx, tenant, conversation, recorded_at).await?;
    insert_event(tx, tenant, event, position, &hash, &body, recorded_at).await?;

    // The notification engine evaluates the event after the acknowledgement; queuing it in the
    // same transaction means an acknowledged event is never lost to the engine.
    if herald_engine::notify::evaluates(&event.body) {
        crate::notify::enqueue(tx, tenant, conversation, position).await?;
    }
    let effects = effects(tx, tenant, index, event, position, recorded_at).await?;
    Ok(Appended {
        event_id: event.event_id.clone(),
        conversation_id: conversation.clone(),
        position,
        duplicate: false,
        effects: Some(effects),
    })
}

/// Takes the conversation's next position (creating the conversation at 1).
async fn next_position(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    recorded_at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let row = query_one(
        tx,
        "INSERT INTO conversations (tenant_id, id, last_position, created_at)
         VALUES ($1, $2, 1, $3)
         ON CONFLICT (tenant_id, id) DO UPDATE
             SET last_position = conversations.last_position + 1
         RETURNING last_position",
        &[
            &tenant.as_str(),
            &conversation.as_str(),
            &millis(recorded_at),
        ],
    )
    .await?;
    count_at(&row, 0)
}

async fn insert_event(
    tx: &Tx<'_>,
    tenant: &TenantId,
    event: &NewEvent,
    position: u64,
    hash: &[u8; 32],
    body: &str,
    recorded_at: OffsetDateTime,
) -> Result<(), StoreError> {
    let (sender_id, sender_role) = match &event.body {
        EventBody::MessageCreated(m) => (Some(m.sender.id.as_str()), Some(m.sender.role.as_str())),
        _ => (None, None),
    };
    execute(
        tx,
        "INSERT INTO events (tenant_id, conversation_id, position, event_id, hash, type,
                             sender_id, sender_role, body, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &tenant.as_str(),
            &event.conversation_id.as_str(),
            &int(position),
            &event.event_id.as_str(),
            &&hash[..],
            &event.body.type_name(),
            &sender_id,
            &sender_role,
            &body,
            &millis(recorded_at),
        ],
    )
    .await?;
    Ok(())
}

/// Projects the event and answers what live sessions need to hear about it.
async fn effects(
    tx: &Tx<'_>,
    tenant: &TenantId,
    index: usize,
    event: &NewEvent,
    position: u64,
    recorded_at: OffsetDateTime,
) -> Result<Effects, StoreError> {
    let conversation = &event.conversation_id;
    let touched = project(tx, tenant, index, event, position).await?;
    let mut recipients = membership::user_ids(tx, tenant, conversation).await?;
    if let Some(removed) = touched.removed {
        recipients.push(removed);
        recipients.sort();
        recipients.dedup();
    }
    let mut unread = Vec::with_capacity(touched.unread.len());
    for (user_id, count) in touched.unread {
        unread.push(UnreadChange {
            total: membership::total_unread(tx, tenant, &user_id).await?,
            conversation_id: conversation.clone(),
            user_id,
            count,
        });
    }
    Ok(Effects {
        event: StoredEvent {
            position,
            event: event.clone(),
            recorded_at,
        },
        recipients,
        unread,
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
async fn project(
    tx: &Tx<'_>,
    tenant: &TenantId,
    index: usize,
    event: &NewEvent,
    position: u64,
) -> Result<Touched, StoreError> {
    let conversation = &event.conversation_id;
    let mut touched = Touched::default();
    match &event.body {
        EventBody::MessageCreated(message) => {
            let sender = participant(&message.sender);
            membership::join(tx, tenant, conversation, &sender, position).await?;
            for user in membership::user_ids(tx, tenant, conversation).await? {
                if counts_as_unread(&event.body, &user) {
                    let count = membership::add_unread(tx, tenant, conversation, &user).await?;
                    touched.unread.insert(user, count);
                }
            }
        }
        EventBody::CallRinging(call) => {
            let caller = participant(&call.caller);
            membership::join(tx, tenant, conversation, &caller, position).await?;
        }
        EventBody::ParticipantJoined(joined) => {
            membership::upsert(tx, tenant, conversation, &joined.participant, position).await?;
        }
        EventBody::ParticipantLeft(left) => {
            let had = membership::remove(tx, tenant, conversation, &left.user_id).await?;
            if had.is_some_and(|unread| unread > 0) {
                touched.unread.insert(left.user_id.clone(), 0);
            }
            touched.removed = Some(left.user_id.clone());
        }
        EventBody::MessageRead(read) => {
            let reader = &read.reader_id;
            let member = membership::get_one(tx, tenant, conversation, reader)
                .await?
                .ok_or_else(|| not_a_participant(index))?;
            // The read may cover everything before it, not itself.
            if read.position >= position {
                return Err(beyond_the_transcript(index));
            }
            // Reads never go back: a stale read (another device, a retry) changes nothing.
            let read_position = member.read_position.max(read.position);
            let unread =
                membership::count_unread(tx, tenant, conversation, reader, read_position).await?;
            if read_position != member.read_position || unread != member.unread {
                membership::set_read(tx, tenant, conversation, reader, read_position, unread)
                    .await?;
                touched.unread.insert(reader.clone(), unread);
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

pub(crate) fn not_a_participant(index: usize) -> StoreError {
    StoreError::EventInvalid {
        index,
        invalid: Invalid::new("reader_id", "is not a participant of the conversation"),
    }
}

pub(crate) fn beyond_the_transcript(index: usize) -> StoreError {
    StoreError::EventInvalid {
        index,
        invalid: Invalid::new("position", "is beyond the end of the transcript"),
    }
}

struct StoredId {
    conversation_id: ConversationId,
    position: u64,
    hash: Vec<u8>,
}

async fn stored_id(
    tx: &Tx<'_>,
    tenant: &TenantId,
    event_id: &EventId,
) -> Result<Option<StoredId>, StoreError> {
    let row = query_opt(
        tx,
        "SELECT conversation_id, position, hash FROM events WHERE tenant_id = $1 AND event_id = $2",
        &[&tenant.as_str(), &event_id.as_str()],
    )
    .await?;
    row.map(|row| {
        Ok(StoredId {
            conversation_id: parsed_at(&row, 0, ConversationId::parse)?,
            position: count_at(&row, 1)?,
            hash: get(&row, 2)?,
        })
    })
    .transpose()
}
