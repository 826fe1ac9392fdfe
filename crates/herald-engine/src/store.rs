//! The `Store` port: everything durable. Every method that writes returns only after the write
//! is committed and flushed to stable storage — callers acknowledge on that basis.
//!
//! Backends: SQLite (`herald-store-sqlite`, the embedded default) and PostgreSQL
//! (`herald-store-postgres`, cluster mode).
//! The testkit's conformance suite runs against any implementation.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::device::{Device, DeviceRegistration, Registered};
use crate::event::{NewEvent, StoredEvent};
use crate::ids::{AppId, ConversationId, DeviceId, EventId, KeyId, TenantId, UserId};
use crate::participant::{Membership, Participant};
use crate::tenant::{ApiKey, Tenant, TenantAuth};
use crate::validate::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    AlreadyExists,
    /// An `event_id` was reused with a different body.
    #[error("event {index} reuses an event_id with a different body")]
    EventConflict { index: usize },
    /// An event that is well-formed but impossible in the conversation's current state.
    #[error("event {index} is invalid: {invalid}")]
    EventInvalid { index: usize, invalid: Invalid },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An engine commit whose fence no longer holds the engine lease: another node decides
    /// now, and nothing of the commit was written.
    #[error("the engine lease is held by another node")]
    Fenced,
}

/// An app as stored: the public document (secrets replaced by the mask) and the sealed
/// secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApp {
    pub app_id: AppId,
    pub document: Value,
    pub sealed_secrets: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadCount {
    pub conversation_id: ConversationId,
    pub count: u64,
}

/// A recipient whose unread count changed, with the new badge total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadChange {
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub count: u64,
    pub total: u64,
}

/// What appending one event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub event_id: EventId,
    pub conversation_id: ConversationId,
    pub position: u64,
    /// A repeat of an event already stored: nothing changed.
    pub duplicate: bool,
    /// For new events: what live sessions need to hear about.
    pub effects: Option<Effects>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    pub event: StoredEvent,
    /// Every participant after the event, plus anyone it removed.
    pub recipients: Vec<UserId>,
    pub unread: Vec<UnreadChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub last_position: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub participants: Vec<Membership>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Tenants and keys.
    async fn create_tenant(&self, tenant: &Tenant, auth: &TenantAuth) -> Result<(), StoreError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<(Tenant, TenantAuth)>, StoreError>;
    async fn set_tenant_auth(&self, id: &TenantId, auth: &TenantAuth) -> Result<bool, StoreError>;
    async fn create_api_key(&self, key: &ApiKey, hash: [u8; 32]) -> Result<(), StoreError>;
    /// The live (not revoked) key with this hash.
    async fn find_api_key(&self, hash: [u8; 32]) -> Result<Option<ApiKey>, StoreError>;
    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError>;
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    // Apps.
    /// Creates or replaces; answers whether it was created.
    async fn put_app(&self, tenant: &TenantId, app: &StoredApp) -> Result<bool, StoreError>;
    async fn get_app(
        &self,
        tenant: &TenantId,
        app: &AppId,
    ) -> Result<Option<StoredApp>, StoreError>;
    async fn list_apps(&self, tenant: &TenantId) -> Result<Vec<StoredApp>, StoreError>;
    /// Deletes the app and its devices.
    async fn delete_app(&self, tenant: &TenantId, app: &AppId) -> Result<bool, StoreError>;

    // Devices.
    /// Registers per SPEC §2.3: a token belongs to at most one user per app (registering it
    /// moves it); a new token with a known installation id replaces the old one in place.
    /// `new_id` is used only when a device is created.
    async fn register_device(
        &self,
        tenant: &TenantId,
        registration: &DeviceRegistration,
        new_id: DeviceId,
        now: OffsetDateTime,
    ) -> Result<(Device, Registered), StoreError>;
    async fn list_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Device>, StoreError>;
    async fn get_device(
        &self,
        tenant: &TenantId,
        id: &DeviceId,
    ) -> Result<Option<Device>, StoreError>;
    async fn delete_device(&self, tenant: &TenantId, id: &DeviceId) -> Result<bool, StoreError>;
    async fn delete_devices_by_token(
        &self,
        tenant: &TenantId,
        user: &UserId,
        token: &str,
    ) -> Result<u64, StoreError>;
    async fn delete_user_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<u64, StoreError>;

    // Conversations and transcripts.
    /// Appends a batch atomically: either every event is stored (or recognised as a repeat)
    /// or nothing changes. Positions are gap-free per conversation.
    async fn append_events(
        &self,
        tenant: &TenantId,
        events: Vec<NewEvent>,
        now: OffsetDateTime,
    ) -> Result<Vec<Appended>, StoreError>;
    /// Upserts a participant; appends `participant.joined` only when membership changed,
    /// carrying `by`, who added them (an invitation or a forward: the engine may tell them).
    async fn put_participant(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        participant: &Participant,
        by: Option<&UserId>,
        event_id: EventId,
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError>;
    /// Removes a participant; appends `participant.left` only when they were one.
    async fn remove_participant(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        event_id: EventId,
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError>;
    /// Moves a participant's read position forward (never back); appends `message.read` only
    /// when it moved. Fails with `EventInvalid` when the user is not a participant or the
    /// position is beyond the transcript.
    async fn mark_read(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        position: u64,
        event_id: EventId,
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError>;
    async fn events_after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    async fn get_conversation(
        &self,
        tenant: &TenantId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError>;
    async fn membership(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError>;
    /// Per-conversation unread counts of a user (conversations with 0 included).
    async fn unread(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<UnreadCount>, StoreError>;
}
