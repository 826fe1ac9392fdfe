//! Files: `serve.rs` (first start, config errors, SIGTERM, logs without secrets), `cluster.rs`
//! (three nodes on PostgreSQL + Redis: live routing, presence, kill -9, SIGSTOP), `cli.rs`
//! (the operator CLI, `herald listen`), `crash.rs` (kill -9 loses and doubles nothing),
//! `operator.rs` (one server per data folder, JSON-only logs, commands that follow the server's
//! configuration). This file holds the way they run the binary.
//!
//! The real `herald` binary as an operator runs it: first start, config errors, graceful
//! shutdown on SIGTERM, logs without secrets, and the operator CLI.

mod cli;
mod cluster;
mod crash;
mod operator;
mod serve;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use herald_testkit::PATIENCE;

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

struct Running {
    child: Child,
    base: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts `herald serve` on a free port and waits for its "listening" line.
fn serve(data: &Path, env: &[(&str, &str)]) -> Running {
    let data = data.to_str().expect("a UTF-8 path");
    serve_with(&["--listen", "127.0.0.1:0", "--data", data], env)
}

/// The address in a start-up announcement, as text or as a JSON log line.
fn announced(line: &str) -> Option<String> {
    let message = match serde_json::from_str::<serde_json::Value>(line) {
        Ok(doc) => doc["message"].as_str()?.to_string(),
        Err(_) => line.to_string(),
    };
    message
        .strip_prefix("Herald listening on ")
        .map(str::to_string)
}

/// Starts `herald serve ARGS` and waits for its "listening" line.
fn serve_with(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(HERALD)
        .arg("serve")
        .args(args)
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
            if let Some(addr) = announced(&line) {
                let _ = tx.send(addr);
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

/// A server a test forgot to stop (or a test that failed) does not outlive the test.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent's message, as the crash and cluster tests post it.
fn agent_message(id: &str, conversation: &str) -> serde_json::Value {
    serde_json::json!({"event_id": id, "conversation_id": conversation, "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent", "role": "agent"}, "text": "x"})
}

/// `GET url` with the server key, as JSON.
async fn get_json(http: &reqwest::Client, url: String, key: &str) -> serde_json::Value {
    http.get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until, read through `base`, every acknowledged message — (u, position) of user
/// `v{u}`, for users `v0..v{users}` — is decided and none is pending; fails on a message
/// decided twice, or when `within` passes first.
async fn decided_once(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    users: usize,
    acked: &[(usize, u64)],
    within: std::time::Duration,
) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let mut settled = true;
        let mut decided = std::collections::HashSet::new();
        for u in 0..users {
            let url = format!("{base}/v1/users/v{u}/notifications?limit=500");
            let list = get_json(http, url, key).await;
            for n in list["notifications"].as_array().unwrap() {
                settled &= n["status"] != "pending";
                let position = n["position"].as_u64().unwrap();
                assert!(
                    decided.insert((u, position)),
                    "message {position} of v{u} was decided twice: {n}"
                );
            }
        }
        let missing = acked.iter().filter(|a| !decided.contains(a)).count();
        if settled && missing == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} acknowledged messages undecided, settled={settled}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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
