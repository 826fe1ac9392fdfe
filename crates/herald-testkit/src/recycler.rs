//! A stand-in for a provider front end that recycles HTTP/2 connections: an h2c (prior
//! knowledge) reverse proxy on 127.0.0.1 that serves Herald and forwards every request to an
//! upstream (a fake APNs or FCM speaking h2c) over its own HTTP/2 client.
//!
//! After [`Recycler::start`]'s `every` requests on one connection it shuts that connection down
//! gracefully, as hyper's server does (RFC 9113 §6.8): a GOAWAY with the last stream id
//! 2^31-1, a PING round trip, then a GOAWAY with the last stream id it processed. Requests
//! already forwarded are answered; streams that still arrive on that connection are refused
//! with `REFUSED_STREAM` (RFC 9113 §8.7: not processed) and streams above the final GOAWAY's
//! last stream id are never seen: the client must send both again on a new connection. It
//! records how many connections it accepted ([`Recycler::connections`]), how many it began to
//! close ([`Recycler::recycled`]), how many requests it forwarded ([`Recycler::forwarded`])
//! and how many streams it refused ([`Recycler::refused`]).
//!
//! ```ignore
//! let fcm = FakeFcm::start().await;
//! let recycler = Recycler::start(&fcm.url(), 50).await;
//! let app = json!({"fcm": {"service_account": fcm.service_account(), "base_url": recycler.url()}});
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Headers that belong to one hop, not to the request or answer.
const HOP: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
];

struct Shared {
    upstream: String,
    client: reqwest::Client,
    every: u64,
    connections: AtomicU64,
    recycled: AtomicU64,
    forwarded: AtomicU64,
    refused: AtomicU64,
}

/// A running recycler. Dropping it stops it and closes its connections.
pub struct Recycler {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Recycler {
    /// Listens on 127.0.0.1, forwards to `upstream` (`http://host:port`, h2c) and closes each
    /// connection gracefully after `every` requests on it (at least 1).
    pub async fn start(upstream: &str, every: u64) -> Recycler {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(crate::PATIENCE)
            .build()
            .expect("the recycler's client");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client,
            every: every.max(1),
            connections: AtomicU64::new(0),
            recycled: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        Recycler {
            shared,
            addr,
            stop,
            accept,
        }
    }

    /// `http://127.0.0.1:port`: the base URL to give Herald instead of the upstream's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections the recycler began to shut down (each after `every` requests).
    pub fn recycled(&self) -> u64 {
        self.shared.recycled.load(Ordering::SeqCst)
    }

    /// Requests forwarded to the upstream (whatever it answered).
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Streams refused (`REFUSED_STREAM`) on connections being closed.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Recycler {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
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
                connections.spawn(serve_connection(stream, shared.clone(), for_connections.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// The requests seen on one connection, and the signal to close it.
struct Connection {
    requests: AtomicU64,
    full: Notify,
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let connection = Arc::new(Connection {
        requests: AtomicU64::new(0),
        full: Notify::new(),
    });
    let service = {
        let shared = shared.clone();
        let connection = connection.clone();
        hyper::service::service_fn(move |request| {
            let n = connection.requests.fetch_add(1, Ordering::SeqCst) + 1;
            if n == shared.every {
                connection.full.notify_one();
            }
            let shared = shared.clone();
            async move {
                if n > shared.every {
                    // hyper resets the stream with the h2 reason of the service's error.
                    shared.refused.fetch_add(1, Ordering::SeqCst);
                    return Err(h2::Error::from(h2::Reason::REFUSED_STREAM));
                }
                Ok(forward(request, shared).await)
            }
        })
    };
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = connection.full.notified() => {}
        _ = stopped.wait_for(|s| *s) => return,
    }
    shared.recycled.fetch_add(1, Ordering::SeqCst);
    // GOAWAY; the streams it processed finish, then the connection closes.
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped.wait_for(|s| *s) => {}
    }
}

async fn forward(request: Request<Incoming>, shared: Arc<Shared>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut upstream = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !HOP.contains(&name.as_str()) {
            upstream = upstream.header(name, value);
        }
    }
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let Ok(answer) = upstream.send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    let Ok(body) = answer.bytes().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    response
        .body(Full::new(body))
        .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
