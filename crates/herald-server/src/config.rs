//! Configuration: defaults → TOML file → `HERALD_…` environment variables (`__` separates
//! sections: `HERALD_LIVE__HEARTBEAT_MS=20000`). Unknown keys are errors, so a typo names
//! itself instead of being silently ignored. Validated once, at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use herald_api::cometd::CometdConfig;
use herald_api::matrix::MatrixConfig;
use herald_api::{AuthConfig, LimitsConfig};
use herald_channels::OutboundConfig;
use herald_runtime::config::{DeliveryConfig, EngineConfig, LiveConfig};
use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterConfig, PostgresConfig, RedisConfig, StoreKind};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP/WebSocket server listens on.
    pub listen: SocketAddr,
    /// `sqlite` (the embedded default) or `postgres` (cluster mode, with `postgres.url` and
    /// `redis.url`).
    pub store: StoreKind,
    /// This node's name in a cluster; made up at start when absent.
    pub node_id: Option<String>,
    pub postgres: PostgresConfig,
    pub redis: RedisConfig,
    pub cluster: ClusterConfig,
    /// Folder for the SQLite database, the master key and the default tenant's key.
    pub data_dir: PathBuf,
    pub limits: LimitsConfig,
    pub live: LiveConfig,
    pub auth: AuthConfig,
    /// The Matrix push gateway (`POST /_matrix/push/v1/notify`).
    pub matrix: MatrixConfig,
    /// The CometD front door (`/cometd`).
    pub cometd: CometdConfig,
    pub log: Log,
    pub delivery: DeliveryConfig,
    pub engine: EngineConfig,
    pub outbound: OutboundConfig,
    /// Where the master key for secrets at rest comes from. Default: `<data_dir>/master.key`,
    /// generated on first start.
    pub master_key_file: Option<PathBuf>,
    /// The master key itself (base64, 32 bytes); takes precedence over the file.
    pub master_key: Option<String>,
    /// Whether first start creates the `default` tenant and writes its key to the data folder.
    pub bootstrap_default_tenant: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `herald_server=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: StoreKind::default(),
            node_id: None,
            postgres: PostgresConfig::default(),
            redis: RedisConfig::default(),
            cluster: ClusterConfig::default(),
            data_dir: PathBuf::from("./herald-data"),
            limits: LimitsConfig::default(),
            live: LiveConfig::default(),
            auth: AuthConfig::default(),
            matrix: MatrixConfig::default(),
            cometd: CometdConfig::default(),
            log: Log::default(),
            delivery: DeliveryConfig::default(),
            engine: EngineConfig::default(),
            outbound: OutboundConfig::default(),
            master_key_file: None,
            master_key: None,
            bootstrap_default_tenant: true,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Config {
    /// What the channels take from this configuration.
    pub fn channels(&self) -> herald_channels::Settings {
        herald_channels::Settings {
            outbound: self.outbound.clone(),
            attempt_timeout_ms: self.delivery.attempt_timeout_ms,
        }
    }

    /// Loads defaults, then `file` (if given), then `HERALD_…` variables; then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!("config file {} does not exist", file.display()));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(config_env());
        let config: Config = figment.extract().map_err(|e| describe(&e))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        self.outbound.allow_list()?;
        self.validate_cluster()?;
        if !(100..=120_000).contains(&self.outbound.timeout_ms) {
            return Err(
                "invalid configuration: `outbound.timeout_ms` must be between 100 and 120000"
                    .into(),
            );
        }
        let bad = |key: &str, why: &str| Err(format!("invalid configuration: `{key}` {why}"));
        if self.limits.max_body_bytes < 1024 {
            return bad("limits.max_body_bytes", "must be at least 1024");
        }
        if self.limits.max_batch_events == 0 {
            return bad("limits.max_batch_events", "must be at least 1");
        }
        if self.limits.max_frame_bytes < 1024 {
            return bad("limits.max_frame_bytes", "must be at least 1024");
        }
        if self.limits.max_page_events == 0 {
            return bad("limits.max_page_events", "must be at least 1");
        }
        if herald_engine::ids::TenantId::parse(self.matrix.tenant.clone()).is_err() {
            return bad("matrix.tenant", "is not a valid tenant id");
        }
        if !(100..=60_000).contains(&self.matrix.budget_ms) {
            return bad("matrix.budget_ms", "must be between 100 and 60000");
        }
        if !(1..=1000).contains(&self.matrix.max_devices) {
            return bad("matrix.max_devices", "must be between 1 and 1000");
        }
        if self.matrix.max_body_bytes < 1024 {
            return bad("matrix.max_body_bytes", "must be at least 1024");
        }
        if !(1_000..=600_000).contains(&self.cometd.max_interval_ms) {
            return bad("cometd.max_interval_ms", "must be between 1000 and 600000");
        }
        if !(100..=120_000).contains(&self.cometd.timeout_ms) {
            return bad("cometd.timeout_ms", "must be between 100 and 120000");
        }
        if self.cometd.max_body_bytes < 1024 {
            return bad("cometd.max_body_bytes", "must be at least 1024");
        }
        if !(1..=1000).contains(&self.cometd.max_messages) {
            return bad("cometd.max_messages", "must be between 1 and 1000");
        }
        if self.live.heartbeat_ms < 100 {
            return bad("live.heartbeat_ms", "must be at least 100");
        }
        if self.live.dead_after_ms <= self.live.heartbeat_ms {
            return bad(
                "live.dead_after_ms",
                "must be greater than live.heartbeat_ms",
            );
        }
        if self.live.session_queue < 16 {
            return bad("live.session_queue", "must be at least 16");
        }
        let d = &self.delivery;
        if !(1..=10_000).contains(&d.batch) {
            return bad("delivery.batch", "must be between 1 and 10000");
        }
        if d.max_in_flight < d.batch {
            return bad("delivery.max_in_flight", "must be at least delivery.batch");
        }
        if d.per_tenant_concurrency == 0 || d.per_tenant_concurrency > d.max_in_flight {
            return bad(
                "delivery.per_tenant_concurrency",
                "must be at least 1 and at most delivery.max_in_flight",
            );
        }
        if d.attempt_timeout_ms == 0 {
            return bad("delivery.attempt_timeout_ms", "must be at least 1");
        }
        if d.lease_ms <= d.attempt_timeout_ms {
            return bad(
                "delivery.lease_ms",
                "must be greater than delivery.attempt_timeout_ms",
            );
        }
        if !(10..=60_000).contains(&d.poll_ms) {
            return bad("delivery.poll_ms", "must be between 10 and 60000");
        }
        if !(10..=60_000).contains(&self.engine.poll_ms) {
            return bad("engine.poll_ms", "must be between 10 and 60000");
        }
        if let Some(key) = &self.auth.operator_key
            && key.len() < 16
        {
            return bad("auth.operator_key", "must be at least 16 characters");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad(
                "log.level",
                "is not a valid filter (try `info` or `herald_server=debug`)",
            );
        }
        Ok(())
    }

    pub fn operator_key(&self) -> Result<Option<String>, String> {
        if let Some(key) = &self.auth.operator_key {
            return Ok(Some(key.clone()));
        }
        match &self.auth.operator_key_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|e| format!("cannot read auth.operator_key_file {}: {e}", path.display())),
            None => Ok(None),
        }
    }
}

/// The address a client on this machine reaches a server listening on `listen` at: an
/// unspecified address (`0.0.0.0`, `::`) is served on loopback too.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, listen.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, listen.port()))
        }
        _ => listen,
    }
}

/// `HERALD_…` variables that name a setting. Others with the prefix (the CLI's `HERALD_URL` and
/// `HERALD_KEY`, test tooling) are not configuration and must not stop the server; a typo
/// inside a known section (`HERALD_LIVE__HEARTBEAT_MSEC`) is still an error.
fn config_env() -> Env {
    let sections: Vec<String> = match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => vec![],
    };
    Env::prefixed("HERALD_").split("__").filter(move |key| {
        let key = key.as_str().to_ascii_lowercase();
        let section = key.split('.').next().unwrap_or_default();
        sections.iter().any(|s| s == section)
    })
}

/// Figment's errors already name the key path and the source (file or env variable).
fn describe(error: &figment::Error) -> String {
    let mut lines = vec![];
    for e in error.clone() {
        let key = if e.path.is_empty() {
            String::from("(top level)")
        } else {
            e.path.join(".")
        };
        let source = e
            .metadata
            .as_ref()
            .map(|m| format!(" (from {})", m.name))
            .unwrap_or_default();
        lines.push(format!(
            "invalid configuration: `{key}`{source}: {}",
            e.kind
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error, which is large; tests only"
)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_named() {
        figment::Jail::expect_with(|_| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("herald.toml");
            std::fs::write(&file, "[live]\nheartbeat_msec = 5\n").unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(err.contains("heartbeat_msec"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_is_named() {
        figment::Jail::expect_with(|_| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("herald.toml");
            std::fs::write(&file, "[live]\nheartbeat_ms = 10\n").unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(err.contains("live.heartbeat_ms"), "{err}");
            std::fs::write(&file, "listen = \"not an address\"\n").unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(err.contains("listen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn prefixed_variables_that_are_not_settings_are_ignored() {
        // Jail serialises the tests that touch the environment and restores it afterwards.
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_URL", "http://127.0.0.1:8080");
            jail.set_env("HERALD_TEST_PYTHON", "/usr/bin/python3");
            jail.set_env("HERALD_LIVE__HEARTBEAT_MS", "20000");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.live.heartbeat_ms, 20_000);
            jail.set_env("HERALD_LIVE__HEARTBEAT_MSEC", "1");
            let err = Config::load(None).unwrap_err();
            assert!(err.contains("heartbeat_msec"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn defaults_are_the_embedded_default() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./herald-data"));
        assert_eq!(c.live.reconnect_grace_ms, 10_000);
        c.validate().unwrap();
    }

    #[test]
    fn delivery_settings_are_checked() {
        figment::Jail::expect_with(|_| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("herald.toml");
            std::fs::write(
                &file,
                "[delivery]\nlease_ms = 1000\nattempt_timeout_ms = 2000\n",
            )
            .unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(err.contains("delivery.lease_ms"), "{err}");
            std::fs::write(&file, "[delivery]\nbatchsize = 5\n").unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(err.contains("batchsize"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn engine_settings_are_checked() {
        figment::Jail::expect_with(|_| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("herald.toml");
            std::fs::write(&file, "[engine]\npoll_ms = 5\n").unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(err.contains("engine.poll_ms"), "{err}");
            std::fs::write(&file, "[engine]\npoll_ms = 250\n").unwrap();
            assert_eq!(Config::load(Some(&file)).unwrap().engine.poll_ms, 250);
            std::fs::write(&file, "[engine]\npoll = 250\n").unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(err.contains("poll"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn cluster_mode_names_what_it_lacks() {
        let mut c = Config {
            store: StoreKind::Postgres,
            ..Config::default()
        };
        let err = c.validate().unwrap_err();
        assert!(err.contains("postgres.url"), "{err}");
        c.postgres.url = Some("postgres://postgres@127.0.0.1:5432/test".into());
        let err = c.validate().unwrap_err();
        assert!(err.contains("redis.url"), "{err}");
        c.redis.url = Some("redis://127.0.0.1:6379".into());
        let err = c.validate().unwrap_err();
        assert!(
            err.contains("master_key"),
            "every node must share it: {err}"
        );
        c.master_key = Some("a shared key".into());
        c.validate().unwrap();

        c.cluster.node_ttl_ms = c.live.reconnect_grace_ms + 1;
        let err = c.validate().unwrap_err();
        assert!(err.contains("cluster.node_ttl_ms"), "{err}");
        c.cluster.node_ttl_ms = 3_000;
        c.node_id = Some("node one".into());
        let err = c.validate().unwrap_err();
        assert!(err.contains("node_id"), "{err}");
    }
}
