//! Files: `content.rs` (what is emailed and how it reads), `transport.rs` (STARTTLS, AUTH,
//! implicit TLS, unreachable and silent servers), `replies.rs` (SMTP replies classified),
//! `through_server.rs` (the delivery core). This file holds the channel, apps and pushes they share.
//!
//! The email channel against a real SMTP server: PyPI `aiosmtpd` (an independent
//! implementation), started by each test on 127.0.0.1 in plain, STARTTLS or implicit-TLS mode,
//! with AUTH when asked, and scripted RCPT answers. Python's own `email` package parses what it
//! receives, and the peer hands each message back as one JSON line: envelope, headers, MIME
//! parts and both decoded bodies.
//!
//! The channel is driven directly with email deliveries (digests, calls, kinds that are never
//! emailed, failures), and once through a real server's delivery core. The engine-side stories
//! (a digest after `email_delay_ms`, cancelled by a read) are in the notification tests.
//!
//! `scripts/test` installs `aiosmtpd` (and `cryptography`, for the peer's self-signed
//! certificate) into the test venv; without them these tests fail, they never skip.

mod content;
mod replies;
mod through_server;
mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use herald_channels::email::{EmailChannel, EmailOptions};
use herald_engine::app::AppConfig;
use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, Line, Push, PushKind, Target};
use herald_testkit::peers::SmtpPeer;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const FROM: &str = "Herald <noreply@herald.test>";

/// A channel that trusts the peer's self-signed certificate.
fn trusting_channel(peer: &SmtpPeer) -> EmailChannel {
    EmailChannel::new(EmailOptions {
        trusted_roots_pem: vec![peer.cert_pem.clone().expect("a TLS peer").into_bytes()],
        ..options()
    })
}

fn options() -> EmailOptions {
    EmailOptions {
        connect_timeout: StdDuration::from_secs(5),
        send_timeout: StdDuration::from_secs(5),
        ..EmailOptions::default()
    }
}

fn channel() -> EmailChannel {
    EmailChannel::new(options())
}

/// An app whose `smtp` section points at `port`, with `extra` merged into the section.
fn app(port: u16, security: &str, extra: Value) -> AppConfig {
    let mut smtp = json!({
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "from": FROM,
    });
    for (k, v) in extra.as_object().expect("an object") {
        smtp[k] = v.clone();
    }
    serde_json::from_value(json!({ "smtp": smtp })).expect("a valid app")
}

fn metadata_only(mut app: AppConfig) -> AppConfig {
    app.content.mode = herald_engine::app::ContentMode::MetadataOnly;
    app
}

static NEXT: AtomicU64 = AtomicU64::new(1);

fn push(kind: PushKind) -> Push {
    let now = OffsetDateTime::now_utc();
    Push {
        kind,
        tenant_id: TenantId::parse("default").unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        user_id: UserId::parse("alice").unwrap(),
        conversation_id: Some(ConversationId::parse("c1").unwrap()),
        position: Some(7),
        event_id: None,
        event_at: None,
        title: None,
        body: None,
        lines: vec![],
        sender: None,
        message_count: 0,
        unread: 0,
        badge: 0,
        call_id: None,
        missed_calls: 0,
        collapse_key: "conv:c1".into(),
        high_priority: false,
        data: Default::default(),
        created_at: now,
        expires_at: now + Duration::hours(1),
        gateway: None,
        gms: None,
    }
}

fn delivery(push: Push, address: &str) -> Delivery {
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    Delivery {
        id: format!("dlv_email{k}"),
        notification_id: format!("n-email{k}"),
        tenant_id: push.tenant_id.clone(),
        app_id: push.app_id.clone(),
        channel: "email".into(),
        target: Target::Email {
            address: address.into(),
        },
        push,
        attempt: 1,
    }
}

/// A digest of two unread messages whose sender and text need escaping in HTML.
fn digest() -> Push {
    Push {
        message_count: 3,
        unread: 3,
        lines: vec![
            Line {
                sender_name: Some("<script>alert('x')</script>".into()),
                text: "Grüße aus Zürich".into(),
            },
            Line {
                sender_name: Some("Bob & \"Co\"".into()),
                text: "<b>&\"quotes\"</b>".into(),
            },
        ],
        ..push(PushKind::Digest)
    }
}

fn str_of<'a>(record: &'a Value, pointer: &str) -> &'a str {
    record
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {record}"))
}

fn permanent_reason(outcome: &DeliveryOutcome) -> &str {
    match outcome {
        DeliveryOutcome::Permanent { reason, .. } => reason,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}
