//! The README's "Send your first push", run as written: its commands in order, in a fresh
//! folder, against the real binary and the README's own receiver. Only the ports (free ones
//! instead of 8080 and 9000) and the binary's path (this build instead of target/release)
//! differ.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use herald_testkit::PATIENCE;
use serde_json::Value;

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shell blocks of one README section, in order.
fn shell_blocks(readme: &str, heading: &str) -> Vec<String> {
    let start = readme.find(heading).expect("the section exists");
    let rest = &readme[start + heading.len()..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b[..b.find("```").expect("closed block")].to_string())
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Lines a child prints on `stream`, as they come.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bash(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script}\nfailed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_readme_first_push_reaches_the_local_receiver_and_herald_why_explains_it() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = shell_blocks(&readme, "## Send your first push");
    let [serve, receive, setup, write, why] = blocks.as_slice() else {
        panic!("five commands expected, found {blocks:#?}");
    };
    let receiver_port = free_port();
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    // The README's files, with the receiver on a free port instead of 9000.
    std::fs::create_dir_all(dir.join("examples/apps")).unwrap();
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    for file in [
        "examples/first-push.toml",
        "examples/apps/backend.json",
        "scripts/receiver.py",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let text = text.replace("127.0.0.1:9000", &format!("127.0.0.1:{receiver_port}"));
        std::fs::write(dir.join(file), text).unwrap();
    }

    assert_eq!(
        serve.trim(),
        "cargo run --release -- serve --config examples/first-push.toml"
    );
    let args: Vec<&str> = serve.trim()["cargo run --release -- ".len()..]
        .split(' ')
        .collect();
    let mut server = Command::new(HERALD)
        .args(&args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let announced = lines(server.stderr.take().unwrap());
    let _server = Killed(server);
    let base = loop {
        let line = announced.recv_timeout(PATIENCE).expect("the server starts");
        if let Some(addr) = line.strip_prefix("Herald listening on ") {
            break addr.to_string();
        }
    };

    let receive = receive.replace("--port 9000", &format!("--port {receiver_port} --quiet"));
    let mut receiver = Command::new("bash")
        .args(["-c", &format!("exec {receive}")])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let received = lines(receiver.stdout.take().unwrap());
    let receiving = lines(receiver.stderr.take().unwrap());
    let _receiver = Killed(receiver);
    let ready = receiving
        .recv_timeout(PATIENCE)
        .expect("the receiver starts");
    assert!(ready.starts_with("receiving on"), "{ready}");

    let as_here = |block: &str| {
        block
            .replace("http://127.0.0.1:8080", &base)
            .replace("./target/release/herald", HERALD)
    };
    let answers = bash(dir, &as_here(&format!("{setup}\n{write}")));
    assert!(
        answers.contains(r#""position":2"#),
        "the event was stored: {answers}"
    );

    let mut calls: Vec<Value> = Vec::new();
    while calls.len() < 2 {
        let line = received.recv_timeout(PATIENCE).expect("the push arrives");
        calls.push(serde_json::from_str(&line).unwrap());
    }
    let connector = calls.iter().find(|c| c["path"] == "/connector").unwrap();
    assert_eq!(connector["body"]["deviceToken"], "my-phone-token");
    assert_eq!(
        connector["body"]["payload"]["aps"]["alert"]["body"],
        "Your order has shipped."
    );
    assert_eq!(connector["body"]["payload"]["aps"]["badge"], 1);
    let webhook = calls.iter().find(|c| c["path"] == "/webhook").unwrap();
    assert_eq!(webhook["body"]["type"], "push_notification.new_message");
    assert_eq!(webhook["signature_valid"], true, "{webhook}");

    // The deliveries settle just after the receiver answered.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let explained = bash(dir, &as_here(why));
        if explained.matches("delivered").count() >= 2 {
            assert!(explained.contains(": sent"), "{explained}");
            assert!(explained.contains("pending"), "{explained}");
            break;
        }
        assert!(Instant::now() < deadline, "{explained}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_example_app_document_is_accepted_as_it_is() {
    let hub = herald_testkit::TestHub::start().await;
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("examples/apps")).unwrap() {
        let path = entry.unwrap().path();
        let document: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let id = path.file_stem().unwrap().to_string_lossy().to_string();
        let (status, body) = hub.put(&format!("/v1/apps/{id}"), &hub.key, document).await;
        assert_eq!(status, 201, "{}: {body}", path.display());
        seen += 1;
    }
    assert!(seen >= 3, "the examples are there");
}
