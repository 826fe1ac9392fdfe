//! A capture receiver: a real HTTP server on 127.0.0.1 that records every request it gets and
//! answers with scripted statuses — the customer's webhook endpoint or push backend in tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

use crate::PATIENCE;

#[derive(Debug, Clone)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the captured body is JSON")
    }
}

#[derive(Default)]
struct State {
    captured: Vec<Captured>,
    /// Answers to give, in order; then `default_status`.
    script: VecDeque<(u16, Vec<(String, String)>)>,
    default_status: u16,
}

#[derive(Clone)]
pub struct CaptureServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl CaptureServer {
    pub async fn start() -> CaptureServer {
        let state = Arc::new(Mutex::new(State {
            default_status: 200,
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move {
                    let mut s = state.lock().expect("capture state");
                    s.captured.push(Captured {
                        method,
                        path: uri.to_string(),
                        headers,
                        body,
                    });
                    let (status, headers) =
                        s.script.pop_front().unwrap_or((s.default_status, vec![]));
                    let mut response = StatusCode::from_u16(status)
                        .expect("status")
                        .into_response();
                    for (k, v) in headers {
                        response.headers_mut().insert(
                            axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                            v.parse().expect("value"),
                        );
                    }
                    response
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CaptureServer { url, state }
    }

    /// The next answers, in order (then the default).
    pub fn respond(&self, status: u16, headers: &[(&str, &str)]) {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.state
            .lock()
            .expect("capture state")
            .script
            .push_back((status, headers));
    }

    pub fn set_default(&self, status: u16) {
        self.state.lock().expect("capture state").default_status = status;
    }

    pub fn captured(&self) -> Vec<Captured> {
        self.state.lock().expect("capture state").captured.clone()
    }

    /// Waits (up to PATIENCE) until `n` requests arrived; answers them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let captured = self.captured();
            if captured.len() >= n {
                return captured;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} requests, got {}",
                captured.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
