//! Ringing, cancelled and declined calls.

use serde_json::json;

use super::*;

#[tokio::test]
async fn a_ringing_call_pushes_at_once_through_voip_and_a_cancel_revokes_it_and_leaves_a_missed_call()
 {
    let mut s = Story::new(json!({})).await;
    s.register("visitor-1", json!({"app_id": "chat", "channel": "apns", "token": "bbbb0002", "platform": "ios", "installation_id": "iphone"})).await;
    s.register("visitor-1", json!({"app_id": "chat", "channel": "apns_voip", "token": "cccc0003", "platform": "ios", "installation_id": "iphone"})).await;
    s.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent", "name": "Ann"}, "callees": ["visitor-1"], "ring_timeout_s": 30})).await;
    let ringing = s.decisions("visitor-1").await;
    let incoming = with_status(&ringing, "sent");
    assert_eq!(incoming.len(), 1, "no grace delay for calls: {ringing:#?}");
    assert_eq!(incoming[0]["push"]["kind"], "incoming_call");
    assert_eq!(incoming[0]["push"]["high_priority"], true);
    let channels: Vec<(String, String)> = s
        .deliveries(incoming[0])
        .await
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap().to_string(),
                d["device_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        channels.iter().any(|(c, _)| c == "apns_voip"),
        "{channels:?}"
    );
    assert_eq!(
        channels.iter().filter(|(c, _)| c == "apns").count(),
        1,
        "the iPhone with a VoIP token rings through VoIP only: {channels:?}"
    );

    s.post(json!({"event_id": "r2", "conversation_id": "c1", "type": "call.cancelled", "occurred_at": "2026-11-23T10:00:05Z", "call_id": "call-1", "by": "agent-7"})).await;
    let after = s.decisions("visitor-1").await;
    let kinds: Vec<&str> = with_status(&after, "sent")
        .iter()
        .map(|d| d["push"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["incoming_call", "revoked_call", "missed_call"]);
    let missed = with_status(&after, "sent")[2];
    assert_eq!(missed["push"]["missed_calls"], 1);
    assert_eq!(missed["push"]["title"], "Missed call");
}

#[tokio::test]
async fn a_declined_call_is_revoked_without_a_missed_call_and_auto_join_apps_do_not_ring() {
    let mut s = Story::new(json!({})).await;
    s.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-1", "caller": {"id": "agent-7", "role": "agent"}, "callees": ["visitor-1"]})).await;
    s.post(json!({"event_id": "r2", "conversation_id": "c1", "type": "call.declined", "occurred_at": "2026-11-23T10:00:03Z", "call_id": "call-1", "by": "visitor-1"})).await;
    let kinds: Vec<String> = with_status(&s.decisions("visitor-1").await, "sent")
        .iter()
        .map(|d| d["push"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["incoming_call", "revoked_call"]);

    let mut auto = Story::new(json!({"auto_join_calls": true})).await;
    auto.post(json!({"event_id": "r1", "conversation_id": "c1", "type": "call.ringing", "occurred_at": "2026-11-23T10:00:00Z",
        "call_id": "call-9", "caller": {"id": "agent-7", "role": "agent"}, "callees": ["visitor-1"]})).await;
    let decisions = auto.decisions("visitor-1").await;
    assert_eq!(decisions[0]["status"], "suppressed");
    assert!(
        decisions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("automatically")
    );
}
