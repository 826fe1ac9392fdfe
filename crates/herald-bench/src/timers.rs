//! `timers`: SPEC §4's "100,000 pending grace timers firing within 50 ms of due". Away users,
//! one APNs device and one conversation each, and an app whose grace delay outlasts the
//! posting: one message per conversation, posted at a steady rate, starts one grace timer per
//! user, and every timer is pending before the first comes due. They then come due at the rate
//! they were started.
//!
//! Figures: how late each timer fired, from Herald's `herald_timer_lateness_seconds`
//! histogram (due → the firing's decision committed), interpolated within its buckets; the
//! peak of pending timers (decisions that started one minus timers fired, from `/metrics`
//! sampled while it runs); and, end to end, how late each push reached the fake APNs
//! (arrival − (the POST's send time + the grace delay)), which also holds the ingest ack, the
//! engine's evaluation and the delivery.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::bail;
use herald_testkit::fake_apns::{FakeApns, KEY_ID, TEAM_ID};
use herald_testkit::keys::EC_PRIVATE_PEM;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::Plan;
use crate::herald::Herald;
use crate::metrics::{scrape, value};
use crate::scenarios::{http_client, message};
use crate::setup::{self, device_token};
use crate::stats::{Row, percentile_ms};

const SCENARIO: &str = "timers";
const TOPIC: &str = "com.example.bench";
/// Concurrent HTTP clients for setup and posting.
const CLIENTS: usize = 32;
/// Events per POST.
const BATCH: usize = 100;
/// How often `/metrics` is sampled for the pending count.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const LATENESS: &str = "herald_timer_lateness_seconds";
const GRACE_TIMERS: &str = "timer=\"push\"";

pub async fn timers(server: &Herald, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let users = plan.timer_users;
    let posting = Duration::from_secs_f64(users as f64 / plan.timer_rate as f64);
    // The engine evaluates a little behind the posting; the margin keeps the first timer from
    // coming due before the last one has started.
    let margin = if plan.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(15)
    };
    let grace = posting + margin;
    let drain = if plan.quick {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(180)
    };
    let fake = FakeApns::builder().topic(TOPIC).record(false).start().await;
    let client = http_client()?;
    let app = json!({
        "rules": {"grace_delay_ms": grace.as_millis() as u64},
        "apns": {"team_id": TEAM_ID, "key_id": KEY_ID, "private_key": EC_PRIVATE_PEM,
                 "topic": TOPIC, "base_url": fake.url()}
    });
    let response = client
        .put(server.url("/v1/apps/bench"))
        .bearer_auth(&server.key)
        .json(&app)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "app refused: {} {}",
            response.status(),
            response.text().await?
        );
    }
    let clients = CLIENTS.min(users);
    let setup_started = Instant::now();
    setup::away_users(server, &client, "timer", users, clients, |i| {
        json!({"app_id": "bench", "channel": "apns", "token": device_token(i), "platform": "ios"})
    })
    .await?;
    eprintln!(
        "herald-bench: timers: {users} users set up in {:.1} s; posting at {} events/s, grace delay {:.1} s",
        setup_started.elapsed().as_secs_f64(),
        plan.timer_rate,
        grace.as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(peak_pending(
        client.clone(),
        server.url("/metrics"),
        stop.clone(),
    ));
    let (sent_at, acknowledged, posted_in) =
        post_paced(server, &client, users, clients, plan.timer_rate).await?;
    let deadline = Instant::now() + grace + drain;
    while fake.accepted() < acknowledged && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The histogram is written right after each step's commit, before its pushes go out; a
    // last short wait covers a scrape racing that.
    let metrics = loop {
        let metrics = scrape(&client, &server.url("/metrics")).await?;
        let fired = value(&metrics, &format!("{LATENESS}_count{{{GRACE_TIMERS}}}"));
        if fired >= acknowledged as f64 || Instant::now() >= deadline + Duration::from_secs(5) {
            break metrics;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    };
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.await??;
    let arrivals = fake.arrivals();
    fake.stop().await;

    let buckets = buckets(&metrics);
    let fired = value(&metrics, &format!("{LATENESS}_count{{{GRACE_TIMERS}}}"));
    let within = buckets
        .iter()
        .find(|(le, _)| *le == 0.05)
        .map_or(0.0, |(_, n)| *n);
    let mut push_lateness: Vec<Duration> = arrivals
        .iter()
        .filter_map(|a| {
            let user = usize::from_str_radix(&a.token, 16).ok()?;
            let due = *sent_at.get(&user)? + grace;
            Some(a.at.duration_since(due).unwrap_or_default())
        })
        .collect();
    Ok(vec![
        Row::new(
            SCENARIO,
            "grace timers started (events acked)",
            acknowledged as f64,
            "timers",
            "-",
        ),
        Row::new(
            SCENARIO,
            &format!("posted at {}/s: first POST → last ack", plan.timer_rate),
            posted_in.as_secs_f64(),
            "s",
            "-",
        ),
        Row::new(
            SCENARIO,
            "grace delay (> posting time)",
            grace.as_secs_f64(),
            "s",
            "-",
        ),
        Row::new(
            SCENARIO,
            "peak pending timers (/metrics)",
            peak,
            "timers",
            "100,000",
        ),
        Row::new(
            SCENARIO,
            "grace timers fired (/metrics)",
            fired,
            "timers",
            "= started",
        ),
        Row::new(
            SCENARIO,
            "firing lateness p50 (Herald's histogram)",
            quantile(&buckets, 0.50) * 1000.0,
            "ms",
            "≤ 50 ms",
        ),
        Row::new(
            SCENARIO,
            "firing lateness p99 (Herald's histogram)",
            quantile(&buckets, 0.99) * 1000.0,
            "ms",
            "≤ 50 ms",
        ),
        Row::new(
            SCENARIO,
            "fired ≤ 50 ms late (Herald's histogram)",
            100.0 * within / fired.max(1.0),
            "%",
            "100 %",
        ),
        Row::new(
            SCENARIO,
            "pushes accepted by the fake APNs",
            arrivals.len() as f64,
            "pushes",
            "= started",
        ),
        Row::new(
            SCENARIO,
            "push lateness p50 (post + grace → fake)",
            percentile_ms(&mut push_lateness, 50.0),
            "ms",
            "≤ 50 ms",
        ),
        Row::new(
            SCENARIO,
            "push lateness p99 (post + grace → fake)",
            percentile_ms(&mut push_lateness, 99.0),
            "ms",
            "≤ 50 ms",
        ),
    ])
}

/// One message per user's conversation, in batches of [`BATCH`], batch `b` sent at
/// `b × BATCH / rate` (late if the POSTs fall behind). Answers each user's send time, how
/// many events were acknowledged, and the time from the first send to the last ack.
async fn post_paced(
    server: &Herald,
    client: &reqwest::Client,
    users: usize,
    clients: usize,
    rate: u64,
) -> anyhow::Result<(HashMap<usize, SystemTime>, usize, Duration)> {
    let interval = Duration::from_secs_f64(BATCH as f64 / rate as f64);
    let batches = users.div_ceil(BATCH);
    let started = Instant::now();
    let mut posters = tokio::task::JoinSet::new();
    for worker in 0..clients.min(batches) {
        let client = client.clone();
        let url = server.url("/v1/events");
        let key = server.key.clone();
        posters.spawn(async move {
            let mut sent_at = Vec::new();
            for b in (worker..batches).step_by(clients) {
                tokio::time::sleep_until(started + interval * b as u32).await;
                let chunk = b * BATCH..((b + 1) * BATCH).min(users);
                let events: Vec<Value> = chunk
                    .clone()
                    .map(|i| message(&format!("timer-{i}"), &format!("timer-conv-{i}"), "ping"))
                    .collect();
                let at = SystemTime::now();
                client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({ "events": events }))
                    .send()
                    .await?
                    .error_for_status()?;
                sent_at.extend(chunk.map(|i| (i, at)));
            }
            anyhow::Ok(sent_at)
        });
    }
    let mut sent_at: HashMap<usize, SystemTime> = HashMap::with_capacity(users);
    while let Some(done) = posters.join_next().await {
        sent_at.extend(done??);
    }
    let acknowledged = sent_at.len();
    Ok((sent_at, acknowledged, started.elapsed()))
}

