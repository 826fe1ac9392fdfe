//! `push` and `push-fcm`: away users, one device each, one message each; Herald must push every
//! message to the testkit's fake provider (in-process, recording off, grace delay 0).
//!
//! Figures: pushes/s (accepted by the fake, first POST → last arrival), event → provider
//! request p50/p99 (the POST's send time → the fake's wall-clock arrival), Herald's
//! CPU-seconds per 1,000 pushes (from `/proc/<pid>/stat`), and Herald's own delivery counts
//! from `/metrics`. For APNs, `h2load` against the same fake gives the loopback ceiling.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use herald_testkit::fake_apns::{FakeApns, KEY_ID, TEAM_ID};
use herald_testkit::fake_fcm::FakeFcm;
use herald_testkit::keys::EC_PRIVATE_PEM;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Plan;
use crate::herald::Herald;
use crate::metrics;
use crate::scenarios::{http_client, message};
use crate::setup::{self, device_token};
use crate::stats::{Row, percentile_ms};

pub(crate) const TOPIC: &str = "com.example.bench";
/// Concurrent HTTP clients for setup and posting.
const CLIENTS: usize = 32;
/// How long to wait for the last push after the last acknowledgement.
const DRAIN: Duration = Duration::from_secs(60);

enum Fake {
    Apns(FakeApns),
    Fcm(FakeFcm),
}

impl Fake {
    fn scenario(&self) -> &'static str {
        match self {
            Fake::Apns(_) => "push",
            Fake::Fcm(_) => "push-fcm",
        }
    }

    fn app(&self) -> Value {
        match self {
            Fake::Apns(fake) => json!({
                "rules": {"grace_delay_ms": 0},
                "apns": {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": EC_PRIVATE_PEM,
                         "topic": TOPIC, "base_url": fake.url()}
            }),
            Fake::Fcm(fake) => json!({
                "rules": {"grace_delay_ms": 0},
                "fcm": {"service_account": fake.service_account(), "base_url": fake.url()}
            }),
        }
    }

    fn device(&self, token: &str) -> Value {
        match self {
            Fake::Apns(_) => {
                json!({"app_id": "bench", "channel": "apns", "token": token, "platform": "ios"})
            }
            Fake::Fcm(_) => {
                json!({"app_id": "bench", "channel": "fcm", "token": token, "platform": "android"})
            }
        }
    }

    fn accepted(&self) -> usize {
        match self {
            Fake::Apns(fake) => fake.accepted(),
            Fake::Fcm(fake) => fake.messages().len(),
        }
    }

    /// (device token, arrival) of every accepted request.
    fn arrivals(&self) -> Vec<(String, SystemTime)> {
        match self {
            Fake::Apns(fake) => fake
                .arrivals()
                .into_iter()
                .map(|a| (a.token, a.at))
                .collect(),
            Fake::Fcm(fake) => fake
                .messages()
                .into_iter()
                .map(|m| (m.token, m.at))
                .collect(),
        }
    }
}

pub async fn apns(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let fake = Fake::Apns(FakeApns::builder().topic(TOPIC).record(false).start().await);
    let mut rows = run(server, plan, &fake).await?;
    let rate = rows[0].value;
    let Fake::Apns(fake) = fake else {
        unreachable!("made above")
    };
    // After Herald's run: h2load's requests would count as Herald's pushes.
    let ceiling = h2load_ceiling(&fake, plan).await;
    match ceiling {
        Ok(ceiling) => {
            rows.push(Row::new(
                "push",
                "h2load → same fake (loopback ceiling)",
                ceiling,
                "req/s",
                "-",
            ));
            rows.push(Row::new(
                "push",
                "Herald's rate / h2load's",
                rate / ceiling,
                "ratio",
                "≥ 0.5",
            ));
        }
        Err(e) => eprintln!("herald-bench: no h2load ceiling: {e:#}"),
    }
    fake.stop().await;
    Ok(rows)
}

pub async fn fcm(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let fake = Fake::Fcm(FakeFcm::start().await);
    run(server, plan, &fake).await
}

