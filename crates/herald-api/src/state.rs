//! The state every handler shares: the node's [`Runtime`] and what only the front doors need.

use std::sync::Arc;

use herald_runtime::Runtime;
use herald_runtime::config::LiveConfig;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::{AuthConfig, LimitsConfig};

/// One pointer: cloned by every request, connection and live session.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub runtime: Runtime,
    pub config: ApiConfig,
    /// SHA-256 of the operator key; `None` disables the admin API.
    pub operator_key_hash: Option<[u8; 32]>,
    pub metrics: Option<PrometheusHandle>,
}

/// The configuration the front doors read.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub live: LiveConfig,
    pub matrix: crate::matrix::MatrixConfig,
    pub cometd: crate::cometd::CometdConfig,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Handlers reach the runtime's parts (`state.store`, `state.hub`, …) through here.
impl std::ops::Deref for Shared {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}
