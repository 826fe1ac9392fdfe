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
