//! The notification engine's state: the outbox, threads (with their timers), per-user state,
//! calls, preferences and the decision log. Engine state is stored as JSON documents: the
//! engine owns their shape, the store only indexes what it must query (due times, users).
//!
//! - [`reads`]: what a step reads (outbox, user contexts, calls, recent messages, due timers).
//! - [`commit`]: one step's decisions, timers, deliveries and outbox removal in one job.
//! - [`records`]: the decision log and preferences.
//! - [`checks`]: Web Push health checks.
//! - this file: JSON helpers and the `NotifyStore` port implementation.

mod checks;
mod commit;
mod reads;
mod records;

pub(crate) use self::checks::*;
pub(crate) use self::commit::*;
pub(crate) use self::reads::*;
pub(crate) use self::records::*;

use herald_engine::event::StoredEvent;
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::notify::calls::CallState;
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::record::NotificationRecord;
use herald_engine::notify::store::{EventInputs, NotifyCommit, OutboxItem, ThreadKey, UserContext};
use herald_engine::store::StoreError;
use rusqlite::types::Type;
use rusqlite::{Row, Transaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::codec::{conversion, db, parsed_at};
use crate::devices;
pub(super) fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unavailable(format!("engine state: {e}")))
}

/// Runs one cached statement.
pub(super) fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    values: impl rusqlite::Params,
) -> Result<(), StoreError> {
    tx.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(values))
        .map_err(db)?;
    Ok(())
}

pub(super) fn json_at<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| conversion(idx, Type::Text, e))
}

pub(super) fn id_at<T>(
    row: &Row<'_>,
    idx: usize,
    parse: fn(String) -> Result<T, herald_engine::validate::Invalid>,
) -> rusqlite::Result<T> {
    parsed_at(row, idx, parse)
}

#[async_trait::async_trait]
impl herald_engine::notify::store::NotifyStore for crate::SqliteStore {
    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.pool.read(move |tx| outbox(tx, limit)).await
    }

    async fn event_inputs(&self, items: &[OutboxItem]) -> Result<Vec<EventInputs>, StoreError> {
        let items = items.to_vec();
        self.pool
            .read(move |tx| items.iter().map(|item| event_inputs(tx, item)).collect())
            .await
    }

    async fn user_context(
        &self,
        tenant: &TenantId,
        user: &UserId,
        conversation: Option<&ConversationId>,
    ) -> Result<UserContext, StoreError> {
        let (tenant, user, conversation) = (tenant.clone(), user.clone(), conversation.cloned());
        self.pool
            .read(move |tx| user_context(tx, &tenant, &user, conversation.as_ref()))
            .await
    }

    async fn call(
        &self,
        tenant: &TenantId,
        call_id: &str,
    ) -> Result<Option<CallState>, StoreError> {
        let (tenant, call_id) = (tenant.clone(), call_id.to_string());
        self.pool.read(move |tx| call(tx, &tenant, &call_id)).await
    }

    async fn recent_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        position: u64,
        n: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (tenant, conversation) = (tenant.clone(), conversation.clone());
        self.pool
            .read(move |tx| recent_messages(tx, &tenant, &conversation, position, n))
            .await
    }

    async fn due_threads(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ThreadKey>, StoreError> {
        self.pool.read(move |tx| due_threads(tx, now, limit)).await
    }

    async fn due_notifications(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>, StoreError> {
        self.pool
            .read(move |tx| due_notifications(tx, now, limit))
            .await
    }

    async fn next_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.pool.read(next_due).await
    }

    async fn commit_notify(
        &self,
        batch: NotifyCommit,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // The embedded store has no engine lease to check a fence against: one process owns
        // it. A fenced commit here is a wiring mistake, and writing it unchecked would hide it.
        if batch.fence.is_some() {
            return Err(StoreError::Fenced);
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.pool.write(move |tx| commit(tx, &batch, now)).await
    }

    async fn notification(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.to_string());
        self.pool
            .read(move |tx| notification(tx, &tenant, &id))
            .await
    }

    async fn user_notifications(
        &self,
        tenant: &TenantId,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.pool
            .read(move |tx| user_notifications(tx, &tenant, &user, limit))
            .await
    }

    async fn put_preferences(
        &self,
        tenant: &TenantId,
        user: &UserId,
        preferences: &Preferences,
    ) -> Result<(), StoreError> {
        let (tenant, user, preferences) = (tenant.clone(), user.clone(), preferences.clone());
        self.pool
            .write(move |tx| put_preferences(tx, &tenant, &user, &preferences))
            .await
    }

    async fn devices_to_check(
        &self,
        tenant: &TenantId,
        app: &AppId,
        checked_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<herald_engine::device::Device>, StoreError> {
        let (tenant, app) = (tenant.clone(), app.clone());
        self.pool
            .read(move |tx| devices::to_check(tx, &tenant, &app, checked_before, limit))
            .await
    }

    async fn expire_checks(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(TenantId, UserId, DeviceId)>, StoreError> {
        self.pool.write(move |tx| expire_checks(tx, now)).await
    }

    async fn acknowledge_check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        device: &DeviceId,
        check_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (tenant, user, device, check_id) = (
            tenant.clone(),
            user.clone(),
            device.clone(),
            check_id.to_string(),
        );
        self.pool
            .write(move |tx| acknowledge_check(tx, &tenant, &user, &device, &check_id, now))
            .await
    }

    async fn unhealthy_devices(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<(DeviceId, AppId)>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.pool
            .read(move |tx| unhealthy_devices(tx, &tenant, &user))
            .await
    }
}
