//! Memberships: who is in a conversation, how far each member has read, and their unread
//! count. A projection of the transcript that `transcript::append` keeps in step, in the same
//! transaction as the event that changes it.

use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_engine::participant::{Membership, Participant, Role};
use herald_engine::store::{StoreError, UnreadCount};
use herald_engine::unread::counts_as_unread_row;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::codec::{count_at, db, int, known, parsed_at};

pub(crate) fn get(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
) -> Result<Option<Membership>, StoreError> {
    tx.prepare_cached(
        "SELECT user_id, role, secondary, name, read_position, unread, email FROM memberships
         WHERE tenant_id = ?1 AND conversation_id = ?2 AND user_id = ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            [tenant.as_str(), conversation.as_str(), user.as_str()],
            membership_from,
        )
        .optional()
    })
    .map_err(db)
}

/// Sorted by user id.
pub(crate) fn list(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Vec<Membership>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT user_id, role, secondary, name, read_position, unread, email FROM memberships
             WHERE tenant_id = ?1 AND conversation_id = ?2 ORDER BY user_id",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([tenant.as_str(), conversation.as_str()], membership_from)
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

pub(crate) const MEMBER_IDS: &str = "SELECT user_id FROM memberships
     WHERE tenant_id = ?1 AND conversation_id = ?2 ORDER BY user_id";

/// Sorted by user id.
pub(crate) fn user_ids(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Vec<UserId>, StoreError> {
    let mut stmt = tx.prepare_cached(MEMBER_IDS).map_err(db)?;
    let rows = stmt
        .query_map([tenant.as_str(), conversation.as_str()], |row| {
            parsed_at(row, 0, UserId::parse)
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// Adds the participant unless they already are one. A new member has read everything up to
/// `position` (the event that made them a member): history before joining is not unread.
pub(crate) fn join(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    participant: &Participant,
    position: u64,
) -> Result<(), StoreError> {
    write_participant(
        tx,
        "INSERT INTO memberships (tenant_id, conversation_id, user_id, role, secondary, name,
                                  read_position, unread, email)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)
         ON CONFLICT DO NOTHING",
        tenant,
        conversation,
        participant,
        position,
    )
}

/// Adds the participant, or updates role, secondary and name of a member (whose read state
/// stays as it is).
pub(crate) fn upsert(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    participant: &Participant,
    position: u64,
) -> Result<(), StoreError> {
    write_participant(
        tx,
        "INSERT INTO memberships (tenant_id, conversation_id, user_id, role, secondary, name,
                                  read_position, unread, email)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)
         ON CONFLICT (tenant_id, conversation_id, user_id) DO UPDATE SET
             role = excluded.role, secondary = excluded.secondary, name = excluded.name,
             email = coalesce(excluded.email, memberships.email)",
        tenant,
        conversation,
        participant,
        position,
    )
}

/// Sets (or clears) the address notification emails go to when preferences name none.
pub(crate) fn set_email(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    email: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE memberships SET email = ?4 WHERE tenant_id = ?1 AND conversation_id = ?2 AND user_id = ?3")
        .and_then(|mut stmt| stmt.execute(params![tenant.as_str(), conversation.as_str(), user.as_str(), email]))
        .map_err(db)?;
    Ok(())
}

fn write_participant(
    tx: &Transaction<'_>,
    sql: &str,
    tenant: &TenantId,
    conversation: &ConversationId,
    p: &Participant,
    position: u64,
) -> Result<(), StoreError> {
    tx.prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                tenant.as_str(),
                conversation.as_str(),
                p.user_id.as_str(),
                p.role.as_str(),
                p.secondary,
                p.name,
                int(position),
                p.email,
            ])
        })
        .map_err(db)?;
    Ok(())
}

/// Answers the unread count the member had, or `None` if they were not a member.
pub(crate) fn remove(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
) -> Result<Option<u64>, StoreError> {
    tx.prepare_cached(
        "DELETE FROM memberships WHERE tenant_id = ?1 AND conversation_id = ?2 AND user_id = ?3
         RETURNING unread",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            [tenant.as_str(), conversation.as_str(), user.as_str()],
            |row| count_at(row, 0),
        )
        .optional()
    })
    .map_err(db)
}

