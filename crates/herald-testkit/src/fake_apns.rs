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

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

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

pub struct FakeApnsBuilder {
    team_id: String,
    key_id: String,
    public_key_pem: String,
    topic: Option<String>,
    max_concurrent_streams: u32,
    tls: bool,
    record: bool,
}

impl FakeApnsBuilder {
    /// The team and key the provider token must name.
    pub fn credentials(mut self, team_id: &str, key_id: &str, public_key_pem: &str) -> Self {
        self.team_id = team_id.to_string();
        self.key_id = key_id.to_string();
        self.public_key_pem = public_key_pem.to_string();
        self
    }

    /// Only this bundle id (and its `.voip` topic) may be pushed to; others get 400
    /// `TopicDisallowed`.
    pub fn topic(mut self, bundle_id: &str) -> Self {
        self.topic = Some(bundle_id.to_string());
        self
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS (default 1000, like APNs after authentication).
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_concurrent_streams = n;
        self
    }

    /// Serves TLS (ALPN h2) with a self-signed certificate for 127.0.0.1 and localhost.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Whether to keep every request (default on; benchmarks turn it off).
    pub fn record(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    pub async fn start(self) -> FakeApns {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let decoding_key = DecodingKey::from_ec_pem(self.public_key_pem.as_bytes())
            .expect("the fake's public key is a P-256 PEM");
        let tls = self.tls.then(self_signed);
        let shared = Arc::new(Shared {
            team_id: self.team_id,
            key_id: self.key_id,
            decoding_key,
            topic: self.topic,
            max_concurrent_streams: self.max_concurrent_streams,
            record: self.record,
            state: Mutex::new(State::default()),
            verified: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            streams: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
            recorded: watch::channel(0).0,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let fake = FakeApns {
            shared,
            addr,
            tls,
            running: Mutex::new(None),
        };
        fake.serve(listener);
        fake
    }
}

struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    certificate_pem: String,
}

fn self_signed() -> Tls {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("a self-signed certificate");
    let cert_der = certified.cert.der().clone();
    let key_der =
        rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .expect("the certificate and key match");
    config.alpn_protocols = vec![b"h2".to_vec()];
    Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        certificate_pem: certified.cert.pem(),
    }
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    default: Option<Reply>,
    requests: Vec<ApnsRequest>,
    arrivals: Vec<Arrival>,
    rejections: Vec<Rejection>,
    latency: Duration,
}

/// A provider token that verified.
#[derive(Clone)]
struct Verified {
    kid: String,
    iat: i64,
}

struct Shared {
    team_id: String,
    key_id: String,
    decoding_key: DecodingKey,
    topic: Option<String>,
    max_concurrent_streams: u32,
    record: bool,
    state: Mutex<State>,
    /// Signature checks are cached per token, as a real server would.
    verified: Mutex<HashMap<String, Result<Verified, &'static str>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    connections: AtomicU64,
    /// HTTP/2 streams clients opened (HEADERS frames received).
    streams: AtomicU64,
    /// Open connections, to send them GOAWAY.
    live: Mutex<HashMap<u64, Arc<Connection>>>,
    recorded: watch::Sender<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the fake knows about one connection.
struct Connection {
    id: u64,
    goaway: Notify,
    /// The key of the first token on this connection, and the newest token seen.
    auth: Mutex<Option<(String, String, i64)>>,
}

struct Running {
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
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

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let for_connections = stopped.clone();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let tls = tls.clone();
                let stopped = for_connections.clone();
                connections.spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(Ok(stream)) =
                                tokio::time::timeout(PATIENCE, acceptor.accept(stream)).await
                            {
                                serve_connection(stream, shared, stopped).await;
                            }
                        }
                        None => serve_connection(stream, shared, stopped).await,
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Closes every connection: their sockets are dropped with their tasks.
    connections.shutdown().await;
}

async fn serve_connection<IO>(io: IO, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let connection = Arc::new(Connection {
        id,
        goaway: Notify::new(),
        auth: Mutex::new(None),
    });
    lock(&shared.live).insert(id, connection.clone());
    let io = Sniffer {
        io,
        shared: shared.clone(),
        preface_left: 24,
        header: [0; 9],
        have: 0,
        skip: 0,
    };
    let service = {
        let shared = shared.clone();
        let connection = connection.clone();
        let stopped = stopped.clone();
        hyper::service::service_fn(move |request| {
            handle(request, shared.clone(), connection.clone(), stopped.clone())
        })
    };
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.max_concurrent_streams(shared.max_concurrent_streams);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = connection.goaway.notified() => conn.as_mut().graceful_shutdown(),
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
    lock(&shared.live).remove(&id);
}

/// Reads the frame headers of what a client sends, to count the streams it opens (HEADERS
/// frames): a stream the server refuses (over its MAX_CONCURRENT_STREAMS) and the client
/// retries shows up as one stream more than requests handled.
struct Sniffer<IO> {
    io: IO,
    shared: Arc<Shared>,
    /// Bytes of the connection preface still to skip.
    preface_left: usize,
    header: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to skip.
    skip: usize,
}

impl<IO> Sniffer<IO> {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = if self.preface_left > 0 {
                let n = self.preface_left.min(data.len());
                self.preface_left -= n;
                n
            } else if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                n
            } else {
                let n = (9 - self.have).min(data.len());
                self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
                self.have += n;
                if self.have == 9 {
                    self.have = 0;
                    let h = self.header;
                    self.skip =
                        usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                    if h[3] == 0x1 {
                        self.shared.streams.fetch_add(1, Ordering::SeqCst);
                    }
                }
                n
            };
            data = &data[n..];
        }
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Sniffer<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled {
            let read = buf.filled()[before..].to_vec();
            self.feed(&read);
        }
        polled
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Sniffer<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn start(shared: &'a Shared) -> InFlight<'a> {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn answer(
    status: u16,
    apns_id: &str,
    body: Option<Value>,
    extra: &[(&str, String)],
) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).expect("status"))
        .header("apns-id", apns_id);
    for (name, value) in extra {
        builder = builder.header(*name, value);
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(&body).expect("JSON"))
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).expect("response")
}

