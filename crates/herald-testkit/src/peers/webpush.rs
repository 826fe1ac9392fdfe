//! npm `web-push-testing` as the push service in tests: it checks VAPID and decrypts what it
//! receives. `scripts/test` installs it and exports `HERALD_TEST_WEB_PUSH_TESTING`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::PATIENCE;

/// The `web-push-testing` server script.
fn peer_script() -> String {
    if let Ok(path) = std::env::var("HERALD_TEST_WEB_PUSH_TESTING") {
        return path;
    }
    let fallback = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/test-node/node_modules/web-push-testing/src/bin/server.js"
    );
    assert!(
        std::path::Path::new(fallback).exists(),
        "web-push-testing is not installed: run the tests with scripts/test"
    );
    fallback.to_string()
}

/// npm `web-push-testing` on a port of its own; stopped when dropped.
pub struct PushService {
    child: Child,
    pub base: String,
    http: reqwest::Client,
}

impl PushService {
    pub async fn start() -> PushService {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().unwrap().port()
        };
        let child = Command::new("node")
            .arg(peer_script())
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node ({e}); run the tests with scripts/test"));
        let service = PushService {
            child,
            base: format!("http://localhost:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let up = service
                .http
                .post(format!("{}/status", service.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if up {
                return service;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "web-push-testing did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("web-push-testing answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A browser subscription restricted to `application_server_key` (RFC 8292 §4):
    /// `{endpoint, keys: {p256dh, auth}, clientHash}`.
    pub async fn subscribe(&self, application_server_key: &str) -> Value {
        let (status, body) = self
            .call(
                "/subscribe",
                json!({"applicationServerKey": application_server_key}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// The decrypted messages the subscription received, oldest first.
    pub async fn messages(&self, subscription: &Value) -> Vec<String> {
        let (status, body) = self
            .call(
                "/get-notifications",
                json!({"clientHash": subscription["clientHash"]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect()
    }

    pub async fn wait_for(&self, subscription: &Value, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let messages = self.messages(subscription).await;
            if messages.len() >= n {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} messages arrived: {messages:?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The browser unsubscribes: the service answers 410 from now on.
    pub async fn expire(&self, subscription: &Value) {
        let hash = subscription["clientHash"].as_str().unwrap();
        let (status, body) = self
            .call(&format!("/expire-subscription/{hash}"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
