//! Files: this one (the replies, what is recorded, and the running fake's handle), `builder.rs`
//! (options, TLS), `state.rs` (what the fake shares), `h2.rs` (connections, stream counting),
//! `jwt.rs` (provider token validation), `request.rs` (header and payload checks, answers).
//!
//! A fake APNs: a real HTTP/2 server on 127.0.0.1 that speaks Apple's provider API closely
//! enough to test a client against it (and to benchmark one).
//!
//! - `POST /3/device/{token}` over h2c (prior knowledge) or, with [`FakeApnsBuilder::tls`],
//!   over TLS with ALPN `h2` and a self-signed certificate ([`FakeApns::certificate_pem`]).
//! - The bearer provider token is checked like APNs does: an ES256 JWT whose signature
//!   verifies with the configured public key, `kid` = the key id, `iss` = the team id, `iat`
//!   at most an hour old (else 403 `ExpiredProviderToken`). A connection is bound to the key
//!   of its first token (another key → 403 `UnrelatedKeyIdInToken`), and a newer token less
//!   than 20 minutes (by `iat`) after the previous one on the same connection is answered 429
//!   `TooManyProviderTokenUpdates`.
//! - `apns-topic` is required (`.voip` for `voip` pushes), `apns-push-type` must be present
//!   and known, a `background` push must have priority 5, `apns-id` must be a canonical
//!   lowercase UUID, `apns-collapse-id` at most 64 bytes, the payload a JSON object of at most
//!   4096 bytes (5120 for VoIP; else 413 `PayloadTooLarge`).
//! - Success is **200 with headers only** (`apns-id` echoed, or one made up) and no body;
//!   errors are `{"reason": …}` (410 also has `timestamp`, in milliseconds).
//! - Answers are scriptable per device token ([`FakeApns::script`], [`Reply`]): any status
//!   and reason, 410 with a timestamp, 429 with `retry-after`, GOAWAY, and a stall (the
//!   request is never answered).
//! - Every request that passes the checks is recorded ([`ApnsRequest`]: headers, decoded
//!   payload, the raw JWT, the connection it came on); requests that fail them are kept as
//!   [`Rejection`]s. With recording off (benchmarks) only an [`Arrival`] per accepted request
//!   is kept: its token, wall-clock arrival time and status.
//! - The SETTINGS `MAX_CONCURRENT_STREAMS` is configurable; the fake measures how many
//!   requests it was handling at once ([`FakeApns::max_in_flight`]) and how many streams the
//!   client opened ([`FakeApns::streams_opened`]: refused and retried streams show up there).
//! - [`FakeApns::stop`] closes the listener and every connection; [`FakeApns::restart`]
//!   listens again on the same port.

mod builder;
mod h2;
mod jwt;
mod request;
mod state;

pub use builder::FakeApnsBuilder;
use builder::*;
use h2::*;
use request::*;
use state::*;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::PATIENCE;

/// The team id the fake expects unless told otherwise.
pub const TEAM_ID: &str = "TEAM123456";
/// The key id the fake expects unless told otherwise.
pub const KEY_ID: &str = "KEY1234567";

const MAX_PAYLOAD: usize = 4096;
const MAX_VOIP_PAYLOAD: usize = 5120;
const PUSH_TYPES: &[&str] = &[
    "alert",
    "background",
    "location",
    "voip",
    "complication",
    "fileprovider",
    "mdm",
    "liveactivity",
    "pushtotalk",
    "widgets",
    "controls",
];

/// How the fake answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200, headers only.
    Ok,
    /// Any status with `{"reason": …}`.
    Reason { status: u16, reason: String },
    /// 410 with `{"reason", "timestamp"}` (milliseconds since the epoch).
    Gone { reason: String, timestamp_ms: i64 },
    /// 429 `TooManyRequests`, with `retry-after` (seconds) if given.
    TooManyRequests { retry_after_s: Option<u64> },
    /// Sends GOAWAY on the request's connection (the connection then closes once its streams
    /// are done) and answers 503 `Shutdown`.
    GoAway,
    /// Never answers (until the client gives up on the stream or the fake stops).
    Stall,
}

impl Reply {
    pub fn reason(status: u16, reason: &str) -> Reply {
        Reply::Reason {
            status,
            reason: reason.to_string(),
        }
    }

    /// 410 `Unregistered`, as APNs confirmed at `at`.
    pub fn unregistered(at: OffsetDateTime) -> Reply {
        Reply::Gone {
            reason: "Unregistered".into(),
            timestamp_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
        }
    }

    pub fn bad_device_token() -> Reply {
        Reply::reason(400, "BadDeviceToken")
    }

    pub fn internal_server_error() -> Reply {
        Reply::reason(500, "InternalServerError")
    }

    pub fn service_unavailable() -> Reply {
        Reply::reason(503, "ServiceUnavailable")
    }
}

/// A request the fake accepted (it passed the protocol checks).
#[derive(Debug, Clone)]
pub struct ApnsRequest {
    pub token: String,
    pub headers: HeaderMap,
    /// The payload exactly as received.
    pub raw: Bytes,
    pub payload: Value,
    /// The provider token (without `bearer `).
    pub jwt: String,
    /// Which connection it came on (1, 2, … in accept order).
    pub connection: u64,
    /// The status it was answered with (0 for a stall).
    pub status: u16,
}

