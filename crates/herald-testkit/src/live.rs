//! A live-session client for tests.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::PATIENCE;

pub struct LiveClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `hello` frame.
    pub hello: Value,
}

impl LiveClient {
    pub async fn connect(base: &str, token: &str, query: &str) -> LiveClient {
        let url = format!(
            "{}/v1/live{}{}",
            base.replacen("http", "ws", 1),
            if query.is_empty() { "" } else { "?" },
            query
        );
        let mut request = url.into_client_request().expect("ws url");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("live session connects");
        let mut client = LiveClient {
            socket,
            hello: Value::Null,
        };
        client.hello = client.next().await;
        assert_eq!(client.hello["type"], "hello", "first frame is hello");
        client
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_string()))
            .await
            .expect("frame sent");
    }

    pub async fn resume(&mut self, positions: Value) {
        self.send(json!({"type": "resume", "positions": positions}))
            .await;
    }

    /// The next text frame as JSON (panics after [`PATIENCE`]).
    pub async fn next(&mut self) -> Value {
        self.try_next(PATIENCE).await.expect("a frame arrives")
    }

    /// The next text frame within `wait`, or `None` (also on close).
    pub async fn try_next(&mut self, wait: std::time::Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => {
                    return None;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next frame of a type, skipping others (e.g. `unread` while waiting for `event`).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Event frames until `caught_up` for `conversation`; returns their positions.
    pub async fn catch_up(&mut self, conversation: &str) -> Vec<u64> {
        let mut positions = vec![];
        loop {
            let frame = self.next().await;
            match frame["type"].as_str() {
                Some("event") if frame["conversation_id"] == conversation => {
                    positions.push(frame["position"].as_u64().expect("position"))
                }
                Some("caught_up") if frame["conversation_id"] == conversation => return positions,
                _ => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        // Drain until the server acknowledges the close.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.socket.next()).await {}
    }

    /// Drops the TCP connection without a close handshake (a network failure).
    pub fn drop_connection(self) {
        drop(self.socket);
    }
}
