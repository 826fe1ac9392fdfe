//! `POST /v1/events` and the transcript: idempotency, conflicts, gap-free positions, durability.

use std::sync::Arc;

use herald_testkit::TestHub;
use serde_json::{Value, json};

fn message(id: &str, conversation: &str, text: &str) -> Value {
    json!({
        "event_id": id, "conversation_id": conversation, "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "agent-7", "role": "agent"}, "text": text
    })
}

async fn transcript(hub: &TestHub, conversation: &str) -> Vec<Value> {
    let (status, page) = hub
        .get(
            &format!("/v1/conversations/{conversation}/events?after=0"),
            &hub.key,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_single_event_gets_position_one_and_a_batch_gets_the_next_positions_in_order() {
    let hub = TestHub::start().await;
    let one = hub.events(message("e1", "c1", "hi")).await;
    assert_eq!(
        one,
        json!({"event_id": "e1", "conversation_id": "c1", "position": 1, "duplicate": false})
    );
    let batch = hub
        .events(json!({"events": [message("e2", "c1", "a"), message("e3", "c1", "b")]}))
        .await;
    let positions: Vec<u64> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [2, 3]);
}

#[tokio::test]
async fn a_repeated_event_id_returns_the_original_position_and_changes_nothing() {
    let hub = TestHub::start().await;
    hub.events(message("e1", "c1", "hello")).await;
    hub.events(message("e2", "c1", "again")).await;
    let repeat = hub.events(message("e1", "c1", "hello")).await;
    assert_eq!(
        repeat,
        json!({"event_id": "e1", "conversation_id": "c1", "position": 1, "duplicate": true})
    );
    assert_eq!(transcript(&hub, "c1").await.len(), 2);
    let (_, view) = hub.get("/v1/users/agent-7/unread", &hub.key).await;
    assert_eq!(
        view["total"], 0,
        "the sender's own messages are never unread"
    );
}

#[tokio::test]
async fn the_same_event_id_with_a_different_body_is_a_409_and_changes_nothing() {
    let hub = TestHub::start().await;
    hub.events(message("e1", "c1", "original")).await;
    let (status, problem) = hub
        .post(
            "/v1/events",
            &hub.key,
            json!([message("e9", "c1", "new"), message("e1", "c1", "edited")]),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "event_conflict");
    assert_eq!(problem["errors"][0]["path"], "events[1].event_id");
    let events = transcript(&hub, "c1").await;
    assert_eq!(events.len(), 1, "the whole batch was refused");
    assert_eq!(events[0]["text"], "original");
}

#[tokio::test]
async fn positions_stay_gap_free_under_concurrent_writers() {
    let hub = Arc::new(TestHub::start().await);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut positions = vec![];
                for i in 0..25 {
                    let r = hub.events(message(&format!("w{w}-{i}"), "busy", "x")).await;
                    positions.push(r["position"].as_u64().unwrap());
                }
                positions
            })
        })
        .collect();
    let mut all = vec![];
    for w in writers {
        all.extend(w.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<u64>>());
}

#[tokio::test]
async fn an_acknowledged_event_survives_a_restart() {
    let hub = TestHub::start().await;
    hub.events(message("e1", "c1", "kept")).await;
    let hub = hub.restart().await;
    let events = transcript(&hub, "c1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["text"], "kept");
    assert_eq!(
        hub.events(message("e1", "c1", "kept")).await["duplicate"],
        true,
        "idempotency survives too"
    );
}

#[tokio::test]
async fn the_transcript_pages_with_after_and_limit() {
    let hub = TestHub::start().await;
    let batch: Vec<Value> = (1..=7)
        .map(|i| message(&format!("e{i}"), "c1", &format!("m{i}")))
        .collect();
    hub.events(json!(batch)).await;
    let (_, page) = hub
        .get("/v1/conversations/c1/events?after=2&limit=3", &hub.key)
        .await;
    let positions: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [3, 4, 5]);
    assert_eq!(page["next_after"], 5);
    let (_, last) = hub
        .get("/v1/conversations/c1/events?after=5&limit=3", &hub.key)
        .await;
    assert_eq!(last["events"].as_array().unwrap().len(), 2);
    assert!(last.get("next_after").is_none());
}

#[tokio::test]
async fn participants_join_and_leave_through_the_api_and_the_transcript_records_it() {
    let hub = TestHub::start().await;
    let path = "/v1/conversations/c1/participants/visitor-1";
    let (_, joined) = hub
        .put(path, &hub.key, json!({"role": "visitor", "name": "Vic"}))
        .await;
    assert_eq!(joined["changed"], true);
    let (_, again) = hub
        .put(path, &hub.key, json!({"role": "visitor", "name": "Vic"}))
        .await;
    assert_eq!(
        again["changed"], false,
        "an unchanged membership appends nothing"
    );
    hub.events(message("e1", "c1", "hello")).await;
    let (_, conversation) = hub.get("/v1/conversations/c1", &hub.key).await;
    let members: Vec<&str> = conversation["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        ["agent-7", "visitor-1"],
        "the sender joined by writing"
    );
    assert_eq!(conversation["participants"][1]["unread"], 1);
    let (status, _) = hub.delete(path, &hub.key).await;
    assert_eq!(status, 200);
    let types: Vec<String> = transcript(&hub, "c1")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        ["participant.joined", "message.created", "participant.left"]
    );
    let (status, _) = hub.delete(path, &hub.key).await;
    assert_eq!(status, 404);
}
