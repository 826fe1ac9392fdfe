//! The `Store` and `DeliveryQueue` ports: each method one transaction (see the crate docs).

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

use crate::{
    PostgresStore, apps, conversation, deliveries, devices, membership, read_tx, tenants,
    transcript, write_tx,
};

#[async_trait]
impl DeliveryQueue for PostgresStore {
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        write_tx!(self, |tx| deliveries::claim(&tx, now, lease, limit).await)
    }

    async fn settle_delivery(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        settlement: Settlement,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        write_tx!(self, |tx| {
            deliveries::settle(&tx, tenant, delivery_id, settlement.clone(), now).await
        })
    }

    async fn next_delivery_at(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        read_tx!(self, |tx| deliveries::next_at(&tx).await)
    }

    async fn deliveries_of(
        &self,
        tenant: &TenantId,
        notification_id: &str,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        read_tx!(self, |tx| deliveries::of_notification(
            &tx,
            tenant,
            notification_id
        )
        .await)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_tenant(&self, tenant: &Tenant, auth: &TenantAuth) -> Result<(), StoreError> {
        write_tx!(self, |tx| tenants::create(&tx, tenant, auth).await)
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        read_tx!(self, |tx| tenants::list(&tx).await)
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<(Tenant, TenantAuth)>, StoreError> {
        read_tx!(self, |tx| tenants::get_one(&tx, id).await)
    }

    async fn set_tenant_auth(&self, id: &TenantId, auth: &TenantAuth) -> Result<bool, StoreError> {
        write_tx!(self, |tx| tenants::set_auth(&tx, id, auth).await)
    }

    async fn create_api_key(&self, key: &ApiKey, hash: [u8; 32]) -> Result<(), StoreError> {
        write_tx!(self, |tx| tenants::create_key(&tx, key, hash).await)
    }

    async fn find_api_key(&self, hash: [u8; 32]) -> Result<Option<ApiKey>, StoreError> {
        read_tx!(self, |tx| tenants::find_key(&tx, hash).await)
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        read_tx!(self, |tx| tenants::list_keys(&tx, tenant).await)
    }

    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        write_tx!(self, |tx| tenants::revoke_key(&tx, tenant, id, at).await)
    }

    async fn put_app(&self, tenant: &TenantId, app: &StoredApp) -> Result<bool, StoreError> {
        write_tx!(self, |tx| apps::put(&tx, tenant, app).await)
    }

    async fn get_app(
        &self,
        tenant: &TenantId,
        app: &AppId,
    ) -> Result<Option<StoredApp>, StoreError> {
        read_tx!(self, |tx| apps::get_one(&tx, tenant, app).await)
    }

    async fn list_apps(&self, tenant: &TenantId) -> Result<Vec<StoredApp>, StoreError> {
        read_tx!(self, |tx| apps::list(&tx, tenant).await)
    }

    async fn delete_app(&self, tenant: &TenantId, app: &AppId) -> Result<bool, StoreError> {
        write_tx!(self, |tx| apps::delete(&tx, tenant, app).await)
    }

    async fn register_device(
        &self,
        tenant: &TenantId,
        registration: &DeviceRegistration,
        new_id: DeviceId,
        now: OffsetDateTime,
    ) -> Result<(Device, Registered), StoreError> {
        write_tx!(self, |tx| devices::register(
            &tx,
            tenant,
            registration,
            &new_id,
            now
        )
        .await)
    }

    async fn list_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Device>, StoreError> {
        read_tx!(self, |tx| devices::list(&tx, tenant, user).await)
    }

    async fn get_device(
        &self,
        tenant: &TenantId,
        id: &DeviceId,
    ) -> Result<Option<Device>, StoreError> {
        read_tx!(self, |tx| devices::get_one(&tx, tenant, id).await)
    }

    async fn delete_device(&self, tenant: &TenantId, id: &DeviceId) -> Result<bool, StoreError> {
        write_tx!(self, |tx| devices::delete(&tx, tenant, id).await)
    }

    async fn delete_devices_by_token(
        &self,
        tenant: &TenantId,
        user: &UserId,
        token: &str,
    ) -> Result<u64, StoreError> {
        write_tx!(self, |tx| devices::delete_by_token(
            &tx, tenant, user, token
        )
        .await)
    }

    async fn delete_user_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<u64, StoreError> {
        write_tx!(self, |tx| devices::delete_for_user(&tx, tenant, user).await)
    }

    async fn append_events(
        &self,
        tenant: &TenantId,
        events: Vec<NewEvent>,
        now: OffsetDateTime,
    ) -> Result<Vec<Appended>, StoreError> {
        write_tx!(self, |tx| transcript::append_batch(
            &tx, tenant, &events, now
        )
        .await)
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
        write_tx!(self, |tx| {
            let (id, joined) = (event_id.clone(), (participant, by));
            conversation::put_participant(&tx, tenant, conversation, joined, id, now).await
        })
    }

    async fn remove_participant(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
        event_id: EventId,
        now: OffsetDateTime,
    ) -> Result<Option<Appended>, StoreError> {
        write_tx!(self, |tx| {
            let id = event_id.clone();
            conversation::remove_participant(&tx, tenant, conversation, user, id, now).await
        })
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
        write_tx!(self, |tx| {
            let id = event_id.clone();
            conversation::mark_read(&tx, tenant, conversation, user, position, id, now).await
        })
    }

    async fn events_after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        read_tx!(self, |tx| {
            conversation::events_after(&tx, tenant, conversation, after, limit).await
        })
    }

    async fn get_conversation(
        &self,
        tenant: &TenantId,
        id: &ConversationId,
    ) -> Result<Option<Conversation>, StoreError> {
        read_tx!(self, |tx| conversation::conversation(&tx, tenant, id).await)
    }

    async fn membership(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        read_tx!(self, |tx| membership::get_one(
            &tx,
            tenant,
            conversation,
            user
        )
        .await)
    }

    async fn unread(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<UnreadCount>, StoreError> {
        read_tx!(self, |tx| membership::unread_counts(&tx, tenant, user)
            .await)
    }
}
