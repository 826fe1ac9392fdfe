//! `sessions`: many idle live sessions held open in one Herald; its resident memory per session.
//!
//! One process may hold only 20,000 file descriptors, so the clients live in several child
//! processes (this binary again, `herald-bench sessions-client`), each connecting from its own
//! 127.0.0.x source address. Herald holds every session in its one process.
//!
//! Figures: sessions held (Herald's `herald_live_sessions` gauge and the clients' own count of
//! open sockets), Herald's anonymous resident memory (heap, `RssAnon`) and total `VmRSS` per
//! session (after − before, divided by the sessions), taken after every session has answered
//! a server heartbeat, and how many sessions were still open when the clients let go.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

use crate::Plan;
use crate::herald::Herald;
use crate::metrics;
use crate::scenarios::{http_client, live_request};
use crate::stats::Row;

/// Concurrent token requests during setup.
const MINTERS: usize = 32;
/// Connections each client process has in flight at once while connecting: keeps the accept
/// backlog from overflowing (an overflow costs a 1 s SYN retransmit, not a failure).
pub(crate) const CONNECTING: usize = 64;
/// How long a client process may take to connect its share.
pub(crate) const CONNECT_PATIENCE: Duration = Duration::from_secs(120);

pub async fn sessions(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let total = plan.sessions;
    let processes = plan.session_processes.min(total).max(1);
    let tokens = mint_tokens(server, total).await?;
    // Herald's idle heartbeat: the memory is read after every session has had one round trip,
    // so buffers a ping/pong allocates are counted.
    let heartbeat = Duration::from_millis(heartbeat_ms(server).await?);

    let before = memory(server.pid())?;
    let ws_url = server.live_url();
    let mut clients = Vec::with_capacity(processes);
    for (index, share) in tokens.chunks(total.div_ceil(processes)).enumerate() {
        // 127.0.0.2, .3, …: each process its own source address (and ephemeral port range).
        let source = Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(index).context("processes")?);
        clients.push(SessionClient::spawn("sessions-client", &ws_url, source, share).await?);
    }
    let connect_started = Instant::now();
    let mut connected = 0;
    let mut failed = 0;
    for client in &mut clients {
        let line = client.line(CONNECT_PATIENCE).await?;
        let (ok, bad) = parse_counts(&line, "connected")?;
        connected += ok;
        failed += bad;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    eprintln!("herald-bench: {connected} sessions open ({failed} failed) in {connect_secs:.1} s");

    let hold = if plan.quick {
        Duration::from_secs(2)
    } else {
        heartbeat + Duration::from_secs(5)
    };
    tokio::time::sleep(hold).await;
    let after = memory(server.pid())?;
    let metrics = metrics::scrape(&http_client()?, &server.url("/metrics")).await?;
    let gauge = metrics::value(&metrics, "herald_live_sessions");

    let mut still_open = 0;
    for client in &mut clients {
        still_open += client.stop().await?;
    }
    let held = connected.max(1) as f64;
    let per_anon = (after.anon_kb.saturating_sub(before.anon_kb)) as f64 * 1024.0 / held;
    let per_rss = (after.rss_kb.saturating_sub(before.rss_kb)) as f64 * 1024.0 / held;
    Ok(vec![
        Row::new(
            "sessions",
            "sessions opened (client processes × source addresses)",
            connected as f64,
            "sessions",
            "19,000",
        ),
        Row::new(
            "sessions",
            "sessions refused/failed",
            failed as f64,
            "sessions",
            "0",
        ),
        Row::new(
            "sessions",
            "sessions Herald holds (herald_live_sessions)",
            gauge,
            "sessions",
            "-",
        ),
        Row::new(
            "sessions",
            "sessions still open after the hold",
            still_open as f64,
            "sessions",
            "-",
        ),
        Row::new("sessions", "time to open them all", connect_secs, "s", "-"),
        Row::new(
            "sessions",
            "Herald heap (RssAnon) per session",
            per_anon,
            "bytes",
            "≤ 8 KB (8,192 bytes)",
        ),
        Row::new(
            "sessions",
            "Herald VmRSS per session",
            per_rss,
            "bytes",
            "-",
        ),
        Row::new(
            "sessions",
            "Herald VmRSS holding them",
            after.rss_kb as f64 / 1024.0,
            "MiB",
            "-",
        ),
    ])
}

/// One token per user, minted through the API.
pub(crate) async fn mint_tokens(server: &Herald, users: usize) -> anyhow::Result<Vec<String>> {
    let client = http_client()?;
    let mut minters = tokio::task::JoinSet::new();
    for worker in 0..MINTERS.min(users) {
        let client = client.clone();
        let base = server.base.clone();
        let key = server.key.clone();
        minters.spawn(async move {
            let mut minted = Vec::new();
            for i in (worker..users).step_by(MINTERS) {
                let answer: Value = client
                    .post(format!("{base}/v1/users/session-user-{i}/tokens"))
                    .bearer_auth(&key)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                minted.push(answer["token"].as_str().context("token")?.to_string());
            }
            anyhow::Ok(minted)
        });
    }
    let mut tokens = Vec::with_capacity(users);
    while let Some(done) = minters.join_next().await {
        tokens.extend(done??);
    }
    Ok(tokens)
}

/// The heartbeat Herald announces in its hello frame.
async fn heartbeat_ms(server: &Herald) -> anyhow::Result<u64> {
    let probe: Value = http_client()?
        .post(server.url("/v1/users/session-probe/tokens"))
        .bearer_auth(&server.key)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = probe["token"].as_str().context("token")?;
    let ws_url = server.live_url();
    let (mut socket, _) = tokio_tungstenite::connect_async(live_request(&ws_url, token)?).await?;
    let hello = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .context("no hello within 10 s")?
        .context("closed before hello")??;
    let hello: Value = serde_json::from_str(hello.to_text()?)?;
    let _ = socket.close(None).await;
    hello["heartbeat_ms"]
        .as_u64()
        .context("hello has heartbeat_ms")
}