impl ApnsRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// When an accepted request arrived: what a benchmark needs to time event → provider request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub token: String,
    pub at: std::time::SystemTime,
    /// The status it was answered with (0 for a stall).
    pub status: u16,
}

/// A request that failed the fake's protocol checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub token: String,
    pub status: u16,
    pub reason: String,
}

/// A running fake APNs. Dropping it stops it.
pub struct FakeApns {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: Option<Tls>,
    running: Mutex<Option<Running>>,
}

impl FakeApns {
    /// Team [`TEAM_ID`], key [`KEY_ID`] verified with `keys::EC_PUBLIC_PEM`, h2c.
    pub fn builder() -> FakeApnsBuilder {
        FakeApnsBuilder {
            team_id: TEAM_ID.into(),
            key_id: KEY_ID.into(),
            public_key_pem: crate::keys::EC_PUBLIC_PEM.into(),
            topic: None,
            max_concurrent_streams: 1000,
            tls: false,
            record: true,
        }
    }

    pub async fn start() -> FakeApns {
        FakeApns::builder().start().await
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with TLS: an app's `apns.base_url`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The self-signed certificate a client must trust (TLS only).
    pub fn certificate_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.certificate_pem.as_str())
    }

    fn serve(&self, listener: TcpListener) {
        let (stop, stopped) = watch::channel(false);
        let shared = self.shared.clone();
        let acceptor = self.tls.as_ref().map(|t| t.acceptor.clone());
        let accept = tokio::spawn(accept_loop(listener, shared, acceptor, stopped));
        *lock(&self.running) = Some(Running { stop, accept });
    }

    /// Stops listening and closes every connection (abruptly, like a crashed server).
    pub async fn stop(&self) {
        let running = lock(&self.running).take();
        if let Some(running) = running {
            let _ = running.stop.send(true);
            let _ = running.accept.await;
        }
    }

    /// Listens again on the same port after [`stop`](Self::stop).
    pub async fn restart(&self) {
        self.stop().await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "cannot listen on {} again: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
    }

    /// The next answers to requests for `token`, in order; then the default.
    pub fn script(&self, token: &str, replies: Vec<Reply>) {
        lock(&self.shared.state)
            .scripts
            .entry(token.to_string())
            .or_default()
            .extend(replies);
    }

    /// The answer to every request without a scripted one (default: 200).
    pub fn set_default(&self, reply: Reply) {
        lock(&self.shared.state).default = Some(reply);
    }

    /// Every accepted request waits this long before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.state).latency = latency;
    }

    /// Sends GOAWAY on every open connection.
    pub fn goaway_all(&self) {
        for connection in lock(&self.shared.live).values() {
            connection.goaway.notify_one();
        }
    }

    /// Every accepted request so far, in arrival order.
    pub fn requests(&self) -> Vec<ApnsRequest> {
        lock(&self.shared.state).requests.clone()
    }

    /// The accepted requests for one device token.
    pub fn requests_for(&self, token: &str) -> Vec<ApnsRequest> {
        lock(&self.shared.state)
            .requests
            .iter()
            .filter(|r| r.token == token)
            .cloned()
            .collect()
    }

    /// Every accepted request so far as an [`Arrival`] (kept whether recording is on or not).
    pub fn arrivals(&self) -> Vec<Arrival> {
        lock(&self.shared.state).arrivals.clone()
    }

    /// How many requests were accepted so far.
    pub fn accepted(&self) -> usize {
        *self.shared.recorded.borrow()
    }

    /// Requests that failed the protocol checks.
    pub fn rejections(&self) -> Vec<Rejection> {
        lock(&self.shared.state).rejections.clone()
    }

    pub fn clear(&self) {
        let mut state = lock(&self.shared.state);
        state.requests.clear();
        state.arrivals.clear();
        state.rejections.clear();
        self.shared.recorded.send_replace(0);
    }

    /// Waits (up to `PATIENCE`) until at least `n` requests were accepted.
    pub async fn wait_for(&self, n: usize) -> Vec<ApnsRequest> {
        let mut recorded = self.shared.recorded.subscribe();
        let reached = tokio::time::timeout(PATIENCE, recorded.wait_for(|&count| count >= n));
        match reached.await {
            Ok(Ok(_)) => self.requests(),
            _ => panic!(
                "expected {n} APNs requests, the fake accepted {} (rejected: {:?})",
                self.requests().len(),
                self.rejections()
            ),
        }
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// HTTP/2 streams clients opened so far. More than the requests handled means the server
    /// refused streams (a client over MAX_CONCURRENT_STREAMS) and the client sent them again.
    pub fn streams_opened(&self) -> u64 {
        self.shared.streams.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (over every start).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeApns {
    fn drop(&mut self) {
        if let Some(running) = lock(&self.running).take() {
            let _ = running.stop.send(true);
            running.accept.abort();
        }
    }
}
