//! The README's "Send your first push" (and "Cluster mode", below), run as written: its commands in order, in a fresh
//! folder, against the real binary and the README's own receiver. Only the ports (free ones
//! instead of 8080 and 9000) and the binary's path (this build instead of target/release)
//! differ.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
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

/// The README's "Cluster mode" commands as written, in a fresh folder, with this build's binary
/// instead of the release one, free ports instead of 8081–8083, and a schema and Redis prefix
/// of this test's own (so it runs beside other tests): three nodes come up ready, and an event
/// posted to one is read from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_cluster_commands_start_three_nodes_that_share_one_transcript() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = shell_blocks(&readme, "## Cluster mode");
    let [script] = blocks.as_slice() else {
        panic!("one command block expected, found {blocks:#?}");
    };
    let ports = [free_port(), free_port(), free_port()];
    let id = uuid::Uuid::new_v4().simple().to_string();
    let schema = format!("herald_readme_{id}");
    let mut script = script
        .replace("cargo build --release\n", "")
        .replace("./target/release/herald", HERALD)
        .replace(
            "HERALD_POSTGRES__SCHEMA=herald ",
            &format!("HERALD_POSTGRES__SCHEMA={schema} "),
        )
        .replace("127.0.0.1:808$n", "127.0.0.1:${PORTS[$n]}");
    assert!(
        script.contains("${PORTS[$n]}") && script.contains(HERALD) && script.contains(&schema),
        "the README's cluster block changed shape: {script}"
    );
    // Where the test's PostgreSQL is, if not the README's.
    if let Ok(url) = std::env::var("HERALD_TEST_POSTGRES_URL") {
        script = script.replace("postgres://postgres@127.0.0.1:5432/test", &url);
    }
    let script = format!(
        "PORTS=(none {} {} {})\nexport HERALD_REDIS__PREFIX=readme-{id}\n{script}",
        ports[0], ports[1], ports[2]
    );
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    let out = std::fs::File::create(dir.join("out")).unwrap();
    // A process group of its own: the nodes the script starts in the background stay in it,
    // so one signal stops them all, whatever happens to the test.
    let mut bash = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let group = format!("-{}", bash.id());
    let deadline = Instant::now() + PATIENCE * 4;
    let status = loop {
        if let Some(status) = bash.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let stop = || {
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let url = std::env::var("HERALD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let _ = Command::new("psql")
            .arg(url)
            .args([
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            ])
            .output();
    };
    let output = std::fs::read_to_string(dir.join("out")).unwrap();
    if !status.is_some_and(|s| s.success()) || output.matches("\"ready\"").count() != 3 {
        stop();
        panic!("the README's cluster commands failed: {output}");
    }

    let key = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("default-tenant.key")).ok())
        .next()
        .map(|k| k.trim().to_string());
    let result = async {
        let key = key.expect("one node wrote the default tenant's key into its folder");
        let http = reqwest::Client::new();
        let event = serde_json::json!({"event_id": "e1", "conversation_id": "c1", "type": "message.created",
            "occurred_at": "2026-11-23T10:00:00Z", "sender": {"id": "agent", "role": "agent"}, "text": "hi"});
        let posted = http
            .post(format!("http://127.0.0.1:{}/v1/events", ports[1]))
            .bearer_auth(&key)
            .json(&event)
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 200);
        let read: Value = http
            .get(format!(
                "http://127.0.0.1:{}/v1/conversations/c1/events",
                ports[2]
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(read["events"][0]["event_id"], "e1", "{read}");
    };
    let outcome = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    stop();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
