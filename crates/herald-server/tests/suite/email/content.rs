//! What is emailed and how it reads: digests, calls, metadata only, and kinds never emailed.

use herald_engine::app::AppConfig;
use herald_engine::delivery::Channel;
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use herald_testkit::peers::SmtpPeer;
use serde_json::json;
use time::OffsetDateTime;

use super::*;

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
