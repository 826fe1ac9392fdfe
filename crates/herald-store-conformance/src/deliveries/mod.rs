//! Files: `claims.rs` (claims under a lease, and deliveries whose device changed), `settlements.rs`
//! (settlements and the attempt history), `targets.rs` (invalid targets), `history.rs` (when the
//! next is due, the view per notification, tenants). This file holds the builders they share.
//!
//! The delivery queue (`DeliveryQueue`): claims under a lease, settlements, the attempt history,
//! invalid targets, and the queue's view per notification. Each case takes a
//! [`DeliveryFixture`]: the store, its queue, and the backend's way to enqueue.

mod claims;
mod history;
mod settlements;
mod targets;

pub use claims::*;
pub use history::*;
pub use settlements::*;
pub use targets::*;

use std::sync::Arc;

use herald_engine::delivery::{Attempt, DeliveryQueue, DeliveryView, Settlement};
use herald_engine::device::{Device, DeviceChannel};
use herald_engine::ids::TenantId;
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use time::{Duration, OffsetDateTime};

use crate::DeliveryFixture;
use crate::support::{app_id, at, device_id, from_installation, registration, user};

fn push(t: &TenantId) -> Push {
    Push {
        kind: PushKind::NewMessage,
        tenant_id: t.clone(),
        app_id: app_id("mobile"),
        user_id: user("u1"),
        conversation_id: Some(crate::support::conversation("c1")),
        position: Some(3),
        event_id: None,
        event_at: None,
        title: Some("Ann".into()),
        body: Some("hello".into()),
        lines: vec![],
        sender: None,
        message_count: 1,
        unread: 1,
        badge: 4,
        call_id: None,
        missed_calls: 0,
        collapse_key: "c1".into(),
        high_priority: true,
        data: Default::default(),
        created_at: at(0),
        expires_at: at(3_600),
        gateway: None,
        gms: None,
    }
}

fn delivery(t: &TenantId, id: &str, notification: &str, target: Target) -> Delivery {
    let channel = match &target {
        Target::Device { device } => device.channel.as_str().to_string(),
        Target::Webhook { .. } => "webhook".to_string(),
        Target::Email { .. } => "email".to_string(),
    };
    Delivery {
        id: id.into(),
        notification_id: notification.into(),
        tenant_id: t.clone(),
        app_id: app_id("mobile"),
        channel,
        target,
        push: push(t),
        attempt: 1,
    }
}

pub(crate) fn webhook(t: &TenantId, id: &str, notification: &str) -> Delivery {
    delivery(
        t,
        id,
        notification,
        Target::Webhook {
            endpoint_id: "hook-1".into(),
            devices: vec![],
        },
    )
}

fn to_device(t: &TenantId, id: &str, notification: &str, device: &Device) -> Delivery {
    delivery(
        t,
        id,
        notification,
        Target::Device {
            device: device.clone(),
        },
    )
}

async fn device(fx: &dyn DeliveryFixture, t: &TenantId, id: &str, token: &str) -> Device {
    let r = from_installation(
        registration("mobile", "u1", DeviceChannel::Fcm, token),
        &format!("inst-{id}"),
    );
    fx.store()
        .register_device(t, &r, device_id(id), at(0))
        .await
        .expect("the device registers")
        .0
}

async fn enqueue(fx: &dyn DeliveryFixture, deliveries: Vec<Delivery>, now: OffsetDateTime) {
    fx.enqueue_deliveries(deliveries, now)
        .await
        .expect("the deliveries are enqueued");
}

async fn claim(q: &Arc<dyn DeliveryQueue>, now: OffsetDateTime, limit: usize) -> Vec<Delivery> {
    q.claim_deliveries(now, Duration::seconds(60), limit)
        .await
        .expect("the claim runs")
}

fn ids(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.id.as_str()).collect()
}

async fn settle(q: &Arc<dyn DeliveryQueue>, t: &TenantId, id: &str, s: Settlement, now: i64) {
    q.settle_delivery(t, id, s, at(now))
        .await
        .expect("the settlement runs");
}

async fn views(q: &Arc<dyn DeliveryQueue>, t: &TenantId, notification: &str) -> Vec<DeliveryView> {
    q.deliveries_of(t, notification)
        .await
        .expect("deliveries read")
}

async fn view(q: &Arc<dyn DeliveryQueue>, t: &TenantId, notification: &str) -> DeliveryView {
    let mut all = views(q, t, notification).await;
    assert_eq!(all.len(), 1, "one delivery: {all:?}");
    all.remove(0)
}

fn attempt(at_s: i64, outcome: DeliveryOutcome) -> Attempt {
    Attempt {
        at: at(at_s),
        duration_ms: 12,
        outcome,
    }
}

fn delivered(at_s: i64) -> Attempt {
    attempt(
        at_s,
        DeliveryOutcome::Delivered {
            provider_id: Some("p-1".into()),
        },
    )
}

fn unavailable(at_s: i64) -> Attempt {
    attempt(
        at_s,
        DeliveryOutcome::Retryable {
            after_ms: Some(2_000),
            reason: "503 from the provider".into(),
            status: Some(503),
        },
    )
}

fn gone(at_s: i64) -> Attempt {
    attempt(
        at_s,
        DeliveryOutcome::InvalidTarget {
            reason: "the token is unregistered".into(),
        },
    )
}
