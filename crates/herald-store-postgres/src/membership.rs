//! Memberships: who is in a conversation, how far each member has read, and their unread
//! count. A projection of the transcript that `transcript::append` keeps in step, in the same
//! transaction as the event that changes it (under the conversation's lock).

use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_engine::participant::{Membership, Participant, Role};
use herald_engine::store::{StoreError, UnreadCount};
use herald_engine::unread::counts_as_unread_row;
use tokio_postgres::Row;

use crate::codec::{
    Tx, count_at, execute, get, int, known, parsed_at, query, query_one, query_opt, rows,
};

const COLUMNS: &str = "user_id, role, secondary, name, read_position, unread, email";

pub(crate) async fn get_one(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
) -> Result<Option<Membership>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM memberships
         WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3"
    );
    let row = query_opt(
        tx,
        &sql,
        &[&tenant.as_str(), &conversation.as_str(), &user.as_str()],
    )
    .await?;
    row.as_ref().map(membership_from).transpose()
}

/// Sorted by user id.
pub(crate) async fn list(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Vec<Membership>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM memberships
         WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY user_id"
    );
    rows(
        query(tx, &sql, &[&tenant.as_str(), &conversation.as_str()]).await?,
        membership_from,
    )
}

/// Sorted by user id.
pub(crate) async fn user_ids(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Vec<UserId>, StoreError> {
    let found = query(
        tx,
        "SELECT user_id FROM memberships
         WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY user_id",
        &[&tenant.as_str(), &conversation.as_str()],
    )
    .await?;
    rows(found, |row| parsed_at(row, 0, UserId::parse))
}

/// Adds the participant unless they already are one. A new member has read everything up to
/// `position` (the event that made them a member): history before joining is not unread.
pub(crate) async fn join(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    participant: &Participant,
    position: u64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO memberships (tenant_id, conversation_id, user_id, role, secondary,
                                    name, read_position, unread, email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)
         ON CONFLICT DO NOTHING";
    write_participant(tx, sql, tenant, conversation, participant, position).await
}

/// Adds the participant, or updates role, secondary and name of a member (whose read state
/// stays as it is).
pub(crate) async fn upsert(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    participant: &Participant,
    position: u64,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO memberships (tenant_id, conversation_id, user_id, role, secondary,
                                    name, read_position, unread, email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)
         ON CONFLICT (tenant_id, conversation_id, user_id) DO UPDATE SET
             role = excluded.role, secondary = excluded.secondary, name = excluded.name,
             email = coalesce(excluded.email, memberships.email)";
    write_participant(tx, sql, tenant, conversation, participant, position).await
}

/// Sets (or clears) the address notification emails go to when preferences name none.
pub(crate) async fn set_email(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    email: Option<&str>,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE memberships SET email = $4
         WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3",
        &[
            &tenant.as_str(),
            &conversation.as_str(),
            &user.as_str(),
            &email,
        ],
    )
    .await?;
    Ok(())
}

async fn write_participant(
    tx: &Tx<'_>,
    sql: &str,
    tenant: &TenantId,
    conversation: &ConversationId,
    p: &Participant,
    position: u64,
) -> Result<(), StoreError> {
    execute(
        tx,
        sql,
        &[
            &tenant.as_str(),
            &conversation.as_str(),
            &p.user_id.as_str(),
            &p.role.as_str(),
            &p.secondary,
            &p.name,
            &int(position),
            &p.email,
        ],
    )
    .await?;
    Ok(())
}

/// Answers the unread count the member had, or `None` if they were not a member.
pub(crate) async fn remove(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
) -> Result<Option<u64>, StoreError> {
    let row = query_opt(
        tx,
        "DELETE FROM memberships WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3
         RETURNING unread",
        &[&tenant.as_str(), &conversation.as_str(), &user.as_str()],
    )
    .await?;
    row.map(|row| count_at(&row, 0)).transpose()
}

/// One more unread message; answers the new count.
pub(crate) async fn add_unread(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
) -> Result<u64, StoreError> {
    let row = query_one(
        tx,
        "UPDATE memberships SET unread = unread + 1
         WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3
         RETURNING unread",
        &[&tenant.as_str(), &conversation.as_str(), &user.as_str()],
    )
    .await?;
    count_at(&row, 0)
}

pub(crate) async fn set_read(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    read_position: u64,
    unread: u64,
) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE memberships SET read_position = $4, unread = $5
         WHERE tenant_id = $1 AND conversation_id = $2 AND user_id = $3",
        &[
            &tenant.as_str(),
            &conversation.as_str(),
            &user.as_str(),
            &int(read_position),
            &int(unread),
        ],
    )
    .await?;
    Ok(())
}

/// Counts, by the engine's rule, the events after `after` that are unread for `user`. Only
/// messages can count, so only messages are read (from the `events_messages` index).
pub(crate) async fn count_unread(
    tx: &Tx<'_>,
    tenant: &TenantId,
    conversation: &ConversationId,
    user: &UserId,
    after: u64,
) -> Result<u64, StoreError> {
    let found = query(
        tx,
        "SELECT sender_id, sender_role FROM events
         WHERE tenant_id = $1 AND conversation_id = $2 AND position > $3
           AND type = 'message.created'",
        &[&tenant.as_str(), &conversation.as_str(), &int(after)],
    )
    .await?;
    let mut count = 0;
    for row in &found {
        let sender_id: Option<&str> = get(row, 0)?;
        let sender_role: Option<&str> = get(row, 1)?;
        if counts_as_unread_row("message.created", sender_id, sender_role, user.as_str()) {
            count += 1;
        }
    }
    Ok(count)
}

/// The user's badge: unread counts summed over all their conversations in the tenant.
pub(crate) async fn total_unread(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<u64, StoreError> {
    let row = query_one(
        tx,
        "SELECT coalesce(sum(unread), 0)::BIGINT FROM memberships
         WHERE tenant_id = $1 AND user_id = $2",
        &[&tenant.as_str(), &user.as_str()],
    )
    .await?;
    count_at(&row, 0)
}

/// Every membership of the user, sorted by conversation id.
pub(crate) async fn unread_counts(
    tx: &Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Vec<UnreadCount>, StoreError> {
    let found = query(
        tx,
        "SELECT conversation_id, unread FROM memberships
         WHERE tenant_id = $1 AND user_id = $2 ORDER BY conversation_id",
        &[&tenant.as_str(), &user.as_str()],
    )
    .await?;
    rows(found, |row| {
        Ok(UnreadCount {
            conversation_id: parsed_at(row, 0, ConversationId::parse)?,
            count: count_at(row, 1)?,
        })
    })
}

fn membership_from(row: &Row) -> Result<Membership, StoreError> {
    Ok(Membership {
        participant: Participant {
            user_id: parsed_at(row, 0, UserId::parse)?,
            role: parsed_at(row, 1, |s| known(Role::parse(&s), "role"))?,
            secondary: get(row, 2)?,
            name: get(row, 3)?,
            email: get(row, 6)?,
        },
        read_position: count_at(row, 4)?,
        unread: count_at(row, 5)?,
    })
}
