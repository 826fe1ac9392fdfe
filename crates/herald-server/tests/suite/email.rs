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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use herald_channels::email::{EmailChannel, EmailOptions};
use herald_engine::app::AppConfig;
use herald_engine::delivery::{Channel, DeliveryStatus};
use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, Line, Push, PushKind, Target};
use herald_server::server::DB_FILE;
use herald_store_sqlite::SqliteStore;
use herald_testkit::peers::SmtpPeer;
use herald_testkit::{PATIENCE, TestHub};
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

#[tokio::test]
async fn a_digest_arrives_with_its_envelope_headers_both_bodies_and_escaped_html() {
    let mut peer = SmtpPeer::plain().await;
    let channel = channel();
    let app = app(peer.port, "none", json!({}));
    let d = delivery(digest(), "alice@example.com");

    let outcome = channel.deliver(&d, &app).await;
    let DeliveryOutcome::Delivered { provider_id } = &outcome else {
        panic!("not delivered: {outcome:?}");
    };
    assert_eq!(
        provider_id.as_deref(),
        Some("250 2.0.0 Ok: queued as Q1"),
        "the server's answer is the provider id"
    );

    let mail = peer.next().await;
    assert_eq!(mail["mail_from"], "noreply@herald.test", "{mail}");
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    assert_eq!(mail["tls"], false);
    assert_eq!(str_of(&mail, "/headers/From"), FROM);
    assert_eq!(str_of(&mail, "/headers/To"), "alice@example.com");
    assert_eq!(
        str_of(&mail, "/headers/Subject"),
        "You have 3 unread messages"
    );
    assert_eq!(
        str_of(&mail, "/headers/Message-ID"),
        format!("<herald.{}@herald.test>", d.id)
    );
    assert_eq!(str_of(&mail, "/headers/Auto-Submitted"), "auto-generated");
    assert_eq!(str_of(&mail, "/headers/MIME-Version"), "1.0");
    let date = str_of(&mail, "/headers/Date");
    OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|e| panic!("Date {date:?} is not RFC 5322: {e}"));
    assert!(mail["headers"].get("List-Unsubscribe").is_none());
    assert_eq!(
        mail["parts"],
        json!(["multipart/alternative", "text/plain", "text/html"])
    );

    // The text body: the lines as written, the count, how to read them.
    let text = str_of(&mail, "/text");
    assert!(
        text.contains("There are 3 unread messages in your conversation:"),
        "{text}"
    );
    assert!(
        text.contains("<script>alert('x')</script>: Grüße aus Zürich"),
        "{text}"
    );
    assert!(text.contains("Bob & \"Co\": <b>&\"quotes\"</b>"), "{text}");
    assert!(text.contains("1 earlier messages are not shown."), "{text}");
    assert!(text.contains("Open the app to read and reply."), "{text}");

    // The HTML body: every value escaped; nothing of it became markup.
    let html = str_of(&mail, "/html");
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    assert!(
        html.contains(
            "<strong>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</strong>: Grüße aus Zürich"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<strong>Bob &amp; &quot;Co&quot;</strong>: &lt;b&gt;&amp;&quot;quotes&quot;&lt;/b&gt;"
        ),
        "{html}"
    );
    assert!(html.contains("Open the app to read and reply."), "{html}");
    // On the wire the message is 7-bit: the non-ASCII text travels encoded.
    assert!(!str_of(&mail, "/raw").contains('\u{fffd}'));

    // A retry of the same delivery is the same email to a receiver: same Message-ID.
    let retry = Delivery {
        attempt: 2,
        ..d.clone()
    };
    assert!(matches!(
        channel.deliver(&retry, &app).await,
        DeliveryOutcome::Delivered { .. }
    ));
    let again = peer.next().await;
    assert_eq!(
        again["headers"]["Message-ID"],
        mail["headers"]["Message-ID"]
    );
}