async fn run(server: &Herald, plan: Plan, fake: &Fake) -> anyhow::Result<Vec<Row>> {
    let scenario = fake.scenario();
    let client = http_client()?;
    let response = client
        .put(server.url("/v1/apps/bench"))
        .bearer_auth(&server.key)
        .json(&fake.app())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "app refused: {} {}",
            response.status(),
            response.text().await?
        );
    }
    let users = plan.push_users;
    let clients = CLIENTS.min(users);
    setup::away_users(server, &client, "push", users, clients, |i| {
        fake.device(&device_token(i))
    })
    .await?;

    let cpu_before = cpu_seconds(server.pid())?;
    let started = Instant::now();
    let mut posters = tokio::task::JoinSet::new();
    for worker in 0..clients {
        let client = client.clone();
        let url = server.url("/v1/events");
        let key = server.key.clone();
        posters.spawn(async move {
            let mut sent_at = Vec::new();
            let mine: Vec<usize> = (worker..users).step_by(clients).collect();
            for chunk in mine.chunks(100) {
                let events: Vec<Value> = chunk
                    .iter()
                    .map(|i| message(&format!("push-{i}"), &format!("push-conv-{i}"), "ping"))
                    .collect();
                let at = SystemTime::now();
                client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({ "events": events }))
                    .send()
                    .await?
                    .error_for_status()?;
                sent_at.extend(chunk.iter().map(|i| (*i, at)));
            }
            anyhow::Ok(sent_at)
        });
    }
    let mut sent_at: HashMap<usize, SystemTime> = HashMap::with_capacity(users);
    while let Some(done) = posters.join_next().await {
        sent_at.extend(done??);
    }
    let deadline = Instant::now() + DRAIN;
    while fake.accepted() < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let cpu = cpu_seconds(server.pid())? - cpu_before;
    let arrivals = fake.arrivals();
    let first = SystemTime::now() - started.elapsed();
    let last = arrivals.iter().map(|(_, at)| *at).max().unwrap_or(first);
    let span = last.duration_since(first).unwrap_or_default().as_secs_f64();
    let mut latencies: Vec<Duration> = arrivals
        .iter()
        .filter_map(|(token, at)| {
            let user = usize::from_str_radix(token, 16).ok()?;
            at.duration_since(*sent_at.get(&user)?).ok()
        })
        .collect();
    let delivered = arrivals.len();
    let metrics = metrics::scrape(&client, &server.url("/metrics")).await?;
    let retries = metrics::sum(&metrics, "herald_deliveries_total", "outcome=\"retry\"");
    Ok(vec![
        Row::new(
            scenario,
            "pushes/s accepted by the fake (first POST → last push)",
            delivered as f64 / span.max(f64::EPSILON),
            "pushes/s",
            "≥ 20,000",
        ),
        Row::new(
            scenario,
            "away users (one device each)",
            users as f64,
            "users",
            "-",
        ),
        Row::new(
            scenario,
            "pushes accepted by the fake",
            delivered as f64,
            "pushes",
            "= users",
        ),
        Row::new(
            scenario,
            "delivery retries (Herald's /metrics)",
            retries,
            "retries",
            "0",
        ),
        Row::new(
            scenario,
            "event → provider request p50",
            percentile_ms(&mut latencies, 50.0),
            "ms",
            "-",
        ),
        Row::new(
            scenario,
            "event → provider request p99",
            percentile_ms(&mut latencies, 99.0),
            "ms",
            "-",
        ),
        Row::new(
            scenario,
            "Herald CPU-seconds per 1,000 pushes",
            cpu / (delivered.max(1) as f64 / 1000.0),
            "cpu-s",
            "-",
        ),
    ])
}

/// User + system CPU time of a process so far, from `/proc/<pid>/stat` (clock ticks of
/// `getconf CLK_TCK`).
pub(crate) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("a /proc stat line")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let per_second: f64 = String::from_utf8(
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()?
            .stdout,
    )?
    .trim()
    .parse()?;
    Ok(ticks / per_second)
}

/// What `h2load` (nghttp2) gets from the same fake over h2c: the requests Herald's client
/// sends, with a valid provider token, on 4 connections × 100 streams.
pub(crate) async fn h2load_ceiling(fake: &FakeApns, plan: Plan) -> anyhow::Result<f64> {
    let iat = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(KEY_ID.into());
    let jwt = jsonwebtoken::encode(
        &header,
        &json!({"iss": TEAM_ID, "iat": iat}),
        &jsonwebtoken::EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes())?,
    )?;
    let dir = tempfile::tempdir()?;
    let payload = dir.path().join("payload.json");
    std::fs::write(
        &payload,
        r#"{"aps":{"alert":{"title":"Bench","body":"ping"},"badge":1}}"#,
    )?;
    let requests = if plan.quick { 1_000 } else { 200_000 };
    let output = tokio::process::Command::new("h2load")
        .args([
            "-n",
            &requests.to_string(),
            "-c",
            "4",
            "-m",
            "100",
            "-t",
            "1",
        ])
        .arg(format!("--header=authorization: bearer {jwt}"))
        .arg(format!("--header=apns-topic: {TOPIC}"))
        .arg("--header=apns-push-type: alert")
        .arg("-d")
        .arg(&payload)
        .arg(format!("{}/3/device/{}", fake.url(), device_token(0)))
        .output()
        .await
        .context("running h2load (Debian package nghttp2-client)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let succeeded = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .and_then(|l| l.split(", ").find(|p| p.ends_with("succeeded")))
        .and_then(|p| p.split_whitespace().next()?.parse::<f64>().ok())
        .context("h2load's requests line")?;
    if succeeded < requests as f64 {
        bail!("h2load: only {succeeded} of {requests} requests succeeded:\n{text}");
    }
    let rate = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|p| p.strip_suffix(" req/s"))
        .and_then(|p| p.parse::<f64>().ok())
        .context("h2load's finished line")?;
    Ok(rate)
}