/// Samples `/metrics` until `stop`: the most grace timers pending at once (decisions that
/// started one minus timers fired).
async fn peak_pending(
    client: reqwest::Client,
    url: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<f64> {
    let mut peak: f64 = 0.0;
    while !stop.load(Ordering::Relaxed) {
        let metrics = scrape(&client, &url).await?;
        let started: f64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("herald_decisions_total{")
                    && l.contains("status=\"pending\"")
                    && l.contains("kind=\"new_message\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let fired = value(&metrics, &format!("{LATENESS}_count{{{GRACE_TIMERS}}}"));
        peak = peak.max(started - fired);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    Ok(peak)
}

/// The grace timers' cumulative lateness buckets: (upper bound in seconds, count), in order,
/// `+Inf` last.
fn buckets(metrics: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{LATENESS}_bucket{{{GRACE_TIMERS},le=\"");
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|l| {
            let (le, count) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The `q`-quantile (0–1) of a cumulative histogram, interpolated linearly within its bucket
/// as Prometheus' `histogram_quantile` does; infinite if it lies beyond the last finite bound,
/// 0 when empty.
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return 0.0;
    };
    if total == 0.0 {
        return 0.0;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return f64::INFINITY;
            }
            return lower + (le - lower) * (rank - below) / (count - below).max(f64::EPSILON);
        }
        (lower, below) = (le, count);
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_the_bucket_that_holds_the_rank() {
        let metrics = "\
herald_timer_lateness_seconds_bucket{timer=\"push\",le=\"0.01\"} 0
herald_timer_lateness_seconds_bucket{timer=\"push\",le=\"0.02\"} 50
herald_timer_lateness_seconds_bucket{timer=\"push\",le=\"0.05\"} 99
herald_timer_lateness_seconds_bucket{timer=\"push\",le=\"+Inf\"} 100
herald_timer_lateness_seconds_bucket{timer=\"digest\",le=\"+Inf\"} 7
herald_timer_lateness_seconds_count{timer=\"push\"} 100
";
        let buckets = buckets(metrics);
        assert_eq!(buckets.len(), 4);
        assert!((quantile(&buckets, 0.25) - 0.015).abs() < 1e-9);
        assert!((quantile(&buckets, 0.50) - 0.02).abs() < 1e-9);
        assert!((quantile(&buckets, 0.99) - 0.05).abs() < 1e-9);
        assert!(quantile(&buckets, 1.0).is_infinite());
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