/// One more unread message; answers the new count.
pub(crate) fn add_unread(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
) -> Result<u64, StoreError> {
    tx.prepare_cached(
        "UPDATE memberships SET unread = unread + 1
         WHERE tenant_id = ?1 AND conversation_id = ?2 AND user_id = ?3
         RETURNING unread",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            [tenant.as_str(), conversation.as_str(), user.as_str()],
            |row| count_at(row, 0),
        )
    })
    .map_err(db)
}

pub(crate) fn set_read(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    read_position: u64,
    unread: u64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE memberships SET read_position = ?4, unread = ?5
         WHERE tenant_id = ?1 AND conversation_id = ?2 AND user_id = ?3",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            tenant.as_str(),
            conversation.as_str(),
            user.as_str(),
            int(read_position),
            int(unread),
        ])
    })
    .map_err(db)?;
    Ok(())
}

/// Counts, by the engine's rule, the events after `after` that are unread for `user`. Only
/// messages can count, so only messages are read (from the `events_messages` index).
pub(crate) fn count_unread(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    after: u64,
) -> Result<u64, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT sender_id, sender_role FROM events
             WHERE tenant_id = ?1 AND conversation_id = ?2 AND position > ?3
               AND type = 'message.created'",
        )
        .map_err(db)?;
    let mut rows = stmt
        .query(params![tenant.as_str(), conversation.as_str(), int(after)])
        .map_err(db)?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(db)? {
        let sender_id: Option<String> = row.get(0).map_err(db)?;
        let sender_role: Option<String> = row.get(1).map_err(db)?;
        if counts_as_unread_row(
            "message.created",
            sender_id.as_deref(),
            sender_role.as_deref(),
            user.as_str(),
        ) {
            count += 1;
        }
    }
    Ok(count)
}

// Without statistics SQLite prefers the primary key's `tenant_id` prefix (a walk over the whole
// tenant) to `memberships_by_user`; `INDEXED BY` pins the index made for these queries (see
// `crate::plans`).
pub(crate) const TOTAL_UNREAD: &str = "SELECT coalesce(sum(unread), 0)
     FROM memberships INDEXED BY memberships_by_user WHERE tenant_id = ?1 AND user_id = ?2";
pub(crate) const UNREAD_COUNTS: &str = "SELECT conversation_id, unread
     FROM memberships INDEXED BY memberships_by_user
     WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY conversation_id";

/// The user's badge: unread counts summed over all their conversations in the tenant.
pub(crate) fn total_unread(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<u64, StoreError> {
    tx.prepare_cached(TOTAL_UNREAD)
        .and_then(|mut stmt| {
            stmt.query_row([tenant.as_str(), user.as_str()], |row| count_at(row, 0))
        })
        .map_err(db)
}

/// Every membership of the user, sorted by conversation id.
pub(crate) fn unread_counts(
    tx: &Transaction<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<UnreadCount>, StoreError> {
    let mut stmt = tx.prepare_cached(UNREAD_COUNTS).map_err(db)?;
    let rows = stmt
        .query_map([tenant.as_str(), user.as_str()], |row| {
            Ok(UnreadCount {
                conversation_id: parsed_at(row, 0, ConversationId::parse)?,
                count: count_at(row, 1)?,
            })
        })
        .map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

fn membership_from(row: &Row<'_>) -> rusqlite::Result<Membership> {
    Ok(Membership {
        participant: Participant {
            user_id: parsed_at(row, 0, UserId::parse)?,
            role: parsed_at(row, 1, |s| known(Role::parse(&s), "role"))?,
            secondary: row.get(2)?,
            name: row.get(3)?,
            email: row.get(6)?,
        },
        read_position: count_at(row, 4)?,
        unread: count_at(row, 5)?,
    })
}
