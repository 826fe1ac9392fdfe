//! Idempotency: repeated and conflicting events.

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::table::*;
use super::*;

#[tokio::test]
async fn a_repeated_event_is_acknowledged_and_a_conflicting_one_changes_nothing() {
    let hub = TestHub::start().await;
    let original = message("e1", "c1", "the original text");
    let first = hub.events(original.clone()).await;
    assert_eq!(first["position"], 1, "{first}");
    assert_eq!(first["duplicate"], false, "{first}");

    // The same event again: the original result, nothing new.
    let again = hub.events(original.clone()).await;
    assert_eq!(again["position"], 1, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    // Key order and whitespace do not make it a different event.
    let reordered = r#"{"text":"the original text","type":"message.created","sender":{"role":"agent","name":"Ann","id":"agent-1"},
        "occurred_at":"2026-11-23T10:00:00Z","conversation_id":"c1","event_id":"e1"}"#;
    let (status, body) = hub
        .call_raw(
            Method::POST,
            "/v1/events",
            Some(&hub.key),
            "application/json",
            reordered.into(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["duplicate"], true, "{body}");

    // The same event_id with a different body: 409, nothing stored.
    let changed = set(original.clone(), "text", json!("a rewritten text"));
    let conflict = problem(
        &hub,
        Method::POST,
        "/v1/events",
        Some(&hub.key),
        Some(changed.clone()),
        409,
    )
    .await;
    assert_eq!(conflict["code"], "event_conflict", "{conflict}");
    assert_eq!(conflict["errors"][0]["path"], "event_id", "{conflict}");
    assert!(
        !conflict.to_string().contains("rewritten"),
        "the problem does not echo the text: {conflict}"
    );
    // Reused in another conversation: also a conflict.
    let elsewhere = problem(
        &hub,
        Method::POST,
        "/v1/events",
        Some(&hub.key),
        Some(set(original.clone(), "conversation_id", json!("c2"))),
        409,
    )
    .await;
    assert_eq!(elsewhere["code"], "event_conflict", "{elsewhere}");
    // In a batch, the conflict names its event, and the batch's new event is not stored either.
    let batch = json!([message("e2", "c1", "a new message"), changed]);
    let in_batch = problem(
        &hub,
        Method::POST,
        "/v1/events",
        Some(&hub.key),
        Some(batch),
        409,
    )
    .await;
    assert_eq!(in_batch["code"], "event_conflict", "{in_batch}");
    assert_eq!(
        in_batch["errors"][0]["path"], "events[1].event_id",
        "{in_batch}"
    );

    assert_eq!(last_position(&hub, "c1").await, Some(1));
    assert_eq!(last_position(&hub, "c2").await, None);
    let events = transcript(&hub, "c1").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["text"], "the original text");
    assert_eq!(events[0]["event_id"], "e1");
    let (_, unread) = hub.get("/v1/users/alice/unread", &hub.key).await;
    assert_eq!(unread["total"], 0, "{unread}");
    // e2 was never stored: it is new now.
    let e2 = hub.events(message("e2", "c1", "a new message")).await;
    assert_eq!(e2["position"], 2, "{e2}");
    assert_eq!(e2["duplicate"], false, "{e2}");
}
