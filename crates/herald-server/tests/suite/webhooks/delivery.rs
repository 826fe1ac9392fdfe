//! Retries after Retry-After with the same webhook id, and who is subscribed to what.

use std::time::Duration;

use herald_testkit::capture::CaptureServer;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn a_503_is_retried_after_retry_after_with_the_same_webhook_id_and_a_fresh_signature() {
    let receiver = CaptureServer::start().await;
    receiver.respond(503, &[("retry-after", "30")]);
    let mut s = Story::new(
        true,
        json!([endpoint("hooks", &receiver.url, ALL_EVENTS)]),
        json!({"delivery": {"retry_base_delay_ms": 10}}),
    )
    .await;
    s.say("Hello").await;
    let notification = s.latest("new_message").await;
    let waiting = s
        .webhook_delivery(&notification, "hooks", |d| {
            d["attempts"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    assert_eq!(waiting["status"], "pending", "{waiting:#}");
    assert_eq!(waiting["attempts"][0]["status"], 503);
    let at = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let next = at(&waiting["next_attempt_at"]);
    assert!(
        next - at(&waiting["attempts"][0]["at"]) >= time::Duration::milliseconds(29_999),
        "Retry-After: 30 is honoured over the 10 ms backoff: {waiting:#}"
    );
    assert_eq!(receiver.captured().len(), 1, "nothing before Retry-After");

    // Let the wall clock reach the next second so the retry's timestamp is visibly renewed.
    let first = receiver.captured().remove(0);
    let first_ts: i64 = first.header("webhook-timestamp").unwrap().parse().unwrap();
    while time::OffsetDateTime::now_utc().unix_timestamp() <= first_ts {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.clock.advance(time::Duration::seconds(31));
    s.hub.state.delivery_wakeup.notify_one();
    let requests = receiver.wait_for(2).await;
    let done = s.finished(&notification, "hooks").await;
    assert_eq!(done["status"], "delivered", "{done:#}");
    assert_eq!(done["attempts"].as_array().unwrap().len(), 2);

    let second = &requests[1];
    assert_eq!(
        first.header("webhook-id"),
        second.header("webhook-id"),
        "the same idempotency key on every attempt"
    );
    assert_eq!(first.body, second.body, "the same event");
    let second_ts: i64 = second.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(second_ts > first_ts, "{first_ts} → {second_ts}");
    assert_ne!(
        first.header("webhook-signature"),
        second.header("webhook-signature"),
        "re-signed"
    );
    assert_eq!(verify(second, &[OLD_SECRET, NEW_SECRET]), ["ok", "ok"]);
    assert_eq!(receiver.captured().len(), 2);
}

#[tokio::test]
async fn reads_and_calls_reach_the_endpoints_subscribed_to_them_and_no_others() {
    let everything = CaptureServer::start().await;
    let messages_only = CaptureServer::start().await;
    let mut s = Story::new(
        true,
        json!([
            endpoint("all", &everything.url, ALL_EVENTS),
            endpoint(
                "messages",
                &messages_only.url,
                &["push_notification.new_message"]
            ),
        ]),
        json!({}),
    )
    .await;
    let position = s.say("Hi").await;
    let shown = s.latest("new_message").await;
    assert_eq!(s.finished(&shown, "all").await["status"], "delivered");
    assert_eq!(s.finished(&shown, "messages").await["status"], "delivered");

    let token = s.hub.token("visitor-1").await;
    let (status, body) = s
        .hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    s.settle().await;
    let read = s.latest("read").await;
    assert_eq!(s.finished(&read, "all").await["status"], "delivered");
    let requests = everything.wait_for(2).await;
    let read_hook = requests[1].json();
    assert_eq!(read_hook["type"], "push_notification.read_message");
    assert_eq!(read_hook["data"]["badge"], 0);
    assert!(
        read_hook["data"].get("body").is_none(),
        "silent: {read_hook}"
    );

    s.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"], "ring_timeout_s": 30})).await;
    let ringing = s.latest("incoming_call").await;
    assert_eq!(s.finished(&ringing, "all").await["status"], "delivered");
    s.post(json!({"event_id": "r2", "conversation_id": "c1", "type": "call.cancelled", "occurred_at": "2026-11-23T10:00:05Z",
        "call_id": "call-1", "by": "agent-7"})).await;
    for kind in ["revoked_call", "missed_call"] {
        let n = s.latest(kind).await;
        assert_eq!(s.finished(&n, "all").await["status"], "delivered", "{kind}");
    }
    let requests = everything.wait_for(5).await;
    let mut types: Vec<String> = requests.iter().map(event_type).collect();
    types[3..].sort();
    assert_eq!(
        types,
        [
            "push_notification.new_message",
            "push_notification.read_message",
            "push_notification.incoming_call",
            "push_notification.missed_call",
            "push_notification.revoked_call",
        ]
    );
    let incoming = requests[2].json();
    assert_eq!(incoming["data"]["call_id"], "call-1");
    for request in &requests {
        assert_eq!(
            verify(request, &[OLD_SECRET]),
            ["ok"],
            "{}",
            event_type(request)
        );
    }
    let ids: std::collections::BTreeSet<&str> = requests
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "one id per event");

    let theirs: Vec<String> = messages_only.captured().iter().map(event_type).collect();
    assert_eq!(
        theirs,
        ["push_notification.new_message"],
        "an endpoint subscribed to new messages gets nothing else"
    );
}
