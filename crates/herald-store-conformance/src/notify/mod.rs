//! Files: `outbox.rs` (what is queued for the engine, the batched read of a step, recent
//! messages), `commits.rs` (one step's commit: all or nothing, replacements by key),
//! `timers.rs` (due threads, due scheduled notifications, the next timer), `contexts.rs` (user
//! contexts, calls, preferences), `records.rs` (the decision log and its conclusion),
//! `checks.rs` (Web Push health checks). This file holds the builders they share.
//!
//! The notification engine's state (`NotifyStore`). Each case takes a [`NotifyFixture`]: the
//! store (whose appends queue events for the engine), the engine's state over the same data,
//! and the delivery queue a commit's deliveries go to.

mod checks;
mod commits;
mod contexts;
mod outbox;
mod records;
mod timers;

pub use checks::*;
pub use commits::*;
pub use contexts::*;
pub use outbox::*;
pub use records::*;
pub use timers::*;

use std::sync::Arc;

use herald_engine::device::{Device, DeviceChannel};
use herald_engine::ids::TenantId;
use herald_engine::notify::record::{NotificationRecord, Status};
use herald_engine::notify::store::{NotifyCommit, NotifyStore, OutboxItem, ThreadKey};
use herald_engine::notify::timing::{Pending, Thread, Wait};
use herald_engine::push::PushKind;

use crate::NotifyFixture;
use crate::support::{app_id, at, conversation, device_id, registration, user};

/// A decision about `owner` in conversation c1 of app "chat", made at `created`.
fn record(t: &TenantId, id: &str, owner: &str, status: Status, created: i64) -> NotificationRecord {
    NotificationRecord::new(
        id.into(),
        t.clone(),
        user(owner),
        Some(app_id("chat")),
        Some(conversation("c1")),
        PushKind::NewMessage,
        Some(1),
        None,
        status,
        "because",
        at(created),
    )
}

/// A proactive notification waiting for its `send_at`.
fn scheduled(t: &TenantId, id: &str, owner: &str, due: i64) -> NotificationRecord {
    let mut r = record(t, id, owner, Status::Scheduled, 0);
    r.due_at = Some(at(due));
    r
}

/// A thread whose pending push (notification `notification`) is due at `due`.
fn pending(notification: &str, due: i64) -> Thread {
    Thread {
        pending: Some(Pending {
            notification_id: notification.into(),
            due_at: at(due),
            wait: Wait::Grace,
            first_position: 1,
            latest_position: 1,
            count: 1,
            expires_at: at(due + 3_600),
        }),
        ..Thread::default()
    }
}

/// A thread with no timer: a push was shown and nothing waits.
fn shown() -> Thread {
    Thread {
        last_push_at: Some(at(1)),
        shown_position: Some(1),
        shown_notification: Some("n-shown".into()),
        ..Thread::default()
    }
}

fn key(t: &TenantId, owner: &str, app: &str, conv: &str) -> ThreadKey {
    ThreadKey {
        tenant: t.clone(),
        user: user(owner),
        app: app_id(app),
        conversation: conversation(conv),
    }
}

async fn commit(notify: &Arc<dyn NotifyStore>, commit: NotifyCommit, now: i64) {
    notify
        .commit_notify(commit, at(now))
        .await
        .expect("the commit is written");
}

async fn outbox(notify: &Arc<dyn NotifyStore>) -> Vec<OutboxItem> {
    notify.outbox(1_000).await.expect("the outbox reads")
}

/// (tenant, conversation, position) of each item, in order.
fn queued(items: &[OutboxItem]) -> Vec<(String, String, u64)> {
    items
        .iter()
        .map(|i| {
            (
                i.tenant.as_str().to_string(),
                i.conversation.as_str().to_string(),
                i.position,
            )
        })
        .collect()
}

/// Registers a device of `owner` in app `app`.
async fn device_of(
    fx: &dyn NotifyFixture,
    t: &TenantId,
    id: &str,
    owner: &str,
    app: &str,
    channel: DeviceChannel,
) -> Device {
    let token = match channel {
        DeviceChannel::Webpush => format!("https://push.example/{id}"),
        _ => format!("tok-{id}"),
    };
    fx.store()
        .register_device(
            t,
            &registration(app, owner, channel, &token),
            device_id(id),
            at(0),
        )
        .await
        .expect("the device registers")
        .0
}
