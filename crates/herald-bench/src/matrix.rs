//! `matrix`: Herald as a Matrix push gateway. Homeservers POST `/_matrix/push/v1/notify`, one
//! APNs device per notification, and Herald answers once the (fake, in-process) APNs answered.
//!
//! Each concurrency level opens that many homeserver connections (HTTP/1.1 keep-alive, one
//! connection per client, as Synapse's pusher pool holds them), each sending requests back to
//! back for the plan's duration. Every request carries a fresh `event_id`: Herald drops a
//! repeated (app id, pushkey, event id) for ten minutes, which would skip the APNs round trip.
//!
//! Figures per level: notifies/s answered 200, pushes/s the fake accepted, request latency
//! p50/p99, Herald's CPU-ms per push (utime + stime over the level), non-200 answers and
//! transport errors; then the same fake's `h2load` ceiling and each level's rate against it.
//! The bench process's own CPU (clients and the fake share the 2 cores with Herald) is
//! reported too, so a reader can tell Herald's limit from the load generator's.

use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use herald_testkit::fake_apns::{FakeApns, KEY_ID, TEAM_ID};
use herald_testkit::keys::EC_PRIVATE_PEM;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Plan;
use crate::herald::Herald;
use crate::push::{cpu_seconds, h2load_ceiling};
use crate::stats::{Row, percentile_ms};

const SCENARIO: &str = "matrix";
/// The fake's topic; `h2load_ceiling` sends the same.
const TOPIC: &str = crate::push::TOPIC;
/// The Matrix app id the bench's devices register under (Element iOS's).
const MATRIX_APP_ID: &str = "im.vector.app.ios";
/// Sygnal 0.15.1 on this kind of machine against a local fake APNs: the anchor of the goal.
const SYGNAL_NOTIFIES_PER_S: f64 = 1_300.0;

/// What one homeserver connection saw over a level.
#[derive(Default)]
struct Tally {
    /// Latency of every 200 answer.
    latencies: Vec<Duration>,
    ok: u64,
    non_200: u64,
    transport_errors: u64,
    /// The first non-200 answer or error, to explain a non-zero count.
    first_problem: Option<String>,
}

impl Tally {
    fn transport(&mut self, error: String) {
        self.transport_errors += 1;
        self.first_problem.get_or_insert(error);
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.non_200 += other.non_200;
        self.transport_errors += other.transport_errors;
        if self.first_problem.is_none() {
            self.first_problem = other.first_problem;
        }
    }
}

pub async fn matrix(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let fake = FakeApns::builder().topic(TOPIC).record(false).start().await;
    let setup = crate::scenarios::http_client()?;
    let app = json!({
        "apns": {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": EC_PRIVATE_PEM,
                 "topic": TOPIC, "base_url": fake.url()},
        "matrix": {"app_ids": {MATRIX_APP_ID: {"channel": "apns"}}}
    });
    let response = setup
        .put(server.url("/v1/apps/element"))
        .bearer_auth(&server.key)
        .json(&app)
        .send()
        .await?;
    if !response.status().is_success() {
        let status = response.status();
        bail!("app refused: {status} {}", response.text().await?);
    }
    // One notify before measuring: fails fast on a broken setup, and Herald's APNs
    // connection and provider token exist before the first level starts its clock.
    let url = server.url("/_matrix/push/v1/notify");
    let answer: Value = setup
        .post(&url)
        .header("content-type", "application/json")
        .body(notify_body("$warmup", &pushkey(usize::MAX)))
        .send()
        .await?
        .error_for_status()
        .context("the warm-up notify")?
        .json()
        .await?;
    if answer != json!({"rejected": []}) {
        bail!("the warm-up notify was answered {answer}");
    }

    let mut rows = Vec::new();
    let mut rates = Vec::new();
    for &connections in plan.matrix_connections {
        let (level_rows, rate) = level(server, &fake, &url, connections, plan.duration).await?;
        rows.extend(level_rows);
        rates.push((connections, rate));
    }
    // After Herald's levels: h2load's requests would count as Herald's pushes.
    match h2load_ceiling(&fake, plan).await {
        Ok(ceiling) => {
            rows.push(Row::new(
                SCENARIO,
                "h2load → same fake (loopback ceiling)",
                ceiling,
                "req/s",
                "-",
            ));
            for (connections, rate) in rates {
                rows.push(Row::new(
                    SCENARIO,
                    &format!("c={connections}: notifies/s / h2load's req/s"),
                    rate / ceiling,
                    "ratio",
                    "≥ 0.5",
                ));
            }
        }
        Err(e) => eprintln!("herald-bench: no h2load ceiling: {e:#}"),
    }
    fake.stop().await;
    Ok(rows)
}

