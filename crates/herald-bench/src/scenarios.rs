//! The scenarios. Each one is bounded by [`Plan::duration`] and a drain timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Plan;
use crate::herald::Herald;
use crate::stats::{Row, percentile_ms};

/// Conversations each ingest client spreads its events over.
const CONVERSATIONS_PER_CLIENT: u64 = 64;

pub(crate) fn message(id: &str, conversation: &str, text: &str) -> Value {
    json!({
        "event_id": id, "conversation_id": conversation, "type": "message.created",
        "occurred_at": "2026-11-23T10:00:00Z",
        "sender": {"id": "bench-agent", "role": "agent", "name": "Bench"}, "text": text
    })
}

pub(crate) fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

/// `ingest`: N concurrent clients posting for a fixed time, batches of 1 and of 100 events
/// across many conversations. Events/s acknowledged (200) and acknowledgement latency.
pub async fn ingest(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    ingest_on(
        "ingest",
        std::slice::from_ref(&server.base),
        &server.key,
        plan,
    )
    .await
}

/// The ingest load, reported under `scenario`, with client `i` posting to `bases[i % n]`.
pub async fn ingest_on(
    scenario: &str,
    bases: &[String],
    key: &str,
    plan: Plan,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for batch in [1usize, 100] {
        let client = http_client()?;
        let deadline = Instant::now() + plan.duration;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..plan.ingest_clients {
            let client = client.clone();
            let url = format!("{}/v1/events", bases[worker % bases.len()]);
            let key = key.to_string();
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                let mut accepted = 0u64;
                let mut refused = 0u64;
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let events: Vec<Value> = (0..batch)
                        .map(|_| {
                            seq += 1;
                            let conversation = format!(
                                "ingest-b{batch}-w{worker}-c{}",
                                seq % CONVERSATIONS_PER_CLIENT
                            );
                            message(&format!("b{batch}-w{worker}-{seq}"), &conversation, "hello")
                        })
                        .collect();
                    let body = if batch == 1 {
                        events.into_iter().next().unwrap_or_default()
                    } else {
                        json!({ "events": events })
                    };
                    let sent = Instant::now();
                    let response = client.post(&url).bearer_auth(&key).json(&body).send().await;
                    match response {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            latencies.push(sent.elapsed());
                            accepted += batch as u64;
                        }
                        _ => refused += 1,
                    }
                }
                (latencies, accepted, refused)
            });
        }
        let mut latencies = Vec::new();
        let mut accepted = 0u64;
        let mut refused = 0u64;
        while let Some(done) = tasks.join_next().await {
            let (l, a, r) = done?;
            latencies.extend(l);
            accepted += a;
            refused += r;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let name = format!("batch {batch}");
        rows.push(Row::new(
            scenario,
            &format!("{name}: events/s acknowledged"),
            accepted as f64 / elapsed,
            "events/s",
            "≥ 20,000 (batched, durable ack)",
        ));
        rows.push(Row::new(
            scenario,
            &format!("{name}: ack latency p50"),
            percentile_ms(&mut latencies, 50.0),
            "ms",
            "-",
        ));
        rows.push(Row::new(
            scenario,
            &format!("{name}: ack latency p99"),
            percentile_ms(&mut latencies, 99.0),
            "ms",
            "-",
        ));
        rows.push(Row::new(
            scenario,
            &format!("{name}: requests refused/failed"),
            refused as f64,
            "requests",
            "0",
        ));
    }
    Ok(rows)
}

