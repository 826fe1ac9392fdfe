//! Logging and metrics setup. Logs are structured (`tracing`), text or JSON; fields never carry
//! message text, tokens or secrets — only ids, counts and durations.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

pub fn init_logging(log: &Log) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init`: tests start several servers in one process; the first subscriber wins.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Installs the process-wide Prometheus recorder once; later calls reuse its handle.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            // SPEC §4 bars timers at 50 ms late: buckets close around it give a meaningful p50
            // and p99, and the long tail stays finite so a backlog still shows how late.
            let lateness = [
                0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5,
                0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0,
            ];
            // A count, not seconds: how many writes one commit (and fsync) carried.
            let group = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
            PrometheusBuilder::new()
                .set_buckets(&buckets)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("herald_timer_lateness_seconds".into()),
                    &lateness,
                )
                .ok()?
                .set_buckets_for_metric(Matcher::Full("herald_store_commit_jobs".into()), &group)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}
