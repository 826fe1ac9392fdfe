//! The operator CLI and `herald listen`.

use std::process::{Command, Stdio};
use std::time::Duration;

use herald_testkit::PATIENCE;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn the_operator_cli_manages_tenants_keys_apps_devices_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = herald(&["tenant", "create", "acme", "--name", "Acme"], dir.path());
    assert!(ok, "{err}");
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("hk_"))
        .expect("the key is printed")
        .to_string();
    let (ok, out, _) = herald(&["tenant", "list"], dir.path());
    assert!(ok);
    let tenants: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tenants[0]["id"], "acme");
    let (ok, out, _) = herald(&["tenant", "create", "acme"], dir.path());
    assert!(!ok, "a duplicate tenant is refused: {out}");

    let app = dir.path().join("app.json");
    std::fs::write(&app, r#"{"name": "Chat", "smtp": {"host": "h", "port": 25, "from": "a@b", "password": "pw-123"}}"#).unwrap();
    let (ok, out, err) = herald(
        &[
            "app",
            "put",
            "chat",
            "--tenant",
            "acme",
            "--file",
            app.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("********") && !out.contains("pw-123"));
    let (ok, out, _) = herald(&["app", "get", "chat", "--tenant", "acme"], dir.path());
    assert!(ok && out.contains("\"Chat\""));
    std::fs::write(&app, r#"{"connector": {"callback_url": "nope"}}"#).unwrap();
    let (ok, _, err) = herald(
        &[
            "app",
            "put",
            "chat",
            "--tenant",
            "acme",
            "--file",
            app.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!ok && err.contains("connector.callback_url"), "{err}");

    let (ok, out, _) = herald(
        &["key", "create", "--tenant", "acme", "--name", "second"],
        dir.path(),
    );
    assert!(ok);
    let key_id = out
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_string();
    let (ok, _, _) = herald(&["key", "revoke", &key_id, "--tenant", "acme"], dir.path());
    assert!(ok);
    let (ok, out, _) = herald(
        &["token", "mint", "--tenant", "acme", "--user", "alice"],
        dir.path(),
    );
    assert!(ok);
    let token = out.trim().to_string();
    assert_eq!(token.split('.').count(), 3);

    // The server sees what the CLI wrote, and accepts the minted token.
    let mut server = serve(dir.path(), &[]);
    let http = reqwest::Client::new();
    let device = json!({"app_id": "chat", "channel": "apns", "token": "ab12", "platform": "ios"});
    let status = http
        .post(format!("{}/v1/me/devices", server.base))
        .bearer_auth(&token)
        .json(&device)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    let status = http
        .get(format!("{}/v1/apps/chat", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let (ok, out, _) = herald(
        &["device", "list", "--tenant", "acme", "--user", "alice"],
        dir.path(),
    );
    assert!(ok && out.contains("ab12"), "{out}");
    assert!(
        !dir.path().join("default-tenant.key").exists(),
        "an existing tenant means no default bootstrap"
    );
    sigterm(&server.child);
    server.child.wait().unwrap();
}

#[tokio::test]
async fn herald_listen_prints_a_posted_message_and_resumes_exactly_what_was_missed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let key = std::fs::read_to_string(dir.path().join("default-tenant.key"))
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    http.put(format!(
        "{}/v1/conversations/support-1/participants/visitor-1",
        server.base
    ))
    .bearer_auth(&key)
    .json(&json!({"role": "visitor"}))
    .send()
    .await
    .unwrap();
    let post = |id: &str, text: &str| {
        let event = json!({"event_id": id, "conversation_id": "support-1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent"}, "text": text});
        http.post(format!("{}/v1/events", server.base))
            .bearer_auth(&key)
            .json(&event)
            .send()
    };
    let listen = |resume: &str, count: &str| {
        Command::new(HERALD)
            .args([
                "listen",
                "--user",
                "visitor-1",
                "--url",
                &server.base,
                "--key",
                &key,
                "--resume",
                resume,
                "--count",
                count,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = listen("support-1=1", "1");
    // Wait until the listener's session is up before posting.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let p: Value = http
            .get(format!("{}/v1/users/visitor-1/presence", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if p["sessions"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    post("m1", "Hi! How can I help?").await.unwrap();
    let out = first.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("Hi! How can I help?"), "{printed}");

    post("m2", "two").await.unwrap();
    post("m3", "three").await.unwrap();
    let second = listen("support-1=2", "2").wait_with_output().unwrap();
    let frames: Vec<Value> = String::from_utf8_lossy(&second.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<(u64, &str)> = frames
        .iter()
        .filter(|f| f["type"] == "event")
        .map(|f| {
            (
                f["position"].as_u64().unwrap(),
                f["event"]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(events, [(3, "two"), (4, "three")]);
    sigterm(&server.child);
    server.child.wait().unwrap();
}
