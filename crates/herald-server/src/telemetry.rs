//! Logging and metrics setup. Logs are structured (`tracing`), text or JSON; fields never carry
//! message text, tokens or secrets — only ids, counts and durations.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// Set once JSON logs are on: from then every line on stderr is a JSON document, the start-up
/// announcement and a fatal error included.
static JSON_LOGS: std::sync::OnceLock<()> = std::sync::OnceLock::new();

pub fn json_logs() -> bool {
    JSON_LOGS.get().is_some()
}

/// Says on stderr what an operator (or a script) waits for: the address the server listens on.
pub fn announce_listening(addr: std::net::SocketAddr) {
    if json_logs() {
        tracing::info!(listen = %addr, "Herald listening on http://{addr}");
    } else {
        eprintln!("Herald listening on http://{addr}");
    }
}

/// A fatal error, the last thing the process says.
pub fn report_fatal(error: &anyhow::Error) {
    if json_logs() {
        tracing::error!(error.message = %format!("{error:#}"), "herald stopped");
    } else {
        eprintln!("error: {error:#}");
    }
}

pub fn init_logging(log: &Log) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: a file or a log collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // `try_init`: tests start several servers in one process; the first subscriber wins.
    let _ = match log.format {
        LogFormat::Json => {
            let _ = JSON_LOGS.set(());
            builder.json().flatten_event(true).try_init()
        }
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
                .inspect(|_| describe())
        })
        .clone()
}

/// Every metric Herald emits, with its `# HELP` text. A metric added without a line here shows
/// without help; the `openapi` suite's metrics test catches that.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "herald_events_accepted_total",
        "Events accepted (durably stored), not counting idempotent repeats."
    );
    describe_counter!(
        "herald_events_duplicate_total",
        "Events whose event_id was already stored: answered with the original result, nothing changed."
    );
    describe_histogram!(
        "herald_events_append_seconds",
        Unit::Seconds,
        "Time to durably append one POST /v1/events request, fsync included."
    );
    describe_histogram!(
        "herald_store_write_wait_seconds",
        Unit::Seconds,
        "Time a store write waited in the writer's queue before its group started."
    );
    describe_histogram!(
        "herald_store_commit_seconds",
        Unit::Seconds,
        "Time of one group commit of the store writer (the transaction and its fsync)."
    );
    describe_histogram!(
        "herald_store_commit_jobs",
        Unit::Count,
        "Writes carried by one group commit."
    );
    describe_counter!(
        "herald_decisions_total",
        "Notification decisions recorded, by status and kind (sent, pending, suppressed, …)."
    );
    describe_histogram!(
        "herald_timer_lateness_seconds",
        Unit::Seconds,
        "How late a durable timer's decision was committed after it was due, by timer."
    );
    describe_counter!(
        "herald_deliveries_total",
        "Delivery attempts settled, by channel and outcome."
    );
    describe_histogram!(
        "herald_delivery_seconds",
        Unit::Seconds,
        "Time of one delivery attempt at the provider, by channel."
    );
    describe_gauge!(
        "herald_deliveries_in_flight",
        "Deliveries this node is attempting now."
    );
    describe_counter!(
        "herald_circuit_open_total",
        "Times an endpoint's circuit breaker opened, by channel."
    );
    describe_counter!(
        "herald_endpoints_disabled_total",
        "Endpoints disabled for failing too long, by channel."
    );
    describe_counter!(
        "herald_endpoints_reenabled_total",
        "Disabled endpoints re-enabled by an operator."
    );
    describe_counter!(
        "herald_device_registrations_total",
        "Device registrations, by outcome (created, updated, moved, rotated)."
    );
    describe_counter!(
        "herald_webpush_unhealthy_total",
        "Web Push subscriptions marked unhealthy for missing a health check."
    );
    describe_gauge!("herald_live_sessions", "Live sessions open on this node.");
    describe_counter!(
        "herald_live_sessions_overflowed_total",
        "Live sessions closed because their outgoing queue was full (the client resumes)."
    );
    describe_counter!(
        "herald_http_requests_total",
        "HTTP requests answered, by method, route and status."
    );
    describe_histogram!(
        "herald_http_request_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route and status (a WebSocket upgrade counts until the upgrade)."
    );
}
