//! Files: `hub.rs` (end to end through a hub), and the channel on its own: `reasons.rs`,
//! `provider_token.rs`, `payload.rs`, `connection.rs` (streams, a dead or stalled upstream,
//! GOAWAY, TLS); `cli.rs` (`herald push test`). This file holds the app and deliveries they share.
//!
//! The APNs channel against a protocol-faithful fake APNs (`herald_testkit::fake_apns`): end
//! to end through a hub (headers, payloads, badges, background reads, VoIP calls, dead tokens),
//! and the channel on its own (every reason, the provider token's rules, payload fitting, the
//! stream limit, a crashed and restarted upstream, GOAWAY, TLS), the token checked by PyJWT,
//! and `herald push test`.

mod cli;
mod connection;
mod hub;
mod payload;
mod provider_token;
mod reasons;

use std::sync::Arc;

use herald_channels::apns::{ApnsChannel, ApnsOptions};
use herald_engine::app::AppConfig;
use herald_engine::clock::{Clock, SystemClock};
use herald_engine::device::{Device, DeviceChannel, Platform};
use herald_engine::ids::{AppId, ConversationId, DeviceId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use herald_testkit::fake_apns::{KEY_ID, TEAM_ID};
use herald_testkit::keys::EC_PRIVATE_PEM;
use serde_json::{Value, json};
use time::OffsetDateTime;

const TOPIC: &str = "com.example.chat";

fn app_document(base_url: &str) -> Value {
    json!({
        "rules": {"grace_delay_ms": 0},
        "apns": {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": EC_PRIVATE_PEM,
                 "topic": TOPIC, "base_url": base_url}
    })
}

fn app(base_url: &str) -> AppConfig {
    serde_json::from_value(app_document(base_url)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The channel on its own (reasons.rs, provider_token.rs, payload.rs, connection.rs).

fn device(token: &str, channel: DeviceChannel, registered: OffsetDateTime) -> Device {
    Device {
        id: DeviceId::parse(format!("dev-{token}")).unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        user_id: UserId::parse("visitor-1").unwrap(),
        channel,
        token: token.to_string(),
        subscription: None,
        platform: Platform::Ios,
        locale: None,
        installation_id: None,
        created_at: registered,
        updated_at: registered,
    }
}

fn delivery(id: &str, device: Device, kind: PushKind, body: &str, now: OffsetDateTime) -> Delivery {
    let tenant = TenantId::parse("default").unwrap();
    Delivery {
        id: id.to_string(),
        notification_id: format!("ntf-{id}"),
        tenant_id: tenant.clone(),
        app_id: device.app_id.clone(),
        channel: device.channel.as_str().to_string(),
        push: Push {
            kind,
            tenant_id: tenant,
            app_id: device.app_id.clone(),
            user_id: device.user_id.clone(),
            conversation_id: Some(ConversationId::parse("c1").unwrap()),
            position: Some(1),
            event_id: None,
            event_at: None,
            title: (!kind.is_silent()).then(|| "New message from Ann".to_string()),
            body: (!kind.is_silent()).then(|| body.to_string()),
            lines: vec![],
            sender: None,
            message_count: 1,
            unread: 1,
            badge: 1,
            call_id: None,
            missed_calls: 0,
            collapse_key: "conv:c1".into(),
            high_priority: !kind.is_silent(),
            data: Default::default(),
            created_at: now,
            expires_at: now + time::Duration::hours(1),
            gateway: None,
            gms: None,
        },
        target: Target::Device { device },
        attempt: 1,
    }
}

/// A message delivery to an alert token registered a day ago.
fn message(id: &str, token: &str) -> Delivery {
    let now = OffsetDateTime::now_utc();
    delivery(
        id,
        device(token, DeviceChannel::Apns, now - time::Duration::days(1)),
        PushKind::NewMessage,
        "Hello",
        now,
    )
}

fn channel_with(clock: Arc<dyn Clock>, options: ApnsOptions) -> Arc<ApnsChannel> {
    Arc::new(ApnsChannel::new(clock, options))
}

fn channel() -> Arc<ApnsChannel> {
    channel_with(Arc::new(SystemClock), ApnsOptions::default())
}

fn delivered(outcome: &DeliveryOutcome) -> bool {
    matches!(outcome, DeliveryOutcome::Delivered { .. })
}
