//! Accepting connections, serving HTTP/2 on them, counting the streams clients open and the
//! requests in flight.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::PATIENCE;

use super::*;

pub(super) async fn accept_loop(
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

pub(super) async fn serve_connection<IO>(
    io: IO,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) where
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
pub(super) struct Sniffer<IO> {
    pub(super) io: IO,
    pub(super) shared: Arc<Shared>,
    /// Bytes of the connection preface still to skip.
    pub(super) preface_left: usize,
    pub(super) header: [u8; 9],
    pub(super) have: usize,
    /// Payload bytes of the current frame still to skip.
    pub(super) skip: usize,
}

impl<IO> Sniffer<IO> {
    pub(super) fn feed(&mut self, mut data: &[u8]) {
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
pub(super) struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    pub(super) fn start(shared: &'a Shared) -> InFlight<'a> {
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
