//! `cometd`: many idle CometD long-polling clients held in one Herald, measured exactly as the
//! `sessions` scenario measures idle live sessions, so the two figures compare: each client
//! handshakes with its own user's token, has its first `/meta/connect` answered, and from then
//! on always has one `/meta/connect` held (re-polling the moment one returns, as the JS client
//! does). The clients live in child processes (`herald-bench cometd-client`), each from its own
//! 127.0.0.x source address; every held connect is one HTTP/1.1 connection.
//!
//! Figures: clients held (Herald's `herald_cometd_clients` gauge and the clients' own count),
//! Herald's `RssAnon` and `VmRSS` per client (after − before, divided by the clients), taken
//! after a whole `cometd.timeout_ms` cycle so the buffers of a re-poll are counted.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::Instant;

use crate::Plan;
use crate::herald::Herald;
use crate::metrics;
use crate::scenarios::http_client;
use crate::sessions::{
    CONNECT_PATIENCE, CONNECTING, SessionClient, memory, mint_tokens, parse_counts, read_tokens,
    report_and_hold,
};
use crate::stats::Row;

/// Herald's default `cometd.timeout_ms`: how long a connect is held before it is answered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(25);

pub async fn cometd(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let total = plan.sessions;
    let processes = plan.session_processes.min(total).max(1);
    let tokens = mint_tokens(server, total).await?;
    let before = memory(server.pid())?;
    let mut clients = Vec::with_capacity(processes);
    for (index, share) in tokens.chunks(total.div_ceil(processes)).enumerate() {
        let source = Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(index).context("processes")?);
        let client = SessionClient::spawn("cometd-client", &server.base, source, share).await?;
        clients.push(client);
    }
    let connect_started = Instant::now();
    let (mut connected, mut failed) = (0, 0);
    for client in &mut clients {
        let (ok, bad) = parse_counts(&client.line(CONNECT_PATIENCE).await?, "connected")?;
        connected += ok;
        failed += bad;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    eprintln!(
        "herald-bench: {connected} CometD clients connected ({failed} failed) in {connect_secs:.1} s"
    );

    let hold = if plan.quick {
        Duration::from_secs(2)
    } else {
        CONNECT_TIMEOUT + Duration::from_secs(5)
    };
    tokio::time::sleep(hold).await;
    let after = memory(server.pid())?;
    let metrics = metrics::scrape(&http_client()?, &server.url("/metrics")).await?;
    let gauge = metrics::value(&metrics, "herald_cometd_clients");
    let mut still_open = 0;
    for client in &mut clients {
        still_open += client.stop().await?;
    }
    let held = connected.max(1) as f64;
    let per_anon = after.anon_kb.saturating_sub(before.anon_kb) as f64 * 1024.0 / held;
    let per_rss = after.rss_kb.saturating_sub(before.rss_kb) as f64 * 1024.0 / held;
    let row = |metric: &str, value: f64, unit: &'static str, target: &'static str| {
        Row::new("cometd", metric, value, unit, target)
    };
    Ok(vec![
        row(
            "CometD clients connected (handshake + connect)",
            connected as f64,
            "clients",
            "-",
        ),
        row("clients refused/failed", failed as f64, "clients", "0"),
        row(
            "clients Herald holds (herald_cometd_clients)",
            gauge,
            "clients",
            "-",
        ),
        row(
            "clients still polling after the hold",
            still_open as f64,
            "clients",
            "-",
        ),
        row("time to connect them all", connect_secs, "s", "-"),
        row(
            "Herald heap (RssAnon) per client",
            per_anon,
            "bytes",
            "≤ a live session's",
        ),
        row("Herald VmRSS per client", per_rss, "bytes", "-"),
        row(
            "Herald VmRSS holding them",
            after.rss_kb as f64 / 1024.0,
            "MiB",
            "-",
        ),
    ])
}

/// `herald-bench cometd-client <base-url> <source-ip>`: reads client tokens from stdin up to an
/// empty line; for each, from `source-ip`, handshakes and has its first connect answered, then
/// keeps one connect held at all times. Prints `connected <ok> <failed>` once every client has
/// got that far, holds until stdin closes, then prints `open <n>` — how many clients' connects
/// were still answered successfully — and exits.
pub async fn client_main(base: &str, source: &str) -> anyhow::Result<()> {
    let source: IpAddr = source.parse().context("source address")?;
    let http = reqwest::Client::builder()
        .local_address(source)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(CONNECT_TIMEOUT + Duration::from_secs(30))
        .build()?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let tokens = read_tokens(&mut stdin).await?;
    let open = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let mut polls = tokio::task::JoinSet::new();
    for token in &tokens {
        let (http, base, token) = (http.clone(), base.to_string(), token.clone());
        let (open, permits, done_tx) = (open.clone(), permits.clone(), done_tx.clone());
        polls.spawn(async move {
            let permit = permits.acquire_owned().await;
            let Ok(client_id) = start(&http, &base, &token).await else {
                let _ = done_tx.send(false);
                return;
            };
            drop(permit);
            open.fetch_add(1, Ordering::Relaxed);
            let _ = done_tx.send(true);
            while connect(&http, &base, &client_id).await.is_ok() {}
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(done_tx);
    report_and_hold(done_rx, tokens.len(), &open, &mut stdin).await?;
    polls.abort_all();
    Ok(())
}

/// Handshake and the first connect (answered at once): the client id.
async fn start(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let handshake = json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"],
        "ext": {"authentication": {"token": token}}}]);
    let reply = bayeux(http, &format!("{base}/cometd/handshake"), handshake).await?;
    let client_id = reply[0]["clientId"]
        .as_str()
        .context("clientId")?
        .to_string();
    // The JS client's first connect asks for no wait (`advice.timeout` 0).
    let first = json!([{"channel": "/meta/connect", "clientId": client_id,
        "connectionType": "long-polling", "advice": {"timeout": 0}}]);
    connected(bayeux(http, &format!("{base}/cometd/connect"), first).await?)?;
    Ok(client_id)
}

/// One held `/meta/connect`, answered when Herald has something or its timeout ran out.
async fn connect(http: &reqwest::Client, base: &str, client_id: &str) -> anyhow::Result<()> {
    let body = json!([{"channel": "/meta/connect", "clientId": client_id,
        "connectionType": "long-polling"}]);
    connected(bayeux(http, &format!("{base}/cometd/connect"), body).await?)
}

fn connected(replies: Value) -> anyhow::Result<()> {
    let ok = replies.as_array().is_some_and(|r| {
        r.iter()
            .any(|m| m["channel"] == "/meta/connect" && m["successful"] == true)
    });
    anyhow::ensure!(ok, "the connect was not successful");
    Ok(())
}

async fn bayeux(http: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    Ok(http
        .post(url)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}
