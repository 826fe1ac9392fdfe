//! `TestHub`: Herald on 127.0.0.1:0 with its data in a temporary folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use herald_engine::clock::{Clock, SystemClock};
use herald_engine::delivery::Channel;
use herald_engine::ports::ChannelRegistry;
use herald_server::AppState;
use herald_server::config::Config;
use herald_server::server::Server;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::LiveClient;

pub struct TestHubBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
    dir: Option<Arc<tempfile::TempDir>>,
    channels: ChannelRegistry,
}

impl TestHubBuilder {
    /// Adjusts the configuration before start.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Routes deliveries of channel `name` (`apns`, `fcm`, `webpush`, `connector`, `webhook`)
    /// to `channel`.
    pub fn channel(mut self, name: &str, channel: Arc<dyn Channel>) -> Self {
        self.channels = self.channels.with(name, channel);
        self
    }

    pub async fn start(self) -> TestHub {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = self
            .dir
            .unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("temp dir")));
        let mut config = self.config;
        config.data_dir = dir.path().to_path_buf();
        config.listen = "127.0.0.1:0".parse().expect("address");
        let server = Server::build(config.clone(), self.clock.clone(), self.channels.clone())
            .await
            .expect("server starts");
        let addr = server.local_addr();
        let state = server.state.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs")
        });
        let key =
            std::fs::read_to_string(dir.path().join(herald_tenancy::tenants::DEFAULT_KEY_FILE))
                .expect("the default tenant key file exists")
                .trim()
                .to_string();
        TestHub {
            base: format!("http://{addr}"),
            key,
            state,
            http: reqwest::Client::new(),
            dir,
            config,
            clock: self.clock,
            channels: self.channels,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// A running Herald. Dropping it stops the server.
pub struct TestHub {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The `default` tenant's server key.
    pub key: String,
    /// The server's shared state (store, hub, clock) for assertions that the API cannot make.
    pub state: AppState,
    pub http: reqwest::Client,
    dir: Arc<tempfile::TempDir>,
    config: Config,
    clock: Arc<dyn Clock>,
    channels: ChannelRegistry,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestHub {
    pub fn builder() -> TestHubBuilder {
        TestHubBuilder {
            config: Config::default(),
            clock: Arc::new(SystemClock),
            dir: None,
            channels: ChannelRegistry::default(),
        }
    }

    pub async fn start() -> TestHub {
        TestHub::builder().start().await
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops gracefully and starts again on the same data folder (a new port).
    pub async fn restart(mut self) -> TestHub {
        self.shutdown().await;
        let builder = TestHubBuilder {
            config: self.config.clone(),
            clock: self.clock.clone(),
            dir: Some(self.dir.clone()),
            channels: self.channels.clone(),
        };
        builder.start().await
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(crate::PATIENCE, task).await;
        }
    }

    /// Any request; `auth` is a bearer credential (server key, client token, operator key).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(auth) = auth {
            request = request.bearer_auth(auth);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// A request with a raw body and content type (for malformed input).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(auth) = auth {
            request = request.bearer_auth(auth);
        }
        read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(auth), None).await
    }

    pub async fn post(&self, path: &str, auth: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(auth), Some(body)).await
    }

    pub async fn put(&self, path: &str, auth: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(auth), Some(body)).await
    }

    pub async fn delete(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(auth), None).await
    }

    /// Posts events with the default tenant's key and insists they were accepted.
    pub async fn events(&self, body: Value) -> Value {
        let (status, response) = self.post("/v1/events", &self.key, body).await;
        assert_eq!(status, StatusCode::OK, "events refused: {response}");
        response
    }

    /// `user` joins `conversation` in `role`, named after their id, and insists it worked.
    pub async fn join(&self, conversation: &str, user: &str, role: &str) {
        let (status, body) = self
            .put(
                &format!("/v1/conversations/{conversation}/participants/{user}"),
                &self.key,
                json!({"role": role, "name": user}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "join refused: {body}");
    }

    /// A client token for `user` of the default tenant.
    pub async fn token(&self, user: &str) -> String {
        self.token_with(&self.key, user).await
    }

    pub async fn token_with(&self, key: &str, user: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/v1/users/{user}/tokens"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "token refused: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// Connects a live session as `user` (foreground).
    pub async fn live(&self, user: &str) -> LiveClient {
        LiveClient::connect(&self.base, &self.token(user).await, "").await
    }

    /// Connects with extra query parameters, e.g. `state=background`.
    pub async fn live_with(&self, user: &str, query: &str) -> LiveClient {
        LiveClient::connect(&self.base, &self.token(user).await, query).await
    }

    /// Waits until the notification engine has evaluated everything posted and fired every
    /// timer due at `now` (the clock the hub runs on), then a moment more so a step that was
    /// mid-commit has landed.
    pub async fn settle_engine(&self, now: time::OffsetDateTime) {
        let deadline = tokio::time::Instant::now() + crate::PATIENCE * 6;
        loop {
            self.state.engine.wake();
            let notify = &self.state.notify;
            let idle = notify.outbox(1).await.expect("outbox").is_empty()
                && notify
                    .due_threads(now, 1)
                    .await
                    .expect("due threads")
                    .is_empty()
                && notify
                    .due_notifications(now, 1)
                    .await
                    .expect("due notifications")
                    .is_empty();
            if idle {
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the engine never caught up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    pub fn temp_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, body)
}
