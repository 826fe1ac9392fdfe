//! The notification engine's state: the outbox, threads (with their timers), per-user state,
//! calls, preferences, the decision log and Web Push health checks. Engine state is stored as
//! JSON documents: the engine owns their shape, the store only indexes what it must query.
//!
//! - [`reads`]: what a step reads (outbox, user contexts, calls, recent messages, due timers).
//! - [`commit`]: one step's decisions, timers, deliveries and outbox removal in one
//!   transaction.
//! - [`records`]: the decision log, preferences and health checks.
//! - this file: the `NotifyStore` port implementation.

mod commit;
mod reads;
mod records;

pub(crate) use self::reads::enqueue;

use async_trait::async_trait;
use herald_engine::device::Device;
use herald_engine::event::StoredEvent;
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::notify::calls::CallState;
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::record::NotificationRecord;
use herald_engine::notify::store::{
    EventInputs, NotifyCommit, NotifyStore, OutboxItem, ThreadKey, UserContext,
};
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::{PostgresStore, devices, read_tx, write_tx};

#[async_trait]
impl NotifyStore for PostgresStore {
    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        read_tx!(self, |tx| reads::outbox(&tx, limit).await)
    }

    async fn event_inputs(&self, items: &[OutboxItem]) -> Result<Vec<EventInputs>, StoreError> {
        read_tx!(self, |tx| {
            let mut inputs = Vec::with_capacity(items.len());
            for item in items {
                match reads::event_inputs(&tx, item).await {
                    Ok(input) => inputs.push(input),
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, StoreError>(inputs)
        })
    }

    async fn user_context(
        &self,
        tenant: &TenantId,
        user: &UserId,
        conversation: Option<&ConversationId>,
    ) -> Result<UserContext, StoreError> {
        read_tx!(self, |tx| reads::user_context(
            &tx,
            tenant,
            user,
            conversation
        )
        .await)
    }

    async fn call(
        &self,
        tenant: &TenantId,
        call_id: &str,
    ) -> Result<Option<CallState>, StoreError> {
        read_tx!(self, |tx| reads::call(&tx, tenant, call_id).await)
    }

    async fn recent_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        position: u64,
        n: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        read_tx!(self, |tx| {
            reads::recent_messages(&tx, tenant, conversation, position, n).await
        })
    }

    async fn due_threads(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ThreadKey>, StoreError> {
        read_tx!(self, |tx| reads::due_threads(&tx, now, limit).await)
    }

    async fn due_notifications(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>, StoreError> {
        read_tx!(self, |tx| reads::due_notifications(&tx, now, limit).await)
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        read_tx!(self, |tx| reads::next_due(&tx).await)
    }

    async fn commit_notify(
        &self,
        batch: NotifyCommit,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        write_tx!(self, |tx| async {
            if let Some(fence) = &batch.fence {
                crate::lease::check(&tx, fence).await?;
            }
            commit::commit(&tx, &batch, now).await
        }
        .await)
    }

    async fn notification(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        read_tx!(self, |tx| records::notification(&tx, tenant, id).await)
    }

    async fn user_notifications(
        &self,
        tenant: &TenantId,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        read_tx!(self, |tx| records::user_notifications(
            &tx, tenant, user, limit
        )
        .await)
    }

    async fn put_preferences(
        &self,
        tenant: &TenantId,
        user: &UserId,
        preferences: &Preferences,
    ) -> Result<(), StoreError> {
        write_tx!(self, |tx| records::put_preferences(
            &tx,
            tenant,
            user,
            preferences
        )
        .await)
    }

    async fn devices_to_check(
        &self,
        tenant: &TenantId,
        app: &AppId,
        checked_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Device>, StoreError> {
        read_tx!(self, |tx| {
            devices::to_check(&tx, tenant, app, checked_before, limit).await
        })
    }

    async fn expire_checks(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(TenantId, UserId, DeviceId)>, StoreError> {
        write_tx!(self, |tx| records::expire_checks(&tx, now).await)
    }

    async fn acknowledge_check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        device: &DeviceId,
        check_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        write_tx!(self, |tx| {
            records::acknowledge_check(&tx, tenant, user, device, check_id, now).await
        })
    }

    async fn unhealthy_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<(DeviceId, AppId)>, StoreError> {
        read_tx!(self, |tx| records::unhealthy_devices(&tx, tenant, user)
            .await)
    }
}