/// One concurrency level: `connections` homeserver connections for `duration`. Returns its
/// rows and its notifies/s.
async fn level(
    server: &Herald,
    fake: &FakeApns,
    url: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(Vec<Row>, f64)> {
    let accepted_before = fake.accepted();
    let herald_cpu_before = cpu_seconds(server.pid())?;
    let bench_cpu_before = cpu_seconds(std::process::id())?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..connections {
        // A client per connection: one keep-alive HTTP/1.1 connection each, never shared,
        // so the level holds exactly `connections` of them.
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()?;
        let url = url.to_string();
        // A device per connection (an APNs token Herald sends in hex).
        let key = pushkey(connections * 1_000 + worker);
        clients.spawn(async move {
            let mut tally = Tally::default();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                seq += 1;
                let event_id = format!("$c{connections}-w{worker}-{seq}");
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(notify_body(&event_id, &key))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == reqwest::StatusCode::OK => {
                        // The whole answer read: the connection is free for the next one.
                        match r.bytes().await {
                            Ok(_) => {
                                tally.latencies.push(sent.elapsed());
                                tally.ok += 1;
                            }
                            Err(e) => tally.transport(format!("reading a 200: {e}")),
                        }
                    }
                    Ok(r) => {
                        tally.non_200 += 1;
                        if tally.first_problem.is_none() {
                            let status = r.status();
                            let body = r.text().await.unwrap_or_default();
                            tally.first_problem = Some(format!("{status} {body}"));
                        }
                    }
                    Err(e) => tally.transport(e.to_string()),
                }
            }
            tally
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        tally.merge(done?);
    }
    // Until the last answer: every 200 came after its push reached the fake.
    let elapsed = started.elapsed().as_secs_f64();
    let herald_cpu = cpu_seconds(server.pid())? - herald_cpu_before;
    let bench_cpu = cpu_seconds(std::process::id())? - bench_cpu_before;
    let pushes = fake.accepted().saturating_sub(accepted_before);
    if let Some(problem) = &tally.first_problem {
        eprintln!("herald-bench: matrix c={connections}: first problem: {problem}");
    }
    let rate = tally.ok as f64 / elapsed;
    let per_push_ms = |cpu: f64| cpu * 1000.0 / pushes.max(1) as f64;
    let name = |metric: &str| format!("c={connections}: {metric}");
    let rows = vec![
        Row::new(
            SCENARIO,
            &name("notifies/s answered 200"),
            rate,
            "notifies/s",
            "≥ 26,000 (20× Sygnal)",
        ),
        Row::new(
            SCENARIO,
            &name("notifies/s / Sygnal 0.15.1's 1,300"),
            rate / SYGNAL_NOTIFIES_PER_S,
            "ratio",
            "≥ 20",
        ),
        Row::new(
            SCENARIO,
            &name("pushes/s accepted by the fake APNs"),
            pushes as f64 / elapsed,
            "pushes/s",
            "-",
        ),
        Row::new(
            SCENARIO,
            &name("notify latency p50"),
            percentile_ms(&mut tally.latencies, 50.0),
            "ms",
            "-",
        ),
        Row::new(
            SCENARIO,
            &name("notify latency p99"),
            percentile_ms(&mut tally.latencies, 99.0),
            "ms",
            "-",
        ),
        Row::new(
            SCENARIO,
            &name("Herald CPU-ms per push"),
            per_push_ms(herald_cpu),
            "cpu-ms",
            "-",
        ),
        Row::new(
            SCENARIO,
            &name("Herald CPU (cores busy)"),
            herald_cpu / elapsed,
            "cores",
            "-",
        ),
        Row::new(
            SCENARIO,
            &name("bench CPU-ms per push (clients + fake APNs)"),
            per_push_ms(bench_cpu),
            "cpu-ms",
            "-",
        ),
        Row::new(
            SCENARIO,
            &name("non-200 answers"),
            tally.non_200 as f64,
            "requests",
            "0",
        ),
        Row::new(
            SCENARIO,
            &name("transport errors"),
            tally.transport_errors as f64,
            "requests",
            "0",
        ),
    ];
    Ok((rows, rate))
}

/// Device `i`'s pushkey: base64 of a 32-byte APNs token, as Matrix iOS clients upload it.
fn pushkey(i: usize) -> String {
    let mut token = [0u8; 32];
    token[24..].copy_from_slice(&(i as u64).to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(token)
}

/// A `/notify` body as Synapse sends it for a text message, with one device. Formatted, not
/// built as a `Value`: the load generator shares the cores with Herald.
fn notify_body(event_id: &str, pushkey: &str) -> String {
    format!(
        concat!(
            r#"{{"notification":{{"event_id":"{event_id}","room_id":"!bench:example.org","#,
            r#""type":"m.room.message","sender":"@alice:example.org","#,
            r#""sender_display_name":"Alice","room_name":"Bench","prio":"high","#,
            r#""content":{{"msgtype":"m.text","body":"hi"}},"counts":{{"unread":1}},"#,
            r#""devices":[{{"app_id":"{app_id}","pushkey":"{pushkey}","pushkey_ts":0}}]}}}}"#
        ),
        event_id = event_id,
        app_id = MATRIX_APP_ID,
        pushkey = pushkey,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_a_notify_request_with_one_apns_device() {
        let body: Value = serde_json::from_str(&notify_body("$e1", &pushkey(7))).unwrap();
        let n = &body["notification"];
        assert_eq!(n["event_id"], "$e1");
        assert_eq!(n["devices"][0]["app_id"], MATRIX_APP_ID);
        let token = base64::engine::general_purpose::STANDARD
            .decode(n["devices"][0]["pushkey"].as_str().unwrap())
            .unwrap();
        assert_eq!(token.len(), 32);
        assert_eq!(token[31], 7);
    }
}
