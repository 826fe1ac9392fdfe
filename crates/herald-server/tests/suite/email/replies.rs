//! SMTP replies classified, with the addresses in them masked.

use herald_engine::delivery::Channel;
use herald_engine::push::DeliveryOutcome;
use herald_testkit::peers::SmtpPeer;
use serde_json::json;

use super::*;

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
