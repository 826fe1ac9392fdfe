-- Herald's schema on PostgreSQL: the same tables as the SQLite store. Ids and other keys are
-- TEXT COLLATE "C" (byte order, as the port's "sorted by id" means); times are unix
-- milliseconds (BIGINT); engine documents are JSON text. No foreign keys: the port does not
-- require a tenant or app to exist before rows that name them.
-- Append-only: never edit a migration that has shipped, add the next one.

CREATE TABLE tenants (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    sealed_secrets BYTEA NOT NULL,
    public_key_pem TEXT,
    public_key_alg TEXT
);

CREATE TABLE api_keys (
    tenant_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE apps (
    tenant_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    document TEXT NOT NULL,
    sealed_secrets BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
);

CREATE TABLE devices (
    tenant_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    token TEXT COLLATE "C" NOT NULL,
    subscription TEXT,
    platform TEXT NOT NULL,
    locale TEXT,
    installation_id TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, app_id, channel, token)
);
CREATE INDEX devices_by_user ON devices (tenant_id, user_id);
CREATE UNIQUE INDEX devices_by_installation
    ON devices (tenant_id, app_id, channel, installation_id)
    WHERE installation_id IS NOT NULL;

-- The row an append locks (FOR UPDATE through its upsert) to take the next position.
CREATE TABLE conversations (
    tenant_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    last_position BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- body is the event's canonical JSON; hash is its SHA-256, compared when an event_id repeats.
CREATE TABLE events (
    tenant_id TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    position BIGINT NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL,
    hash BYTEA NOT NULL,
    type TEXT NOT NULL,
    sender_id TEXT COLLATE "C",
    sender_role TEXT,
    body TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, position),
    UNIQUE (tenant_id, event_id)
);
CREATE INDEX events_messages
    ON events (tenant_id, conversation_id, position, sender_id, sender_role)
    WHERE type = 'message.created';

CREATE TABLE memberships (
    tenant_id TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    role TEXT NOT NULL,
    secondary BOOLEAN NOT NULL,
    name TEXT,
    email TEXT,
    read_position BIGINT NOT NULL,
    unread BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (tenant_id, user_id, conversation_id);

-- Events waiting for the notification engine; written in the same transaction as the event,
-- deleted in the same transaction as the engine's decisions about it.
CREATE TABLE outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    position BIGINT NOT NULL
);

CREATE TABLE threads (
    tenant_id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    conversation_id TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    due_at BIGINT,
    PRIMARY KEY (tenant_id, user_id, app_id, conversation_id)
);
CREATE INDEX threads_due ON threads (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX threads_by_user ON threads (tenant_id, user_id, app_id);

CREATE TABLE user_states (
    tenant_id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, app_id)
);

CREATE TABLE preferences (
    tenant_id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE calls (
    tenant_id TEXT COLLATE "C" NOT NULL,
    call_id TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tenant_id, call_id)
);

CREATE TABLE notifications (
    tenant_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C",
    conversation_id TEXT COLLATE "C",
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    due_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX notifications_by_user ON notifications (tenant_id, user_id, created_at);
CREATE INDEX notifications_due ON notifications (due_at) WHERE due_at IS NOT NULL;

-- A claim moves next_attempt_at to the end of its lease, so due deliveries are one range of
-- deliveries_due.
CREATE TABLE deliveries (
    tenant_id TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    notification_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    channel TEXT NOT NULL,
    device_id TEXT COLLATE "C",
    endpoint_id TEXT COLLATE "C",
    target TEXT NOT NULL,
    push TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    history TEXT NOT NULL,
    note TEXT,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_by_notification ON deliveries (tenant_id, notification_id);
CREATE INDEX deliveries_pending_by_device ON deliveries (tenant_id, device_id)
    WHERE status = 'pending';

CREATE TABLE device_checks (
    tenant_id TEXT COLLATE "C" NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL,
    check_id TEXT COLLATE "C" NOT NULL,
    sent_at BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    acknowledged_at BIGINT,
    expired BOOLEAN NOT NULL DEFAULT FALSE,
    unhealthy_since BIGINT,
    PRIMARY KEY (tenant_id, device_id)
);
CREATE INDEX device_checks_outstanding ON device_checks (deadline)
    WHERE acknowledged_at IS NULL AND NOT expired;
CREATE INDEX device_checks_unhealthy ON device_checks (tenant_id, user_id)
    WHERE unhealthy_since IS NOT NULL;
