//! Files: `serve.rs` (first start, config errors, SIGTERM, logs without secrets), `cli.rs`
//! (the operator CLI, `herald listen`), `crash.rs` (kill -9 loses and doubles nothing). This file
//! holds the way they run the binary.
//!
//! The real `herald` binary as an operator runs it: first start, config errors, graceful
//! shutdown on SIGTERM, logs without secrets, and the operator CLI.

mod cli;
mod crash;
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