#[tokio::test]
async fn incoming_and_missed_calls_are_emailed_with_the_engines_texts() {
    let mut peer = SmtpPeer::plain().await;
    let channel = channel();
    let app = app(peer.port, "none", json!({}));

    let ringing = Push {
        title: Some("Incoming call".into()),
        body: Some("Ann <Support> is calling".into()),
        call_id: Some("call-1".into()),
        ..push(PushKind::IncomingCall)
    };
    let d = delivery(ringing, "alice@example.com");
    assert!(matches!(
        channel.deliver(&d, &app).await,
        DeliveryOutcome::Delivered { .. }
    ));
    let mail = peer.next().await;
    assert_eq!(str_of(&mail, "/headers/Subject"), "Incoming call");
    assert!(str_of(&mail, "/text").contains("Ann <Support> is calling\n\nOpen the app to answer."));
    assert!(str_of(&mail, "/html").contains("<p>Ann &lt;Support&gt; is calling</p>"));

    let missed = Push {
        title: Some("Missed call".into()),
        body: Some("You missed a call from Ann".into()),
        missed_calls: 2,
        ..push(PushKind::MissedCall)
    };
    let d = delivery(missed, "alice@example.com");
    assert!(matches!(
        channel.deliver(&d, &app).await,
        DeliveryOutcome::Delivered { .. }
    ));
    let mail = peer.next().await;
    assert_eq!(str_of(&mail, "/headers/Subject"), "Missed call");
    let text = str_of(&mail, "/text");
    assert!(text.contains("You missed a call from Ann"), "{text}");
    assert!(text.contains("You have 2 missed calls."), "{text}");
    assert!(text.contains("Open the app to call back."), "{text}");
}

#[tokio::test]
async fn metadata_only_emails_say_how_many_messages_are_unread_without_content() {
    let mut peer = SmtpPeer::plain().await;
    let channel = channel();
    let app = metadata_only(app(peer.port, "none", json!({})));
    // Even if a push carried text, a metadata-only app's email shows none of it.
    let leaky = Push {
        title: Some("secret title".into()),
        ..digest()
    };
    let d = delivery(leaky, "alice@example.com");
    assert!(matches!(
        channel.deliver(&d, &app).await,
        DeliveryOutcome::Delivered { .. }
    ));
    let mail = peer.next().await;
    assert_eq!(
        str_of(&mail, "/headers/Subject"),
        "You have 3 unread messages"
    );
    for body in [str_of(&mail, "/text"), str_of(&mail, "/html")] {
        assert!(
            body.contains("There are 3 unread messages in your conversation."),
            "{body}"
        );
        for secret in ["secret", "Zürich", "quotes", "script", "Bob"] {
            assert!(!body.contains(secret), "{secret:?} leaked: {body}");
        }
    }
}

#[tokio::test]
async fn reads_revoked_calls_and_single_new_messages_are_never_emailed() {
    let mut peer = SmtpPeer::plain().await;
    let channel = channel();
    let app = app(peer.port, "none", json!({}));
    for kind in [PushKind::Read, PushKind::RevokedCall, PushKind::NewMessage] {
        let d = delivery(push(kind), "alice@example.com");
        let outcome = channel.deliver(&d, &app).await;
        assert_eq!(
            permanent_reason(&outcome),
            format!("{} pushes are never emailed", kind.as_str())
        );
    }
    peer.nothing_more().await;

    // Other targets and apps without an smtp section are refused the same way.
    let mut not_email = delivery(digest(), "alice@example.com");
    not_email.target = Target::Webhook {
        endpoint_id: "w1".into(),
        devices: vec![],
    };
    assert_eq!(
        permanent_reason(&channel.deliver(&not_email, &app).await),
        "the email channel only carries email targets"
    );
    let d = delivery(digest(), "alice@example.com");
    assert_eq!(
        permanent_reason(&channel.deliver(&d, &AppConfig::default()).await),
        "the app has no smtp section"
    );
    assert_eq!(
        permanent_reason(
            &channel
                .deliver(&delivery(digest(), "not-an-address"), &app)
                .await
        ),
        "the target is not a valid email address"
    );
    peer.nothing_more().await;
}

