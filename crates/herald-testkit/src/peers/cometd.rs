//! The real CometD JavaScript client (npm `cometd@9` + `cometd-nodejs-client@2`) as a test peer:
//! `node/cometd-client.mjs` drives it over JSON lines and this wraps that process. `scripts/test`
//! installs the packages into `target/test-node` and exports `HERALD_TEST_COMETD_CLIENT`.
//!
//! ```ignore
//! let mut client = CometdClient::start(&format!("{}/cometd", hub.base), Transport::LongPolling).await;
//! let reply = client.handshake(json!({"authentication": {"token": jwt}})).await;
//! assert_eq!(reply["successful"], true, "{reply}");
//! client.subscribe("/conversations/c1").await;
//! let message = client.next_message("/conversations/c1").await;
//! ```

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::PATIENCE;

/// Which transport the client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The websocket transport is unregistered, so the client can only long-poll (it still
    /// offers `callback-polling` in its handshake, as the real client does).
    LongPolling,
    /// The client's default: websocket first, long-polling as its fallback.
    WebSocket,
}

impl Transport {
    fn wire_name(self) -> &'static str {
        match self {
            Transport::LongPolling => "long-polling",
            Transport::WebSocket => "websocket",
        }
    }
}

/// The driver script.
fn driver_script() -> String {
    if let Ok(path) = std::env::var("HERALD_TEST_COMETD_CLIENT") {
        return path;
    }
    concat!(env!("CARGO_MANIFEST_DIR"), "/node/cometd-client.mjs").to_string()
}

/// Where the npm packages are. The driver has the same default; it is passed explicitly so a
/// driver started from another directory still finds the repo's `target/test-node`.
fn node_modules() -> String {
    if let Ok(path) = std::env::var("HERALD_TEST_NODE_MODULES") {
        return path;
    }
    let fallback = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/test-node/node_modules"
    );
    assert!(
        Path::new(fallback).join("cometd").exists()
            && Path::new(fallback).join("cometd-nodejs-client").exists(),
        "the npm CometD client is not installed in {fallback}: run the tests with scripts/test"
    );
    fallback.to_string()
}

/// One CometD client in a Node process of its own; the process is killed when this is dropped.
pub struct CometdClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Lines read but not yet taken by a `reply`/`next_message`/`next_meta`.
    pending: VecDeque<Value>,
    /// Every `message` line so far, in arrival order (for `messages_so_far`).
    seen: Vec<Value>,
}

