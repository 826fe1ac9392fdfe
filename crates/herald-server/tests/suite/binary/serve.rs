//! `herald serve`: first start, a bad configuration, SIGTERM, and logs without secrets.

use std::process::Command;

use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn first_start_creates_the_default_tenant_and_a_private_key_file_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let key_file = dir.path().join("default-tenant.key");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.starts_with("hk_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let client = reqwest::Client::new();
    let status = client
        .get(format!("{}/v1/apps", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    sigterm(&server.child);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");

    // The second start keeps the tenant and prints no new key.
    let mut again = serve(dir.path(), &[]);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key);
    let status = client
        .get(format!("{}/v1/apps", again.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    sigterm(&again.child);
    again.child.wait().unwrap();
}

#[test]
fn a_bad_configuration_stops_the_start_with_a_message_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, "[live]\nheartbeat_msec = 100\n").unwrap();
    let (ok, _, err) = herald(&["serve", "--config", config.to_str().unwrap()], dir.path());
    assert!(!ok);
    assert!(err.contains("heartbeat_msec"), "{err}");

    let out = Command::new(HERALD)
        .args(["serve", "--data"])
        .arg(dir.path())
        .env("HERALD_LIVE__HEARTBEAT_MS", "5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("live.heartbeat_ms"), "{err}");
}

#[tokio::test]
async fn logs_never_carry_message_text_tokens_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(
        dir.path(),
        &[
            ("HERALD_LOG__LEVEL", "debug"),
            ("HERALD_LOG__FORMAT", "json"),
        ],
    );
    let key = std::fs::read_to_string(dir.path().join("default-tenant.key"))
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let text = "my-card-number-4111-1111";
    let password = "smtp-password-do-not-log";
    let device_token = "deadbeefcafe0042";
    let put = |path: &str, body: Value| {
        http.put(format!("{}{path}", server.base))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    put(
        "/v1/apps/chat",
        json!({"smtp": {"host": "h", "port": 25, "from": "a@b", "password": password}}),
    )
    .await
    .unwrap();
    put(
        "/v1/conversations/c1/participants/v1",
        json!({"role": "visitor"}),
    )
    .await
    .unwrap();
    let event = json!({"event_id": "e1", "conversation_id": "c1", "type": "message.created", "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "a1", "role": "agent"}, "text": text});
    http.post(format!("{}/v1/events", server.base))
        .bearer_auth(&key)
        .json(&event)
        .send()
        .await
        .unwrap();
    let minted: Value = http
        .post(format!("{}/v1/users/v1/tokens", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap().to_string();
    let device =
        json!({"app_id": "chat", "channel": "apns", "token": device_token, "platform": "ios"});
    http.post(format!("{}/v1/me/devices", server.base))
        .bearer_auth(&token)
        .json(&device)
        .send()
        .await
        .unwrap();
    // A bad request whose body holds the secret text must not echo it into logs either.
    http.post(format!("{}/v1/events", server.base))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(format!("{{\"text\": \"{text}\""))
        .send()
        .await
        .unwrap();
    let live = format!("{}/v1/live?token={token}", server.base);
    let _ = http.get(live).send().await;

    sigterm(&server.child);
    server.child.wait().unwrap();
    let log = server.stderr.lock().unwrap().clone();
    assert!(
        log.contains("app configuration stored"),
        "debug logs were captured: {log}"
    );
    for secret in [text, password, device_token, key.as_str(), token.as_str()] {
        assert!(
            !log.contains(secret),
            "the log contains a secret ({}…)",
            &secret[..6]
        );
    }
}
