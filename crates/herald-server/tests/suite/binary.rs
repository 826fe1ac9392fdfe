//! The real `herald` binary as an operator runs it: first start, config errors, graceful
//! shutdown on SIGTERM, logs without secrets, and the operator CLI.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_testkit::PATIENCE;
use serde_json::{Value, json};

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

struct Running {
    child: Child,
    base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts `herald serve` on a free port and waits for its "listening" line.
fn serve(data: &Path, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(HERALD)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("herald starts");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = stderr.clone();
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("Herald listening on ") {
                let _ = tx.send(addr.to_string());
            }
            log.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let base = rx
        .recv_timeout(PATIENCE)
        .expect("herald announces its address");
    Running {
        child,
        base,
        stderr,
    }
}

fn sigterm(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
}

fn herald(args: &[&str], data: &Path) -> (bool, String, String) {
    let out = Command::new(HERALD)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("herald runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
                let event = json!({"event_id": format!("e{i}"), "conversation_id": format!("c{u}"), "type": "message.created",
                    "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent", "role": "agent"}, "text": "x"});
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
    let base = restarted.base.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut settled = true;
        let mut decided = std::collections::HashSet::new();
        for u in 0..USERS {
            let list: Value = http
                .get(format!("{base}/v1/users/v{u}/notifications?limit=500"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for n in list["notifications"].as_array().unwrap() {
                settled &= n["status"] != "pending";
                let position = n["position"].as_u64().unwrap();
                assert!(
                    decided.insert((u, position)),
                    "message {position} of v{u} was decided twice"
                );
            }
        }
        let missing = acked.iter().filter(|a| !decided.contains(a)).count();
        if settled && missing == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after the restart: {missing} acknowledged messages undecided, settled={settled}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sigterm(&restarted.child);
    restarted.child.wait().unwrap();
}