#[tokio::test]
async fn starttls_required_against_a_server_without_it_fails_permanently_and_sends_nothing() {
    let mut peer = SmtpPeer::plain().await;
    let channel = channel();
    let app = app(peer.port, "starttls", json!({}));
    let outcome = channel
        .deliver(&delivery(digest(), "alice@example.com"), &app)
        .await;
    assert_eq!(
        permanent_reason(&outcome),
        "the SMTP server does not offer STARTTLS, which smtp.security = \"starttls\" requires"
    );
    peer.nothing_more().await;
}

#[tokio::test]
async fn starttls_with_auth_sends_over_tls_and_a_wrong_password_is_permanent() {
    let mut peer = SmtpPeer::start(json!({
        "security": "starttls",
        "users": {"herald": "s3cret"},
    }))
    .await;
    let channel = trusting_channel(&peer);
    let good = app(
        peer.port,
        "starttls",
        json!({"username": "herald", "password": "s3cret"}),
    );
    let outcome = channel
        .deliver(&delivery(digest(), "alice@example.com"), &good)
        .await;
    assert!(
        matches!(outcome, DeliveryOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let mail = peer.next().await;
    assert_eq!(mail["tls"], true, "STARTTLS was used: {mail}");
    assert_eq!(mail["login"], json!(["herald", "s3cret"]));
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));

    let bad = app(
        peer.port,
        "starttls",
        json!({"username": "herald", "password": "wrong"}),
    );
    let outcome = channel
        .deliver(&delivery(digest(), "alice@example.com"), &bad)
        .await;
    let DeliveryOutcome::Permanent { reason, status } = &outcome else {
        panic!("expected a permanent failure: {outcome:?}");
    };
    assert_eq!(*status, Some(535), "{reason}");
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(
        !reason.contains("wrong"),
        "the password never shows: {reason}"
    );

    // Without credentials the server requires AUTH: 530, permanent.
    let anonymous = app(peer.port, "starttls", json!({}));
    let outcome = channel
        .deliver(&delivery(digest(), "alice@example.com"), &anonymous)
        .await;
    assert!(
        matches!(
            outcome,
            DeliveryOutcome::Permanent {
                status: Some(530),
                ..
            }
        ),
        "{outcome:?}"
    );
    peer.nothing_more().await;
}

