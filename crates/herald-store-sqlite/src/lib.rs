//! Herald's embedded store: the engine's [`Store`] port on one SQLite file.
//!
//! - `pool`: the connections — one writer thread doing group commit (`synchronous=FULL`, one
//!   fsync per group, answers only after the commit), and a few read-only reader threads.
//! - `schema`: the tables, migrated by `PRAGMA user_version`.
//! - `tenants`, `apps`, `devices`: one module per resource.
//! - `deliveries`: the delivery queue (`DeliveryQueue`): claims under a lease, settlements.
//! - `transcript`: appending events (idempotency, positions, effects) and reading them back;
//!   `membership`: the membership and unread projection it maintains.
//! - `codec`: how engine values map to columns (times as unix milliseconds).
//!
//! Times are stored with millisecond precision: a time read back is the written one truncated
//! to the millisecond, in UTC. Event bodies keep their exact `occurred_at` (they are stored as
//! their JSON wire form).
//!
//! ```no_run
//! # fn main() -> Result<(), herald_engine::store::StoreError> {
//! let store = herald_store_sqlite::SqliteStore::open(std::path::Path::new("herald.db"))?;
//! # Ok(()) }
//! ```

mod apps;
mod codec;
mod concluded;
mod deliveries;
mod devices;
mod membership;
mod notify;
#[cfg(test)]
mod plans;
mod pool;
mod schema;
mod tenants;
mod transcript;

use std::path::Path;

use async_trait::async_trait;
use herald_engine::delivery::{DeliveryQueue, DeliveryView, Settlement};
use herald_engine::device::{Device, DeviceRegistration, Registered};
use herald_engine::event::{NewEvent, StoredEvent};
use herald_engine::ids::{AppId, ConversationId, DeviceId, EventId, KeyId, TenantId, UserId};
use herald_engine::participant::{Membership, Participant};
use herald_engine::push::Delivery;
use herald_engine::store::{Appended, Conversation, Store, StoreError, StoredApp, UnreadCount};
use herald_engine::tenant::{ApiKey, Tenant, TenantAuth};
use time::OffsetDateTime;

use crate::pool::Pool;

