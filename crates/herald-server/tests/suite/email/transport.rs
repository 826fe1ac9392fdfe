//! The SMTP transport: STARTTLS, AUTH, implicit TLS, unreachable and silent servers.

use std::time::Duration as StdDuration;

use herald_channels::email::{EmailChannel, EmailOptions};
use herald_engine::delivery::Channel;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::PATIENCE;
use herald_testkit::peers::SmtpPeer;
use serde_json::json;

use super::*;

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
