//! kill -9: no acknowledged event lost, no notification decision dropped or doubled.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn kill_9_during_writes_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let key = std::fs::read_to_string(dir.path().join("default-tenant.key"))
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (http, base, key, acked) = (http.clone(), server.base.clone(), key.clone(), acked_tx.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("w{w}-{i}");
                    let event = json!({"event_id": id, "conversation_id": format!("c{}", i % 3), "type": "message.created",
                        "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent"}, "text": "x"});
                    match http.post(format!("{base}/v1/events")).bearer_auth(&key).json(&event).send().await {
                        Ok(r) if r.status() == 200 => {
                            let _ = acked.send(id);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    drop(acked_tx);
    let mut acknowledged = std::collections::HashSet::new();
    while acknowledged.len() < 300 {
        acknowledged.insert(acked_rx.recv().await.expect("writers keep acknowledging"));
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    while let Ok(id) = acked_rx.try_recv() {
        acknowledged.insert(id);
    }

    let mut restarted = serve(dir.path(), &[]);
    let mut stored = std::collections::HashSet::new();
    for c in 0..3 {
        let mut after = 0;
        loop {
            let url = format!(
                "{}/v1/conversations/c{c}/events?after={after}",
                restarted.base
            );
            let page: Value = http
                .get(url)
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let events = page["events"].as_array().unwrap();
            for (i, e) in events.iter().enumerate() {
                assert_eq!(
                    e["position"].as_u64().unwrap(),
                    after + 1 + i as u64,
                    "positions stay gap-free"
                );
                stored.insert(e["event_id"].as_str().unwrap().to_string());
            }
            match page["next_after"].as_u64() {
                Some(next) => after = next,
                None => break,
            }
        }
    }
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    sigterm(&restarted.child);
    restarted.child.wait().unwrap();
}

/// Every acknowledged message is decided about exactly once, and every push that was waiting
/// when the process died goes out after the restart: neither dropped nor doubled.
#[tokio::test]
async fn kill_9_mid_load_neither_drops_nor_doubles_notification_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let key = std::fs::read_to_string(dir.path().join("default-tenant.key"))
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let base = server.base.clone();
    http.put(format!("{base}/v1/apps/chat"))
        .bearer_auth(&key)
        .json(&json!({"rules": {"grace_delay_ms": 300, "coalesce_window_ms": 200}}))
        .send()
        .await
        .unwrap();
    const USERS: usize = 10;
    for u in 0..USERS {
        http.put(format!("{base}/v1/conversations/c{u}/participants/v{u}"))
            .bearer_auth(&key)
            .json(&json!({"role": "visitor"}))
            .send()
            .await
            .unwrap();
        let token: Value = http
            .post(format!("{base}/v1/users/v{u}/tokens"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let device = json!({"app_id": "chat", "channel": "apns", "token": format!("{u:04x}"), "platform": "ios"});
        http.post(format!("{base}/v1/me/devices"))
            .bearer_auth(token["token"].as_str().unwrap())
            .json(&device)
            .send()
            .await
            .unwrap();
    }
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64)>();
    let writer = tokio::spawn({
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        async move {
            for i in 0.. {
                let u = i % USERS;
                let event = agent_message(&format!("e{i}"), &format!("c{u}"));
                match http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(&key)
                    .json(&event)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap();
                        let _ = acked_tx.send((u, body["position"].as_u64().unwrap()));
                    }
                    _ => return,
                }
            }
        }
    });
    let mut acked = vec![];
    while acked.len() < 150 {
        acked.push(acked_rx.recv().await.unwrap());
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let _ = writer.await;
    while let Ok(a) = acked_rx.try_recv() {
        acked.push(a);
    }

    let mut restarted = serve(dir.path(), &[]);
    decided_once(
        &http,
        &restarted.base,
        &key,
        USERS,
        &acked,
        Duration::from_secs(30),
    )
    .await;
    sigterm(&restarted.child);
    restarted.child.wait().unwrap();
}