/// The SQLite store. Cheap to share behind an `Arc`; dropping it closes the file (see
/// `pool`).
pub struct SqliteStore {
    pool: Pool,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and migrating the schema as needed.
    /// Another process (the operator CLI) may have the same file open.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            pool: Pool::open(path)?,
        })
    }

    /// Enqueues new deliveries, due at once, in one transaction (see `deliveries::insert`).
    pub async fn enqueue_deliveries(
        &self,
        deliveries: Vec<Delivery>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.pool
            .write(move |tx| {
                deliveries
                    .iter()
                    .try_for_each(|d| deliveries::insert(tx, d, now, now))
            })
            .await
    }
}

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.pool
            .write(move |tx| deliveries::claim(tx, now, lease, limit))
            .await
    }

    async fn settle_delivery(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        settlement: Settlement,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (tenant, id) = (tenant.clone(), delivery_id.to_string());
        self.pool
            .write(move |tx| deliveries::settle(tx, &tenant, &id, settlement, now))
            .await
    }

    async fn next_delivery_at(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.pool.read(deliveries::next_at).await
    }

    async fn deliveries_of(
        &self,
        tenant: &TenantId,
        notification_id: &str,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        let (tenant, id) = (tenant.clone(), notification_id.to_string());
        self.pool
            .read(move |tx| deliveries::of_notification(tx, &tenant, &id))
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant, auth: &TenantAuth) -> Result<(), StoreError> {
        let (tenant, auth) = (tenant.clone(), auth.clone());
        self.pool
            .write(move |tx| tenants::create(tx, &tenant, &auth))
            .await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.pool.read(tenants::list).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<(Tenant, TenantAuth)>, StoreError> {
        let id = id.clone();
        self.pool.read(move |tx| tenants::get(tx, &id)).await
    }

    async fn set_tenant_auth(&self, id: &TenantId, auth: &TenantAuth) -> Result<bool, StoreError> {
        let (id, auth) = (id.clone(), auth.clone());
        self.pool
            .write(move |tx| tenants::set_auth(tx, &id, &auth))
            .await
    }

    async fn create_api_key(&self, key: &ApiKey, hash: [u8; 32]) -> Result<(), StoreError> {
        let key = key.clone();
        self.pool
            .write(move |tx| tenants::create_key(tx, &key, hash))
            .await
    }

    async fn find_api_key(&self, hash: [u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        self.pool.read(move |tx| tenants::find_key(tx, hash)).await
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let tenant = tenant.clone();
        self.pool
            .read(move |tx| tenants::list_keys(tx, &tenant))
            .await
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.pool
            .write(move |tx| tenants::revoke_key(tx, &tenant, &id, at))
            .await
    }

    async fn put_app(&self, tenant: &TenantId, app: &StoredApp) -> Result<bool, StoreError> {
        let (tenant, app) = (tenant.clone(), app.clone());
        self.pool
            .write(move |tx| apps::put(tx, &tenant, &app))
            .await
    }

    async fn get_app(
        &self,
        tenant: &TenantId,
        app: &AppId,
    ) -> Result<Option<StoredApp>, StoreError> {
        let (tenant, app) = (tenant.clone(), app.clone());
        self.pool.read(move |tx| apps::get(tx, &tenant, &app)).await
    }

    async fn list_apps(&self, tenant: &TenantId) -> Result<Vec<StoredApp>, StoreError> {
        let tenant = tenant.clone();
        self.pool.read(move |tx| apps::list(tx, &tenant)).await
    }

    async fn delete_app(&self, tenant: &TenantId, app: &AppId) -> Result<bool, StoreError> {
        let (tenant, app) = (tenant.clone(), app.clone());
        self.pool
            .write(move |tx| apps::delete(tx, &tenant, &app))
            .await
    }

    async fn register_device(
        &self,
        tenant: &TenantId,
        registration: &DeviceRegistration,
        new_id: DeviceId,
        now: OffsetDateTime,
    ) -> Result<(Device, Registered), StoreError> {
        let (tenant, registration) = (tenant.clone(), registration.clone());
        self.pool
            .write(move |tx| devices::register(tx, &tenant, &registration, &new_id, now))
            .await
    }

    async fn list_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Device>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.pool
            .read(move |tx| devices::list(tx, &tenant, &user))
            .await
    }

    async fn get_device(
        &self,
        tenant: &TenantId,
        id: &DeviceId,
    ) -> Result<Option<Device>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.pool
            .read(move |tx| devices::get(tx, &tenant, &id))
            .await
    }

    async fn delete_device(&self, tenant: &TenantId, id: &DeviceId) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.pool
            .write(move |tx| devices::delete(tx, &tenant, &id))
            .await
    }

    async fn delete_devices_by_token(
        &self,
        tenant: &TenantId,
        user: &UserId,
        token: &str,
    ) -> Result<u64, StoreError> {
        let (tenant, user, token) = (tenant.clone(), user.clone(), token.to_string());
        self.pool
            .write(move |tx| devices::delete_by_token(tx, &tenant, &user, &token))
            .await
    }

    async fn delete_user_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<u64, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.pool
            .write(move |tx| devices::delete_for_user(tx, &tenant, &user))
            .await
    }

    async fn append_events(
        &self,
        tenant: &TenantId,
        events: Vec<NewEvent>,
        now: OffsetDateTime,
    ) -> Result<Vec<Appended>, StoreError> {
        let tenant = tenant.clone();
        self.pool
            .write(move |tx| transcript::append_batch(tx, &tenant, &events, now))
            .await
    }

    async fn put_participant(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        participant: &Participant,
        by: Option<&UserId>,
        event_id: EventId,
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError> {
        let (tenant, conversation, participant) =
            (tenant.clone(), conversation.clone(), participant.clone());
        let by = by.cloned();
        self.pool
            .write(move |tx| {
                let joined = (&participant, by);
                transcript::put_participant(tx, &tenant, &conversation, joined, event_id, now)
            })
            .await
    }

    async fn remove_participant(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        event_id: EventId,
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError> {
        let (tenant, conversation, user) = (tenant.clone(), conversation.clone(), user.clone());
        self.pool
            .write(move |tx| {
                transcript::remove_participant(tx, &tenant, &conversation, &user, event_id, now)
            })
            .await
    }

    async fn mark_read(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        position: u64,
        event_id: EventId,
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError> {
        let (tenant, conversation, user) = (tenant.clone(), conversation.clone(), user.clone());
        self.pool
            .write(move |tx| {
                transcript::mark_read(tx, &tenant, &conversation, &user, position, event_id, now)
            })
            .await
    }

    async fn events_after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (tenant, conversation) = (tenant.clone(), conversation.clone());
        self.pool
            .read(move |tx| transcript::events_after(tx, &tenant, &conversation, after, limit))
            .await
    }

    async fn get_conversation(
        &self,
        tenant: &TenantId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.pool
            .read(move |tx| transcript::conversation(tx, &tenant, &id))
            .await
    }

    async fn membership(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let (tenant, conversation, user) = (tenant.clone(), conversation.clone(), user.clone());
        self.pool
            .read(move |tx| membership::get(tx, &tenant, &conversation, &user))
            .await
    }

    async fn unread(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<UnreadCount>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.pool
            .read(move |tx| membership::unread_counts(tx, &tenant, &user))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn writer_pragma(store: &SqliteStore, name: &'static str) -> String {
        store
            .pool
            .write(move |tx| {
                tx.pragma_query_value(None, name, |row| {
                    let value: rusqlite::types::Value = row.get(0)?;
                    Ok(match value {
                        rusqlite::types::Value::Integer(n) => n.to_string(),
                        rusqlite::types::Value::Text(s) => s,
                        other => format!("{other:?}"),
                    })
                })
                .map_err(codec::db)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_writer_runs_in_wal_mode_with_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("herald.db")).unwrap();
        // 2 is FULL.
        assert_eq!(writer_pragma(&store, "synchronous").await, "2");
        assert_eq!(writer_pragma(&store, "journal_mode").await, "wal");
        assert_eq!(writer_pragma(&store, "busy_timeout").await, "5000");
    }
}