fn error(status: u16, reason: &str, apns_id: &str) -> Response<Full<Bytes>> {
    answer(status, apns_id, Some(json!({"reason": reason})), &[])
}

fn is_canonical_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

impl Shared {
    fn verify(&self, jwt: &str) -> Result<Verified, &'static str> {
        if let Some(known) = lock(&self.verified).get(jwt) {
            return known.clone();
        }
        let verified = self.verify_uncached(jwt);
        lock(&self.verified).insert(jwt.to_string(), verified.clone());
        verified
    }

    fn verify_uncached(&self, jwt: &str) -> Result<Verified, &'static str> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "InvalidProviderToken")?;
        if header.alg != Algorithm::ES256 {
            return Err("InvalidProviderToken");
        }
        let kid = header.kid.ok_or("InvalidProviderToken")?;
        if kid != self.key_id {
            return Err("InvalidProviderToken");
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(jwt, &self.decoding_key, &validation)
            .map_err(|_| "InvalidProviderToken")?
            .claims;
        if claims["iss"].as_str() != Some(self.team_id.as_str()) {
            return Err("InvalidProviderToken");
        }
        let iat = claims["iat"].as_i64().ok_or("InvalidProviderToken")?;
        Ok(Verified { kid, iat })
    }

    fn reject(
        &self,
        token: &str,
        status: u16,
        reason: &str,
        apns_id: &str,
    ) -> Response<Full<Bytes>> {
        lock(&self.state).rejections.push(Rejection {
            token: token.to_string(),
            status,
            reason: reason.to_string(),
        });
        error(status, reason, apns_id)
    }

    /// Apple's checks, in roughly Apple's order. `Err` is the rejection to send.
    fn check(
        &self,
        connection: &Connection,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<(String, String), (u16, &'static str)> {
        if method != Method::POST {
            return Err((405, "MethodNotAllowed"));
        }
        let token = path.strip_prefix("/3/device/").ok_or((404, "BadPath"))?;
        if token.is_empty() {
            return Err((400, "MissingDeviceToken"));
        }
        if !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err((400, "BadDeviceToken"));
        }
        for name in [
            "authorization",
            "apns-push-type",
            "apns-topic",
            "apns-priority",
            "apns-expiration",
            "apns-id",
            "apns-collapse-id",
        ] {
            if headers.get_all(name).iter().count() > 1 {
                return Err((400, "DuplicateHeaders"));
            }
        }
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let jwt = text("authorization")
            .and_then(|a| {
                a.strip_prefix("bearer ")
                    .or_else(|| a.strip_prefix("Bearer "))
            })
            .ok_or((403, "MissingProviderToken"))?;
        let verified = self.verify(jwt).map_err(|reason| (403, reason))?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if now - verified.iat > 3600 {
            return Err((403, "ExpiredProviderToken"));
        }
        {
            let mut auth = lock(&connection.auth);
            match auth.as_mut() {
                None => *auth = Some((verified.kid.clone(), jwt.to_string(), verified.iat)),
                Some((kid, _, _)) if *kid != verified.kid => {
                    return Err((403, "UnrelatedKeyIdInToken"));
                }
                Some((_, current, current_iat)) => {
                    if current != jwt && verified.iat > *current_iat {
                        if verified.iat - *current_iat < 20 * 60 {
                            return Err((429, "TooManyProviderTokenUpdates"));
                        }
                        *current = jwt.to_string();
                        *current_iat = verified.iat;
                    }
                }
            }
        }
        let topic = text("apns-topic").ok_or((400, "MissingTopic"))?;
        let push_type = text("apns-push-type").ok_or((400, "InvalidPushType"))?;
        if !PUSH_TYPES.contains(&push_type) {
            return Err((400, "InvalidPushType"));
        }
        if push_type == "voip" && !topic.ends_with(".voip") {
            return Err((400, "BadTopic"));
        }
        if let Some(bundle) = &self.topic {
            let base = topic.strip_suffix(".voip").unwrap_or(topic);
            if base != bundle {
                return Err((400, "TopicDisallowed"));
            }
        }
        let priority = text("apns-priority").unwrap_or("10");
        if !matches!(priority, "1" | "5" | "10") || (push_type == "background" && priority != "5") {
            return Err((400, "BadPriority"));
        }
        if let Some(id) = headers.get("apns-id")
            && !id.to_str().is_ok_and(is_canonical_uuid)
        {
            return Err((400, "BadMessageId"));
        }
        if let Some(expiration) = headers.get("apns-expiration")
            && !expiration.to_str().is_ok_and(|e| e.parse::<u64>().is_ok())
        {
            return Err((400, "BadExpirationDate"));
        }
        if headers
            .get("apns-collapse-id")
            .is_some_and(|c| c.len() > 64)
        {
            return Err((400, "BadCollapseId"));
        }
        Ok((token.to_string(), jwt.to_string()))
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    mut stopped: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_flight = InFlight::start(&shared);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let token = path.strip_prefix("/3/device/").unwrap_or("").to_string();
    let apns_id = parts
        .headers
        .get("apns-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_canonical_uuid(id))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(shared.reject(&token, 413, "PayloadTooLarge", &apns_id)),
    };
    let (token, jwt) = match shared.check(&connection, &parts.method, &path, &parts.headers) {
        Ok(checked) => checked,
        Err((status, reason)) => return Ok(shared.reject(&token, status, reason, &apns_id)),
    };
    let voip = parts
        .headers
        .get("apns-push-type")
        .is_some_and(|t| t == "voip");
    let limit = if voip { MAX_VOIP_PAYLOAD } else { MAX_PAYLOAD };
    if body.is_empty() {
        return Ok(shared.reject(&token, 400, "PayloadEmpty", &apns_id));
    }
    if body.len() > limit {
        return Ok(shared.reject(&token, 413, "PayloadTooLarge", &apns_id));
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        // APNs has no reason for a payload that is not a JSON dictionary; it is empty to it.
        _ => return Ok(shared.reject(&token, 400, "PayloadEmpty", &apns_id)),
    };

    let (reply, latency) = {
        let mut state = lock(&shared.state);
        let scripted = state.scripts.get_mut(&token).and_then(VecDeque::pop_front);
        let reply = scripted
            .or_else(|| state.default.clone())
            .unwrap_or(Reply::Ok);
        (reply, state.latency)
    };
    let status = match &reply {
        Reply::Ok => 200,
        Reply::Reason { status, .. } => *status,
        Reply::Gone { .. } => 410,
        Reply::TooManyRequests { .. } => 429,
        Reply::GoAway => 503,
        Reply::Stall => 0,
    };
    let arrival = Arrival {
        token: token.clone(),
        at: std::time::SystemTime::now(),
        status,
    };
    if shared.record {
        let mut state = lock(&shared.state);
        state.arrivals.push(arrival);
        state.requests.push(ApnsRequest {
            token: token.clone(),
            headers: parts.headers.clone(),
            raw: body,
            payload,
            jwt,
            connection: connection.id,
            status,
        });
        let n = state.requests.len();
        drop(state);
        shared.recorded.send_replace(n);
    } else {
        let n = {
            let mut state = lock(&shared.state);
            state.arrivals.push(arrival);
            state.arrivals.len()
        };
        shared.recorded.send_replace(n);
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = match reply {
        Reply::Ok => answer(200, &apns_id, None, &[]),
        Reply::Reason { status, reason } => error(status, &reason, &apns_id),
        Reply::Gone {
            reason,
            timestamp_ms,
        } => answer(
            410,
            &apns_id,
            Some(json!({"reason": reason, "timestamp": timestamp_ms})),
            &[],
        ),
        Reply::TooManyRequests { retry_after_s } => {
            let extra: Vec<(&str, String)> = retry_after_s
                .map(|s| vec![("retry-after", s.to_string())])
                .unwrap_or_default();
            answer(
                429,
                &apns_id,
                Some(json!({"reason": "TooManyRequests"})),
                &extra,
            )
        }
        Reply::GoAway => {
            connection.goaway.notify_one();
            error(503, "Shutdown", &apns_id)
        }
        Reply::Stall => {
            // Until the fake stops; a client that gives up resets the stream and hyper drops
            // this future.
            let _ = stopped.wait_for(|s| *s).await;
            error(503, "Shutdown", &apns_id)
        }
    };
    Ok(response)
}