pub(crate) struct Memory {
    pub rss_kb: u64,
    pub anon_kb: u64,
}

pub(crate) fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{name} in /proc/{pid}/status"))
    };
    Ok(Memory {
        rss_kb: field("VmRSS:")?,
        anon_kb: field("RssAnon:")?,
    })
}

/// `"<word> <ok> <failed>"` from a client process.
pub(crate) fn parse_counts(line: &str, word: &str) -> anyhow::Result<(usize, usize)> {
    let mut parts = line.split_whitespace();
    if parts.next() != Some(word) {
        bail!("client process said {line:?}, expected {word:?}");
    }
    let ok = parts.next().context("count")?.parse()?;
    let bad = parts.next().unwrap_or("0").parse()?;
    Ok((ok, bad))
}

/// A child process holding a share of the sessions (live sessions, or CometD clients).
pub(crate) struct SessionClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl SessionClient {
    /// `mode`: `sessions-client` or `cometd-client`; `url` the address it connects to.
    pub(crate) async fn spawn(
        mode: &str,
        url: &str,
        source: Ipv4Addr,
        tokens: &[String],
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([mode, url, &source.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a sessions-client process")?;
        let mut stdin = child.stdin.take().context("stdin is piped")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout is piped")?);
        let mut list = tokens.join("\n");
        list.push_str("\n\n");
        stdin.write_all(list.as_bytes()).await?;
        stdin.flush().await?;
        Ok(SessionClient {
            child,
            stdin: Some(stdin),
            stdout,
        })
    }

    pub(crate) async fn line(&mut self, patience: Duration) -> anyhow::Result<String> {
        let mut line = String::new();
        tokio::time::timeout(patience, self.stdout.read_line(&mut line))
            .await
            .context("client process silent")??;
        Ok(line)
    }

    /// Closes its stdin (the signal to let go); answers how many sessions were still open.
    pub(crate) async fn stop(&mut self) -> anyhow::Result<usize> {
        drop(self.stdin.take());
        let line = self.line(Duration::from_secs(60)).await?;
        let (open, _) = parse_counts(&line, "open")?;
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        Ok(open)
    }
}

/// `herald-bench sessions-client <ws-url> <source-ip>`: reads client tokens from stdin up to an
/// empty line, opens one live session per token from `source-ip`, prints `connected <ok>
/// <failed>`, keeps them open (answering Herald's pings) until stdin closes, then prints `open
/// <n>` — how many were still open — and exits.
pub async fn client_main(ws_url: &str, source: &str) -> anyhow::Result<()> {
    let source: IpAddr = source.parse().context("source address")?;
    let url = url_addr(ws_url)?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let tokens = read_tokens(&mut stdin).await?;
    let open = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    for token in tokens.iter() {
        let request = live_request(ws_url, token)?;
        let (open, permits, done_tx) = (open.clone(), permits.clone(), done_tx.clone());
        tokio::spawn(async move {
            let permit = permits.acquire_owned().await;
            let socket = match connect(source, url, request).await {
                Ok(socket) => socket,
                Err(_) => {
                    let _ = done_tx.send(false);
                    return;
                }
            };
            drop(permit);
            open.fetch_add(1, Ordering::Relaxed);
            let _ = done_tx.send(true);
            // Reading answers Herald's pings (tungstenite replies with a pong by itself).
            let mut socket = socket;
            while let Some(Ok(_)) = socket.next().await {}
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(done_tx);
    report_and_hold(done_rx, tokens.len(), &open, &mut stdin).await
}

/// A client process's stdin, line by line.
pub(crate) type Stdin = tokio::io::Lines<BufReader<tokio::io::Stdin>>;

/// The client tokens a client process is given: stdin's lines up to an empty one.
pub(crate) async fn read_tokens(stdin: &mut Stdin) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    while let Some(line) = stdin.next_line().await? {
        if line.is_empty() {
            break;
        }
        tokens.push(line);
    }
    Ok(tokens)
}

/// Once each of `clients` has told `done` whether it got through, prints `connected <ok>
/// <failed>`; holds until the parent closes stdin, then prints `open <n>` (`open` now).
pub(crate) async fn report_and_hold(
    mut done: tokio::sync::mpsc::UnboundedReceiver<bool>,
    clients: usize,
    open: &AtomicUsize,
    stdin: &mut Stdin,
) -> anyhow::Result<()> {
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..clients {
        match done.recv().await {
            Some(true) => ok += 1,
            Some(false) => failed += 1,
            None => break,
        }
    }
    println!("connected {ok} {failed}");
    while stdin.next_line().await?.is_some() {}
    println!("open {}", open.load(Ordering::Relaxed));
    Ok(())
}

fn url_addr(ws_url: &str) -> anyhow::Result<SocketAddr> {
    let rest = ws_url.strip_prefix("ws://").context("ws:// url")?;
    let host_port = rest.split('/').next().context("host")?;
    host_port.parse().context("Herald listens on an IP address")
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(
    source: IpAddr,
    server: SocketAddr,
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> anyhow::Result<Socket> {
    let tcp = tokio::net::TcpSocket::new_v4()?;
    tcp.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(30), tcp.connect(server))
        .await
        .context("connect timed out")??;
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream).await?;
    // The hello frame: the session is registered.
    socket
        .next()
        .await
        .context("closed before hello")?
        .context("hello")?;
    Ok(socket)
}
