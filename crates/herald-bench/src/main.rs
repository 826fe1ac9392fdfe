//! `herald-bench`: starts the release `herald` binary on its embedded default store, drives
//! named scenarios against it over loopback, prints a table (scenario, metric, value, SPEC §4
//! target) and writes the figures as JSON.
//!
//! Every scenario is bounded in time and count; the runner stops Herald (SIGTERM, then kill)
//! and exits by itself.

mod cluster;
mod cometd_sessions;
mod herald;
mod matrix;
mod metrics;
mod push;
mod scenarios;
mod sessions;
mod setup;
mod stats;
mod timers;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;

use crate::stats::Row;

/// Scenarios this runner knows, in the order they run by default.
const SCENARIOS: &[&str] = &[
    "ingest", "live", "push", "push-fcm", "matrix", "sessions", "cometd", "timers", "cluster",
];

#[derive(Parser, Debug)]
#[command(name = "herald-bench", about = "Benchmark runner for Herald")]
struct Args {
    /// Path to the (release) `herald` binary.
    #[arg(long)]
    herald: PathBuf,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "target/bench.json")]
    out: PathBuf,
    /// Tiny durations and counts: a smoke run of the harness, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Idle live sessions for the sessions scenario, and idle CometD clients for the cometd
    /// scenario (default 19,000; 200 with --quick).
    #[arg(long)]
    sessions: Option<usize>,
    /// Scenarios to run (default: all): ingest, live, push, push-fcm, matrix, sessions, cometd,
    /// timers, cluster.
    scenarios: Vec<String>,
}

/// Durations and counts for one run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub quick: bool,
    /// How long each measured phase lasts.
    pub duration: Duration,
    /// Concurrent HTTP clients for ingest.
    pub ingest_clients: usize,
    /// Live sessions (one per user) for the live scenario.
    pub live_users: usize,
    /// Target event rate for the live scenario (events/s).
    pub live_rate: u64,
    /// Away users (one device each, one message each) for the push scenarios.
    pub push_users: usize,
    /// Concurrent homeserver connections, one level after another, for the matrix scenario.
    pub matrix_connections: &'static [usize],
    /// Idle live sessions held open for the sessions scenario.
    pub sessions: usize,
    /// Client processes (each with its own 127.0.0.x source address) holding them.
    pub session_processes: usize,
    /// Away users (one device, one conversation, one grace timer each) for the timers scenario.
    pub timer_users: usize,
    /// Events/s at which the timers scenario posts (and so at which its timers come due).
    pub timer_rate: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                duration: Duration::from_secs(1),
                ingest_clients: 4,
                live_users: 10,
                live_rate: 200,
                push_users: 50,
                matrix_connections: &[2, 8],
                sessions: 200,
                session_processes: 2,
                timer_users: 200,
                timer_rate: 200,
            }
        } else {
            Plan {
                quick,
                duration: Duration::from_secs(10),
                ingest_clients: 32,
                live_users: 300,
                live_rate: 5_000,
                push_users: 20_000,
                matrix_connections: &[16, 64, 256],
                // One process may hold 20,000 descriptors: Herald keeps some for itself.
                sessions: 19_000,
                session_processes: 4,
                timer_users: 100_000,
                timer_rate: 2_000,
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The sessions and cometd scenarios' client processes are this binary again.
    let argv: Vec<String> = std::env::args().collect();
    if let [_, mode, ws_url, source] = argv.as_slice()
        && mode == "sessions-client"
    {
        return sessions::client_main(ws_url, source).await;
    }
    if let [_, mode, base, source] = argv.as_slice()
        && mode == "cometd-client"
    {
        return cometd_sessions::client_main(base, source).await;
    }
    let args = Args::parse();
    let chosen: Vec<String> = if args.scenarios.is_empty() {
        SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    for name in &chosen {
        if !SCENARIOS.contains(&name.as_str()) {
            bail!(
                "unknown scenario {name:?} (known: {})",
                SCENARIOS.join(", ")
            );
        }
    }
    let mut plan = Plan::new(args.quick);
    if let Some(sessions) = args.sessions {
        plan.sessions = sessions;
    }
    let mut rows: Vec<Row> = Vec::new();
    for name in &chosen {
        if name == "cluster" {
            // Starts its own nodes, on PostgreSQL and Redis.
            let result = cluster::cluster(&args.herald, plan).await;
            rows.extend(result.context("scenario cluster")?);
            continue;
        }
        // A fresh Herald (and data directory) per scenario so one does not skew the next.
        let server = herald::Herald::start(&args.herald)
            .with_context(|| format!("starting {}", args.herald.display()))?;
        eprintln!("herald-bench: {name} against {}", server.base);
        let result = match name.as_str() {
            "ingest" => scenarios::ingest(&server, plan).await,
            "live" => scenarios::live(&server, plan).await,
            "push" => push::apns(&server, plan).await,
            "push-fcm" => push::fcm(&server, plan).await,
            "matrix" => matrix::matrix(&server, plan).await,
            "sessions" => sessions::sessions(&server, plan).await,
            "cometd" => cometd_sessions::cometd(&server, plan).await,
            "timers" => timers::timers(&server, plan).await,
            _ => unreachable!("checked above"),
        };
        server.stop();
        rows.extend(result.with_context(|| format!("scenario {name}"))?);
    }
    stats::print_table(&rows);
    let report = json!({
        "quick": plan.quick,
        "duration_s": plan.duration.as_secs_f64(),
        "results": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    if let Some(parent) = args.out.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("herald-bench: wrote {}", args.out.display());
    Ok(())
}
