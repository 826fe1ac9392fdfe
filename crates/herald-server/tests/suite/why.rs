//! `herald why`: what support reads when a user asks "why wasn't I notified?" — the user's
//! decisions with their reasons, read by the operator CLI from the data folder of a running
//! server.

use std::process::Command;
use std::time::Duration;

use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

fn why(hub: &TestHub, args: &[&str]) -> String {
    let out = Command::new(HERALD)
        .arg("why")
        .args(args)
        .arg("--data")
        .arg(hub.data_dir())
        .output()
        .expect("herald runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn herald_why_shows_a_users_decisions_with_their_reasons() {
    let hub = TestHub::start().await;
    let (status, body) = hub
        .put(
            "/v1/apps/chat",
            &hub.key,
            json!({"rules": {"grace_delay_ms": 60000}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    hub.join("c1", "visitor-1", "visitor").await;
    hub.join("c2", "visitor-1", "visitor").await;
    let token = hub.token("visitor-1").await;
    let device =
        json!({"app_id": "chat", "channel": "apns", "token": "aaaa0001", "platform": "ios"});
    let (status, body) = hub.post("/v1/me/devices", &token, device).await;
    assert!(status.is_success(), "{body}");
    for (id, conversation) in [("m1", "c1"), ("m2", "c2")] {
        hub.events(json!({"event_id": id, "conversation_id": conversation, "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent"}, "text": "Hi"}))
            .await;
    }
    // The engine decides after the acknowledgement: wait until both decisions are recorded.
    let deadline = std::time::Instant::now() + PATIENCE;
    let decisions = loop {
        let (_, body) = hub.get("/v1/users/visitor-1/notifications", &hub.key).await;
        let list = body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if list.len() == 2 {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let c1 = decisions
        .iter()
        .find(|d| d["conversation_id"] == "c1")
        .unwrap();
    let reason = c1["reason"].as_str().unwrap();

    let text = why(&hub, &["--user", "visitor-1", "--conversation", "c1"]);
    let id = c1["id"].as_str().unwrap();
    assert!(text.contains(id), "{text}");
    assert!(
        text.contains("new_message in c1 at position 2 (app chat): pending"),
        "{text}"
    );
    assert!(text.contains(reason), "{text}");
    assert!(!text.contains(" in c2 "), "filtered to c1: {text}");

    let json_out = why(&hub, &["--user", "visitor-1", "--json"]);
    let docs: Vec<Value> = json_out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{json_out}");
    assert!(docs.iter().all(|d| d["deliveries"].is_array()));

    let nobody = why(&hub, &["--user", "visitor-9"]);
    assert!(nobody.contains("No decisions recorded"), "{nobody}");
}
