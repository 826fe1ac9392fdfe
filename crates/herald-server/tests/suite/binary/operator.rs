//! The binary as an operator runs it beside a server: one server per data folder, JSON logs
//! that are JSON on every line, and commands that follow the server's configuration
//! (`herald listen`, `herald push test`) instead of assuming the defaults.

use std::path::Path;
use std::process::{Command, Stdio};

use herald_testkit::capture::CaptureServer;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::{Value, json};

use super::{HERALD, serve, serve_with, sigterm};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(HERALD)
        .args(args)
        .output()
        .expect("herald runs")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_second_server_on_the_same_data_folder_stops_naming_the_folder_and_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), &[]);
    let second = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        path(dir.path()),
    ]);
    assert!(!second.status.success());
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains(path(dir.path())), "{said}");
    assert!(
        said.contains(&format!("pid {}", first.child.id())),
        "{said}"
    );
}

#[tokio::test]
async fn json_logs_carry_no_plain_text_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[("HERALD_LOG__FORMAT", "json")]);
    let key = std::fs::read_to_string(dir.path().join("default-tenant.key")).unwrap();
    let answer = reqwest::Client::new()
        .get(format!("{}/v1/apps/none", server.base))
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    sigterm(&server.child);
    server.child.wait().unwrap();
    let stderr = server.stderr.lock().unwrap().clone();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        assert!(
            serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()),
            "a plain-text line in JSON logs: {line}"
        );
    }
}

#[tokio::test]
async fn herald_listen_finds_the_server_and_its_key_through_the_servers_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("herald.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n",
            path(&data)
        ),
    )
    .unwrap();
    let server = serve_with(&["--config", path(&config)], &[]);
    let key = std::fs::read_to_string(data.join("default-tenant.key")).unwrap();
    let http = reqwest::Client::new();
    http.put(format!(
        "{}/v1/conversations/c1/participants/visitor-1",
        server.base
    ))
    .bearer_auth(key.trim())
    .json(&json!({"role": "visitor"}))
    .send()
    .await
    .unwrap();
    // No --url, no --key: both come from the configuration the server runs with.
    let listener = Command::new(HERALD)
        .args(["listen", "--config", path(&config), "--user", "visitor-1"])
        .args(["--resume", "c1=1", "--count", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let presence: Value = http
            .get(format!("{}/v1/users/visitor-1/presence", server.base))
            .bearer_auth(key.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if presence["sessions"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the listener connects"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    http.post(format!("{}/v1/events", server.base))
        .bearer_auth(key.trim())
        .json(&json!({"event_id": "m1", "conversation_id": "c1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent-7", "role": "agent"}, "text": "found you"}))
        .send()
        .await
        .unwrap();
    let out = listener.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("found you"), "{printed}");
}

// Multi-threaded: the capture server answers while this thread waits for the CLI process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_push_test_follows_the_configurations_outbound_allow_list() {
    let backend = CaptureServer::start().await;
    let hub = TestHub::start().await;
    let app = json!({"connector": {"callback_url": format!("{}/push", backend.url), "preset": "sdk_adapter"}});
    let (status, body) = hub.put("/v1/apps/chat", &hub.key, app).await;
    assert_eq!(status, 201, "{body}");
    let token = hub.token("visitor-1").await;
    let device =
        json!({"app_id": "chat", "channel": "connector", "token": "phone-1", "platform": "ios"});
    let (_, device) = hub.post("/v1/me/devices", &token, device).await;
    let device = device["id"].as_str().unwrap().to_string();
    let data = path(hub.data_dir()).to_string();
    let test = |extra: &[&str]| {
        let mut args = vec![
            "push", "test", "--app", "chat", "--device", &device, "--data", &data,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // The embedded default refuses loopback for customer URLs.
    let refused = test(&[]);
    assert!(!refused.status.success());
    assert!(backend.captured().is_empty(), "nothing was sent");

    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "[outbound]\nallow_cidrs = [\"127.0.0.1/32\"]\n",
    )
    .unwrap();
    let allowed = test(&["--config", path(config.path())]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let sent = backend.wait_for(1).await;
    assert_eq!(sent[0].json()["deviceToken"], "phone-1");
}