impl CometdClient {
    /// Starts the client and configures it for `url` (`http://host:port/cometd`; for websocket
    /// the client itself rewrites the scheme to `ws`). It does not handshake yet.
    pub async fn start(url: &str, transport: Transport) -> CometdClient {
        let script = driver_script();
        assert!(
            Path::new(&script).exists(),
            "the CometD driver {script} is missing: run the tests with scripts/test"
        );
        let mut child = Command::new("node")
            .arg(&script)
            .env("HERALD_TEST_NODE_MODULES", node_modules())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The client's own warnings go to stderr; the test harness shows them on failure.
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node ({e}); run the tests with scripts/test"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::unbounded_channel();
        // A reader task, so lines keep flowing (and the pipe never fills) while the test is
        // busy elsewhere; it ends when the process closes stdout.
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"op": "unparsed", "line": line}));
                if sender.send(value).is_err() {
                    break;
                }
            }
        });
        let mut client = CometdClient {
            child,
            stdin,
            lines,
            pending: VecDeque::new(),
            seen: Vec::new(),
        };
        let ready = client
            .take(|l| l["op"] == "ready" || l["op"] == "fatal")
            .await;
        assert_eq!(
            ready["op"], "ready",
            "the CometD driver did not start: {ready}"
        );
        let configured = client
            .command(json!({"op": "configure", "url": url, "transport": transport.wire_name()}))
            .await;
        assert!(configured["transports"].is_array(), "{configured}");
        client
    }

    /// `/meta/handshake` with `ext` (`Value::Null` for none). Returns
    /// `{op, successful, clientId, error, transport, reply}`: `reply` is the whole reply message;
    /// `error` is the Bayeux `error`, or the transport's reason when the request itself failed.
    /// After a failure the client keeps re-handshaking on its own (seen as `meta` lines).
    pub async fn handshake(&mut self, ext: Value) -> Value {
        self.command(with_ext(json!({"op": "handshake"}), ext))
            .await
    }

    /// `addListener(channel)`: deliveries on it become messages with `via: "listener"`, with no
    /// `/meta/subscribe` sent (GMS-style servers push on channels nobody subscribed to).
    pub async fn listen(&mut self, channel: &str) {
        self.command(json!({"op": "listen", "channel": channel}))
            .await;
    }

    /// `/meta/subscribe`; returns `{op, channel, successful, error, reply}`. Deliveries arrive as
    /// messages with `via: "subscription"`.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.command(json!({"op": "subscribe", "channel": channel}))
            .await
    }

    /// `/meta/unsubscribe` of an earlier `subscribe`; returns `{op, channel, successful, error, reply}`.
    pub async fn unsubscribe(&mut self, channel: &str) -> Value {
        self.command(json!({"op": "unsubscribe", "channel": channel}))
            .await
    }

    /// Publishes `data` on `channel`; returns `{op, channel, successful, error, reply}`.
    pub async fn publish(&mut self, channel: &str, data: Value) -> Value {
        self.command(json!({"op": "publish", "channel": channel, "data": data}))
            .await
    }

    /// `/meta/disconnect` with `ext` (`Value::Null` for none); returns
    /// `{op, successful, error, reply}`.
    pub async fn disconnect(&mut self, ext: Value) -> Value {
        self.command(with_ext(json!({"op": "disconnect"}), ext))
            .await
    }

    /// The next delivery on `channel` (`{op:"message", channel, data, via, message}`), waiting
    /// up to `PATIENCE`. Other lines stay queued.
    pub async fn next_message(&mut self, channel: &str) -> Value {
        self.take(|l| l["op"] == "message" && l["channel"] == channel)
            .await
    }

    /// The next `/meta/*` reply on `channel` (`{op:"meta", channel, successful, error, advice,
    /// reply}`), e.g. a `/meta/connect` answered `402` with `advice.reconnect: "handshake"`.
    pub async fn next_meta(&mut self, channel: &str) -> Value {
        self.take(|l| l["op"] == "meta" && l["channel"] == channel)
            .await
    }

    /// Every delivery received so far, on any channel, including ones `next_message` took.
    /// Does not wait.
    pub fn messages_so_far(&mut self) -> Vec<Value> {
        self.drain();
        self.seen.clone()
    }

    /// Asks the driver to exit and waits for it.
    pub async fn close(mut self) {
        self.send(json!({"op": "close"})).await;
        self.stdin = None;
        let exited = tokio::time::timeout(PATIENCE, self.child.wait()).await;
        assert!(exited.is_ok(), "the CometD driver did not exit");
    }

    async fn command(&mut self, command: Value) -> Value {
        let op = command["op"].clone();
        self.send(command).await;
        self.take(|l| l["op"] == op).await
    }

    async fn send(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("the driver is open");
        let mut line = command.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("the CometD driver is running");
        stdin.flush().await.expect("the CometD driver is running");
    }

    /// Moves whatever the reader task has already delivered into `pending`.
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.queue(line);
        }
    }

    fn queue(&mut self, line: Value) {
        if line["op"] == "message" {
            self.seen.push(line.clone());
        }
        self.pending.push_back(line);
    }

    /// Removes and returns the first line (queued or yet to come) that `wanted` accepts.
    async fn take(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            self.drain();
            if let Some(at) = self.pending.iter().position(&wanted) {
                return self.pending.remove(at).unwrap();
            }
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.queue(line),
                Ok(None) => panic!(
                    "the CometD driver exited; lines not taken: {:?}",
                    self.pending
                ),
                Err(_) => panic!(
                    "no such line from the CometD driver within {PATIENCE:?}; lines not taken: {:?}",
                    self.pending
                ),
            }
        }
    }
}

fn with_ext(mut command: Value, ext: Value) -> Value {
    if !ext.is_null() {
        command["ext"] = ext;
    }
    command
}
