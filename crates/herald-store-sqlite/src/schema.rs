//! The schema and its migrations. `PRAGMA user_version` holds how many migrations the file has
//! had; opening runs the missing ones in one `BEGIN IMMEDIATE` transaction, so a server and an
//! operator CLI opening the same file at once cannot both migrate it.
//!
//! There are no foreign keys: the port does not require a tenant or app to exist before rows
//! that name them, and the cascades it does require (an app's devices) are explicit deletes.

use herald_engine::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use crate::codec::db;

/// Append-only: never edit a migration that has shipped, add the next one.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

const V1: &str = "
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    sealed_secrets BLOB NOT NULL,
    public_key_pem TEXT,
    public_key_alg TEXT
) STRICT;

CREATE TABLE api_keys (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE TABLE apps (
    tenant_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    document TEXT NOT NULL,
    sealed_secrets BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
) STRICT;

CREATE TABLE devices (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    token TEXT NOT NULL,
    subscription TEXT,
    platform TEXT NOT NULL,
    locale TEXT,
    installation_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, app_id, channel, token)
) STRICT;
CREATE INDEX devices_by_user ON devices (tenant_id, user_id);
-- Registration keeps one device per installation; the index makes a slip an error.
CREATE UNIQUE INDEX devices_by_installation
    ON devices (tenant_id, app_id, channel, installation_id)
    WHERE installation_id IS NOT NULL;

CREATE TABLE conversations (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    last_position INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT, WITHOUT ROWID;

-- body is the event's canonical JSON; hash is its SHA-256, compared when an event_id repeats.
CREATE TABLE events (
    tenant_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    hash BLOB NOT NULL,
    type TEXT NOT NULL,
    sender_id TEXT,
    sender_role TEXT,
    body TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    UNIQUE (tenant_id, conversation_id, position),
    UNIQUE (tenant_id, event_id)
) STRICT;
-- Unread recounts read only the messages after a read position, and never their bodies.
CREATE INDEX events_messages
    ON events (tenant_id, conversation_id, position, sender_id, sender_role)
    WHERE type = 'message.created';

CREATE TABLE memberships (
    tenant_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    secondary INTEGER NOT NULL,
    name TEXT,
    email TEXT,
    read_position INTEGER NOT NULL,
    unread INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (tenant_id, user_id, conversation_id);
";

/// The notification engine and the delivery queue.
const V2: &str = "
-- Events waiting for the notification engine; written in the same transaction as the event,
-- deleted in the same transaction as the engine's decisions about it.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    position INTEGER NOT NULL
) STRICT;

-- The engine's state per (user, app, conversation): the pending push and what was sent.
-- due_at is the durable timer: set while a push waits (grace, coalesce window, quiet hours).
CREATE TABLE threads (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    state TEXT NOT NULL,
    due_at INTEGER,
    PRIMARY KEY (tenant_id, user_id, app_id, conversation_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX threads_due ON threads (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX threads_by_user ON threads (tenant_id, user_id, app_id);

-- The engine's state per (user, app): when the last visible push went out (an away period
-- with a push in it is confirmed: later events skip the grace delay), missed calls.
CREATE TABLE user_states (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, app_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE preferences (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT, WITHOUT ROWID;

-- Calls in progress: who got the incoming-call push, so revocations reach exactly them.
CREATE TABLE calls (
    tenant_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
) STRICT, WITHOUT ROWID;

-- Every decision about telling a user something, including the ones not sent and why.
-- due_at: a scheduled proactive notification (send_at) waiting to go.
CREATE TABLE notifications (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    app_id TEXT,
    conversation_id TEXT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    due_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX notifications_by_user ON notifications (tenant_id, user_id, created_at);
CREATE INDEX notifications_due ON notifications (due_at) WHERE due_at IS NOT NULL;

-- One push to one target. target is a JSON snapshot (the device as registered, or the webhook
-- endpoint id); push is the channel-agnostic push JSON; history is the attempts as JSON.
-- endpoint_key scopes circuit breakers and concurrency limits.
CREATE TABLE deliveries (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    device_id TEXT,
    endpoint_id TEXT,
    target TEXT NOT NULL,
    push TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    history TEXT NOT NULL,
    note TEXT,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'pending' AND lease_until IS NOT NULL;
CREATE INDEX deliveries_by_notification ON deliveries (tenant_id, notification_id);

-- Web Push health checks: the last check sent to each subscription, and whether it failed.
CREATE TABLE device_checks (
    tenant_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    check_id TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    deadline INTEGER NOT NULL,
    acknowledged_at INTEGER,
    expired INTEGER NOT NULL DEFAULT 0,
    unhealthy_since INTEGER,
    PRIMARY KEY (tenant_id, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX device_checks_outstanding ON device_checks (deadline) WHERE acknowledged_at IS NULL AND expired = 0;
";

/// A claim moves a delivery's `next_attempt_at` to the end of its lease, so due deliveries are
/// one range of `deliveries_due` (leased ones no longer sit in it, to be stepped over by every
/// claim). Deliveries leased before that rule get the same treatment.
///
/// Two indexes for queries keyed by something narrower than the tenant, which otherwise walked
/// the tenant's rows: a dead device's pending deliveries, and a user's unhealthy Web Push
/// subscriptions (asked at every live session's start).
const V3: &str = "
UPDATE deliveries SET next_attempt_at = max(next_attempt_at, lease_until)
WHERE status = 'pending' AND lease_until IS NOT NULL;
CREATE INDEX deliveries_pending_by_device ON deliveries (tenant_id, device_id)
    WHERE status = 'pending';
CREATE INDEX device_checks_unhealthy ON device_checks (tenant_id, user_id)
    WHERE unhealthy_since IS NOT NULL;
";

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db)?;
    let applied = usize::try_from(version).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {version}, newer than this herald knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (version, migration) in (1_i64..).zip(MIGRATIONS).skip(applied) {
        tx.execute_batch(migration).map_err(db)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(db)?;
    }
    tx.commit().map_err(db)
}
