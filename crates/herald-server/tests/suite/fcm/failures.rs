//! Through a hub: dead tokens removed, other errors keep the device, Retry-After honoured.

use std::time::Duration;

use herald_engine::clock::Clock;
use herald_testkit::fake_fcm::Reply;
use serde_json::Value;
use time::OffsetDateTime;

use super::*;

#[tokio::test]
async fn unregistered_and_invalid_tokens_remove_the_device_after_the_first_attempt_and_it_is_never_tried_again()
 {
    let s = story().await;
    s.register("tok-dead", "android").await;
    s.register("tok-malformed", "android").await;
    s.fake.script("tok-dead", vec![Reply::Unregistered]);
    s.fake.script("tok-malformed", vec![Reply::InvalidToken]);
    s.say("m1", "c1", "one").await;
    let sent = s.fake.wait_for(2).await;
    for message in &sent {
        let d = s.delivery_reaches(message, "invalid_target", 1).await;
        let reason = d["attempts"][0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("UNREGISTERED") || reason.contains("registration token"),
            "{reason}"
        );
        assert!(!reason.contains(&message.token), "no token in the reason");
    }
    s.devices_become(0).await;
    s.clock.advance(time::Duration::seconds(10));
    s.say("m2", "c1", "two").await;
    s.hub.settle_engine(s.clock.now()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.fake.messages().len(), 2, "never tried again");
}

#[tokio::test]
async fn invalid_argument_about_the_message_and_third_party_auth_errors_keep_the_device() {
    let s = story().await;
    s.register("tok-kept-1", "android").await;
    s.register("tok-kept-2", "ios").await;
    s.fake.script(
        "tok-kept-1",
        vec![Reply::InvalidArgument(
            "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)"
                .into(),
        )],
    );
    s.fake
        .script("tok-kept-2", vec![Reply::ThirdPartyAuthError]);
    s.say("m1", "c1", "one").await;
    for message in s.fake.wait_for(2).await {
        let d = s.delivery_reaches(&message, "failed", 1).await;
        let reason = d["attempts"][0]["reason"].as_str().unwrap();
        match message.token.as_str() {
            "tok-kept-1" => assert!(reason.contains("INVALID_ARGUMENT"), "{reason}"),
            _ => assert!(reason.contains("THIRD_PARTY_AUTH_ERROR"), "{reason}"),
        }
        assert_eq!(d["attempts"][0]["outcome"], "permanent", "{d}");
    }
    assert_eq!(s.devices().await.len(), 2, "both kept");
    s.clock.advance(time::Duration::seconds(10));
    s.say("m2", "c1", "two").await;
    let again = s.fake.wait_for(4).await;
    assert!(again[2..].iter().all(|m| m.status == 200));
}

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        v.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_no_earlier_than_asked() {
    let s = story().await;
    s.register("tok-busy", "android").await;
    s.register("tok-limited", "android").await;
    s.fake.script(
        "tok-busy",
        vec![Reply::QuotaExceeded {
            retry_after_s: Some(120),
        }],
    );
    // A 429 RESOURCE_EXHAUSTED without an FcmError and without Retry-After: a minute.
    s.fake.script(
        "tok-limited",
        vec![Reply::RateLimited {
            retry_after_s: None,
        }],
    );
    s.say("m1", "c1", "one").await;
    let first = s.fake.wait_for(2).await;
    let mut waits = vec![];
    for message in &first {
        let waiting = s.delivery_reaches(message, "pending", 1).await;
        assert_eq!(waiting["attempts"][0]["status"], 429, "{waiting:#}");
        let wait = at(&waiting["next_attempt_at"]) - at(&waiting["attempts"][0]["at"]);
        waits.push((message.token.clone(), wait));
    }
    for (token, wait) in waits {
        let asked = if token == "tok-busy" { 120 } else { 60 };
        assert!(
            wait >= time::Duration::seconds(asked) - time::Duration::milliseconds(1),
            "{token}: retried after {wait}, asked {asked} s"
        );
    }
    s.clock.advance(time::Duration::seconds(59));
    s.hub.state.delivery.wake();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.fake.messages().len(), 2, "nothing before Retry-After");
    s.clock.advance(time::Duration::seconds(2));
    s.hub.state.delivery.wake();
    let limited = s.fake.wait_for(3).await.remove(2);
    assert_eq!(
        (limited.token.as_str(), limited.status),
        ("tok-limited", 200)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.fake.messages().len(), 3, "tok-busy waits for its 120 s");
    s.clock.advance(time::Duration::seconds(60));
    s.hub.state.delivery.wake();
    let busy = s.fake.wait_for(4).await.remove(3);
    assert_eq!((busy.token.as_str(), busy.status), ("tok-busy", 200));
    s.delivery_reaches(&busy, "delivered", 2).await;
}
