//! `cluster`: the ingest load against cluster mode — one node, then three, on PostgreSQL and
//! Redis on this machine (`HERALD_BENCH_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, a fresh schema per run; `HERALD_BENCH_REDIS_URL`,
//! default `redis://127.0.0.1:6379`) — next to the embedded `ingest` figures: what the shared
//! database costs, and what more nodes buy on one box.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use base64::Engine;

use crate::Plan;
use crate::herald::Herald;
use crate::scenarios::ingest_on;
use crate::stats::Row;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub async fn cluster(binary: &Path, plan: Plan) -> anyhow::Result<Vec<Row>> {
    let postgres = setting(
        "HERALD_BENCH_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let redis = setting("HERALD_BENCH_REDIS_URL", "redis://127.0.0.1:6379");
    let mut rows = Vec::new();
    for nodes in [1usize, 3] {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let schema = format!("herald_bench_{id}");
        let env: Vec<(String, String)> = [
            ("HERALD_STORE", "postgres"),
            ("HERALD_POSTGRES__URL", postgres.as_str()),
            ("HERALD_POSTGRES__SCHEMA", schema.as_str()),
            ("HERALD_REDIS__URL", redis.as_str()),
            ("HERALD_REDIS__PREFIX", &format!("herald-bench-{id}")),
            (
                "HERALD_MASTER_KEY",
                &base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            ),
            ("HERALD_LOG__LEVEL", "warn"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let result = async {
            let first = Herald::start_with(binary, &env, None)
                .context("starting the first cluster node (are PostgreSQL and Redis up?)")?;
            let mut started = vec![first];
            for _ in 1..nodes {
                let key = started[0].key.clone();
                started.push(Herald::start_with(binary, &env, Some(&key))?);
            }
            let bases: Vec<String> = started.iter().map(|h| h.base.clone()).collect();
            eprintln!("herald-bench: cluster of {nodes} at {}", bases.join(" "));
            let label = format!(
                "cluster ({nodes} node{})",
                if nodes == 1 { "" } else { "s" }
            );
            let rows = ingest_on(&label, &bases, &started[0].key, plan).await;
            for node in started {
                node.stop();
            }
            rows
        }
        .await;
        let _ = Command::new("psql")
            .arg(&postgres)
            .args([
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            ])
            .output();
        rows.extend(result?);
    }
    Ok(rows)
}