#[tokio::test]
async fn implicit_tls_sends_and_an_untrusted_certificate_is_refused() {
    let mut peer = SmtpPeer::start(json!({"security": "tls"})).await;
    let app = app(peer.port, "tls", json!({}));
    let outcome = trusting_channel(&peer)
        .deliver(&delivery(digest(), "alice@example.com"), &app)
        .await;
    assert!(
        matches!(outcome, DeliveryOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    let mail = peer.next().await;
    assert_eq!(mail["tls"], true, "{mail}");

    // The webpki roots alone do not trust the peer's self-signed certificate.
    let outcome = channel()
        .deliver(&delivery(digest(), "alice@example.com"), &app)
        .await;
    assert!(
        permanent_reason(&outcome).contains("certificate was refused"),
        "{outcome:?}"
    );
    peer.nothing_more().await;
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = app(port, "none", json!({}));
    let outcome = channel()
        .deliver(&delivery(digest(), "alice@example.com"), &app)
        .await;
    let DeliveryOutcome::Retryable { reason, status, .. } = &outcome else {
        panic!("expected a retryable failure: {outcome:?}");
    };
    assert_eq!(*status, None, "a transport failure has no status");
    assert!(reason.contains("connection failed"), "{reason}");
    assert_eq!(
        channel().endpoint_key(&delivery(digest(), "a@b.c"), &app),
        format!("smtp:127.0.0.1:{port}")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_retryable() {
    // Accepts connections and says nothing: no greeting ever comes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let channel = EmailChannel::new(EmailOptions {
        send_timeout: StdDuration::from_millis(300),
        ..options()
    });
    let app = app(port, "none", json!({}));
    let started = tokio::time::Instant::now();
    let outcome = channel
        .deliver(&delivery(digest(), "alice@example.com"), &app)
        .await;
    assert_eq!(
        outcome,
        DeliveryOutcome::Retryable {
            after_ms: None,
            reason: "SMTP: timed out".into(),
            status: None,
        }
    );
    assert!(
        started.elapsed() < PATIENCE,
        "the send timeout bounds the attempt"
    );
    silent.abort();
}

#[tokio::test]
async fn smtp_replies_are_classified_and_addresses_in_them_are_masked() {
    let mut peer = SmtpPeer::start(json!({
        "security": "none",
        "rcpt_replies": {
            "nobody@": "550 5.1.1 <nobody@example.com>: Recipient address rejected: no such user",
            "busy@": "451 4.3.0 Mailbox busy, try again later",
            "closing@": "421 4.3.2 Service shutting down",
        },
    }))
    .await;
    let channel = channel();
    let app = app(peer.port, "none", json!({}));

    let outcome = channel
        .deliver(&delivery(digest(), "nobody@example.com"), &app)
        .await;
    let DeliveryOutcome::Permanent { reason, status } = &outcome else {
        panic!("a 550 is permanent: {outcome:?}");
    };
    assert_eq!(*status, Some(550));
    assert!(reason.contains("550"), "{reason}");
    assert!(reason.contains("no such user"), "{reason}");
    assert!(reason.contains("n***@example.com"), "{reason}");
    assert!(
        !reason.contains("nobody@"),
        "the address is masked: {reason}"
    );

    let outcome = channel
        .deliver(&delivery(digest(), "busy@example.com"), &app)
        .await;
    assert!(
        matches!(
            &outcome,
            DeliveryOutcome::Retryable { status: Some(451), reason, .. } if reason.contains("Mailbox busy")
        ),
        "a 451 is retryable: {outcome:?}"
    );

    let outcome = channel
        .deliver(&delivery(digest(), "closing@example.com"), &app)
        .await;
    assert!(
        matches!(
            &outcome,
            DeliveryOutcome::Retryable { status: None, reason, .. } if reason.contains("421")
        ),
        "a 421 is retryable and counts like a connection failure: {outcome:?}"
    );

    // The pool recovers: the next email goes through.
    let outcome = channel
        .deliver(&delivery(digest(), "alice@example.com"), &app)
        .await;
    assert!(
        matches!(outcome, DeliveryOutcome::Delivered { .. }),
        "{outcome:?}"
    );
    assert_eq!(peer.next().await["rcpt_tos"], json!(["alice@example.com"]));
    peer.nothing_more().await;
}

#[tokio::test]
async fn the_delivery_core_carries_an_email_delivery_through_the_builtin_channel() {
    let mut peer = SmtpPeer::plain().await;
    let hub = TestHub::builder()
        .configure(|c| c.delivery.poll_ms = 50)
        .start()
        .await;
    let (status, body) = hub
        .put(
            "/v1/apps/chat",
            &hub.key,
            json!({"smtp": {"host": "127.0.0.1", "port": peer.port, "security": "none", "from": FROM}}),
        )
        .await;
    assert!(status.is_success(), "app refused: {body}");

    // Enqueued straight into the queue through a second store on the hub's database file, as
    // `delivery_core.rs` in this suite does.
    let store = SqliteStore::open(&hub.data_dir().join(DB_FILE)).expect("the store opens");
    let d = delivery(digest(), "alice@example.com");
    store
        .enqueue_deliveries(vec![d.clone()], OffsetDateTime::now_utc())
        .await
        .expect("enqueued");
    hub.state.delivery_wakeup.notify_one();

    let mail = peer.next().await;
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    assert_eq!(
        str_of(&mail, "/headers/Message-ID"),
        format!("<herald.{}@herald.test>", d.id)
    );

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let view = loop {
        let views = hub
            .state
            .queue
            .deliveries_of(&d.tenant_id, &d.notification_id)
            .await
            .expect("deliveries read");
        let view = views
            .into_iter()
            .find(|v| v.id == d.id)
            .expect("the delivery is stored");
        if view.status != DeliveryStatus::Pending {
            break view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {view:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    assert_eq!(view.status, DeliveryStatus::Delivered, "{view:?}");
    assert_eq!(view.channel, "email");
    assert_eq!(view.attempts.len(), 1, "{view:?}");
    peer.nothing_more().await;
}