/// `live`: one live session per user (each in its own conversation), events posted at a
/// target rate; latency from just before the POST to the frame arriving (the send time rides
/// in the message text).
pub async fn live(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let client = http_client()?;
    let users = plan.live_users;
    // Set up: each user joins its conversation and opens a live session caught up on it.
    let mut sessions = Vec::with_capacity(users);
    for i in 0..users {
        let user = format!("live-user-{i}");
        let conversation = format!("live-conv-{i}");
        let response = client
            .put(server.url(&format!(
                "/v1/conversations/{conversation}/participants/{user}"
            )))
            .bearer_auth(&server.key)
            .json(&json!({"role": "visitor"}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("join refused: {}", response.status());
        }
        let token: Value = client
            .post(server.url(&format!("/v1/users/{user}/tokens")))
            .bearer_auth(&server.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["token"].as_str().context("token")?.to_string();
        let request = live_request(&server.live_url(), &token)?;
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let hello = next_json(&mut socket).await.context("hello frame")?;
        let heartbeat_ms = hello["heartbeat_ms"].as_u64().unwrap_or(10_000).max(100);
        socket
            .send(Message::text(
                json!({"type": "resume", "positions": {conversation.clone(): 0}}).to_string(),
            ))
            .await?;
        loop {
            let frame = next_json(&mut socket).await.context("caught_up frame")?;
            if frame["type"] == "caught_up" {
                break;
            }
        }
        sessions.push((socket, heartbeat_ms));
    }

    let received = Arc::new(AtomicU64::new(0));
    let total = plan.live_rate * plan.duration.as_secs().max(1);
    let receive_until = Instant::now() + plan.duration + Duration::from_secs(10);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut readers = tokio::task::JoinSet::new();
    for (mut socket, heartbeat_ms) in sessions {
        let received = received.clone();
        let mut stop = stop_rx.clone();
        readers.spawn(async move {
            let mut latencies = Vec::new();
            let mut ping = tokio::time::interval(Duration::from_millis(heartbeat_ms / 2));
            ping.tick().await;
            loop {
                if received.load(Ordering::Relaxed) >= total {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(receive_until) => break,
                    _ = stop.changed() => break,
                    _ = ping.tick() => {
                        let _ = socket.send(Message::text(r#"{"type":"ping"}"#)).await;
                    }
                    frame = socket.next() => {
                        let Some(Ok(Message::Text(text))) = frame else {
                            if matches!(frame, Some(Ok(_))) { continue; }
                            break;
                        };
                        let arrived = now_micros();
                        let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                        if frame["type"] != "event" { continue; }
                        let sent = frame["event"]["text"]
                            .as_str()
                            .and_then(|t| t.strip_prefix("t="))
                            .and_then(|t| t.parse::<u128>().ok());
                        if let Some(sent) = sent {
                            let micros = arrived.saturating_sub(sent) as u64;
                            latencies.push(Duration::from_micros(micros));
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            let _ = socket.close(None).await;
            latencies
        });
    }

    // Post at the target rate: every tick, a batch spread over the users' conversations,
    // each request on its own task so a slow acknowledgement does not hold the schedule.
    let tick = Duration::from_millis(10);
    let per_tick = (plan.live_rate as f64 * tick.as_secs_f64())
        .round()
        .max(1.0) as u64;
    let ticks = total.div_ceil(per_tick);
    let posted = Arc::new(AtomicU64::new(0));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut posters = tokio::task::JoinSet::new();
    let mut seq = 0u64;
    for _ in 0..ticks {
        interval.tick().await;
        let stamp = now_micros();
        let events: Vec<Value> = (0..per_tick)
            .map(|_| {
                seq += 1;
                let conversation = format!("live-conv-{}", seq % users as u64);
                message(&format!("live-{seq}"), &conversation, &format!("t={stamp}"))
            })
            .collect();
        let client = client.clone();
        let url = server.url("/v1/events");
        let key = server.key.clone();
        let posted = posted.clone();
        posters.spawn(async move {
            let sent = Instant::now();
            if let Ok(r) = client
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({ "events": events }))
                .send()
                .await
                && r.status().is_success()
            {
                posted.fetch_add(per_tick, Ordering::Relaxed);
                return Some(sent.elapsed());
            }
            None
        });
    }
    let post_elapsed = started.elapsed().as_secs_f64();
    let mut acks = Vec::new();
    while let Some(done) = posters.join_next().await {
        acks.extend(done?);
    }
    let posted_now = posted.load(Ordering::Relaxed);
    while received.load(Ordering::Relaxed) < posted_now && Instant::now() < receive_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    while let Some(done) = readers.join_next().await {
        latencies.extend(done?);
    }
    let posted = posted.load(Ordering::Relaxed);
    Ok(vec![
        Row::new("live", "sessions", users as f64, "sessions", "-"),
        Row::new(
            "live",
            "events/s posted (achieved rate)",
            posted as f64 / post_elapsed,
            "events/s",
            "5,000",
        ),
        Row::new(
            "live",
            "frames received / events posted",
            latencies.len() as f64 / posted.max(1) as f64,
            "ratio",
            "1",
        ),
        Row::new(
            "live",
            "POST → durable ack p50 (part of the below)",
            percentile_ms(&mut acks, 50.0),
            "ms",
            "-",
        ),
        Row::new(
            "live",
            "POST → durable ack p99",
            percentile_ms(&mut acks, 99.0),
            "ms",
            "-",
        ),
        Row::new(
            "live",
            "event → frame p50",
            percentile_ms(&mut latencies, 50.0),
            "ms",
            "-",
        ),
        Row::new(
            "live",
            "event → frame p99",
            percentile_ms(&mut latencies, 99.0),
            "ms",
            "≤ 5 ms at 5,000 events/s",
        ),
    ])
}

/// The upgrade request for a live session, with the client token.
pub(crate) fn live_request(
    ws_url: &str,
    token: &str,
) -> anyhow::Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
    let mut request = ws_url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame as JSON, within 10 s.
async fn next_json(socket: &mut Socket) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Ok(serde_json::from_str(&text)?),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("live session closed"),
            Err(_) => bail!("no frame within 10 s"),
        }
    }
}
