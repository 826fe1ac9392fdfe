//! Starting and stopping the server: open the store, seal secrets, bootstrap the default
//! tenant, bind, serve until a shutdown signal, then drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use herald_engine::clock::{Clock, SystemClock};
use herald_engine::delivery::DeliveryQueue;
use herald_engine::notify::store::NotifyStore;
use herald_engine::store::Store;
use herald_store_postgres::PostgresStore;
use herald_store_sqlite::SqliteStore;
use tokio::net::TcpListener;

use herald_api::{ApiConfig, AppState, Shared};
use herald_engine::ports::ChannelRegistry;
use herald_runtime::cluster::{Leadership, Peers};
use herald_runtime::delivery::DeliveryCore;
use herald_runtime::live::hub::Hub;
use herald_runtime::notify::{EngineHandle, Signal};
use herald_runtime::{Parts, Runtime, Settings};
use herald_tenancy::apps::AppCache;
use herald_tenancy::seal::Sealer;

use crate::cluster::{Node, StoreKind};
use crate::config::Config;

/// The database file inside the data folder.
pub const DB_FILE: &str = "herald.db";

/// Everything durable a command needs: the store and the sealer over the data folder.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub notify: Arc<dyn NotifyStore>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub sealer: Sealer,
    /// The PostgreSQL store in cluster mode (it also holds the engine lease).
    pub postgres: Option<Arc<PostgresStore>>,
}

pub async fn open_backend(config: &Config) -> anyhow::Result<Backend> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    let key_file = config
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("master.key"));
    let sealer = Sealer::load_or_create(config.master_key.as_deref(), &key_file)?;
    Ok(match config.store {
        StoreKind::Sqlite => {
            let store = SqliteStore::open(&config.data_dir.join(DB_FILE))
                .map_err(|e| anyhow::anyhow!("cannot open the store: {e}"))?;
            let store = Arc::new(store);
            Backend {
                store: store.clone(),
                notify: store.clone(),
                queue: store,
                sealer,
                postgres: None,
            }
        }
        StoreKind::Postgres => {
            let store = crate::cluster::open_postgres(config).await?;
            Backend {
                store: store.clone(),
                notify: store.clone(),
                queue: store.clone(),
                sealer,
                postgres: Some(store),
            }
        }
    })
}

/// The lock file inside the data folder that one running server holds.
pub const LOCK_FILE: &str = "herald.lock";

/// An exclusive lock on the data folder, held for as long as the server runs: the store has one
/// writer by design, and a second server on the same folder would break it. The operator CLI
/// does not take it (SQLite serialises its few writes with the server's). The lock is the
/// operating system's, so a killed server leaves no stale lock behind.
pub struct DataLock {
    _file: std::fs::File,
}

impl DataLock {
    pub fn take(data_dir: &std::path::Path) -> anyhow::Result<DataLock> {
        use std::io::{Read, Seek, Write};
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data folder {}", data_dir.display()))?;
        let path = data_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        if let Err(e) = file.try_lock() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (pid {pid})"),
            };
            return Err(match e {
                std::fs::TryLockError::WouldBlock => anyhow::anyhow!(
                    "the data folder {} is in use by another herald server{holder}; stop it or choose another --data",
                    data_dir.display()
                ),
                std::fs::TryLockError::Error(e) => anyhow::Error::new(e).context(format!(
                    "cannot lock the data folder {}",
                    data_dir.display()
                )),
            });
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()?;
        Ok(DataLock { _file: file })
    }
}

/// A bound, ready server.
pub struct Server {
    pub state: AppState,
    /// The embedded store's one-process lock; a cluster node shares its database by design.
    _lock: Option<DataLock>,
    listener: TcpListener,
    engine_signals: tokio::sync::mpsc::UnboundedReceiver<Signal>,
    /// In cluster mode: the peers and the tasks talking to them.
    node: Option<Node>,
}

impl Server {
    pub async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
        channels: ChannelRegistry,
    ) -> anyhow::Result<Server> {
        // Before the store is opened: a second server must not even migrate it.
        let lock = match config.store {
            StoreKind::Sqlite => Some(DataLock::take(&config.data_dir)?),
            StoreKind::Postgres => None,
        };
        let backend = open_backend(&config).await?;
        let (leadership, node) = match &backend.postgres {
            Some(store) => {
                let (leadership, node) = crate::cluster::join(&config, store.clone()).await?;
                (leadership, Some(node))
            }
            None => (Leadership::sole(), None),
        };
        if config.bootstrap_default_tenant {
            herald_tenancy::tenants::default_tenant(
                backend.store.as_ref(),
                &backend.sealer,
                &config.data_dir,
                clock.now(),
            )
            .await?;
        }
        let operator_key_hash = config
            .operator_key()
            .map_err(anyhow::Error::msg)?
            .map(|k| herald_tenancy::auth::keys::hash(&k));
        let peers = node.as_ref().map(|n| n.peers.clone() as Arc<dyn Peers>);
        let (engine, engine_signals) = EngineHandle::new(peers.clone());
        let hub = Arc::new(Hub::new(
            clock.clone(),
            time::Duration::milliseconds(config.live.reconnect_grace_ms as i64),
            config.live.session_queue,
            engine.clone(),
        ));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let delivery_wakeup = Arc::new(tokio::sync::Notify::new());
        let delivery = Arc::new(DeliveryCore::new(
            config.delivery.clone(),
            clock.clone(),
            delivery_wakeup.clone(),
        ));
        let channels = herald_channels::builtin(&config.channels(), clock.clone())
            .map_err(anyhow::Error::msg)?
            .overridden_by(channels);
        let apps = Arc::new(AppCache::new(backend.store.clone(), backend.sealer.clone()));
        let runtime = Runtime::new(Parts {
            store: backend.store,
            notify: backend.notify,
            queue: backend.queue,
            sealer: backend.sealer,
            hub,
            clock,
            channels,
            apps,
            engine,
            delivery,
            delivery_wakeup,
            leadership,
            peers,
            settings: Settings {
                live: config.live.clone(),
                delivery: config.delivery.clone(),
                engine: config.engine.clone(),
            },
        });
        let state = AppState::new(Shared {
            runtime,
            config: ApiConfig {
                limits: config.limits.clone(),
                auth: config.auth.clone(),
                live: config.live.clone(),
                matrix: config.matrix.clone(),
                cometd: config.cometd.clone(),
            },
            operator_key_hash,
            metrics: crate::telemetry::metrics_handle(),
        });
        Ok(Server {
            state,
            _lock: lock,
            listener,
            engine_signals,
            node,
        })
    }

    pub async fn with_system_clock(config: Config) -> anyhow::Result<Server> {
        Server::build(config, Arc::new(SystemClock), ChannelRegistry::default()).await
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves; then stops accepting, tells live sessions to go, and
    /// lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let hub = self.state.hub.clone();
        let runtime = self.state.runtime.clone();
        let sweeper = tokio::spawn({
            let hub = hub.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    hub.sweep(time::Duration::hours(1));
                }
            }
        });
        let graces = herald_runtime::live::graces::spawn(hub.clone());
        let renewals = herald_runtime::cluster::spawn_renewals(self.state.runtime.clone());
        let node = self.node.map(|mut node| {
            node.tasks
                .push(node.peers.listen(self.state.runtime.clone()));
            node
        });
        // Aborting the engine mid-step is safe: a step's work is one transaction.
        let engine = herald_runtime::notify::spawn(self.state.runtime.clone(), self.engine_signals);
        let deliveries = herald_runtime::delivery::spawn(
            self.state.delivery.clone(),
            self.state.runtime.clone(),
            self.state.queue.clone(),
        );
        let app = herald_api::router(self.state);
        tracing::info!(listen = %self.listener.local_addr()?, "herald is serving");
        // Frames and answers are small and written as soon as they are ready; Nagle's algorithm
        // would hold each one back until the peer acknowledged the previous (tens of ms with
        // delayed ACKs).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error.message = %e, "could not set TCP_NODELAY");
            }
        });
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!(
                    "shutting down: closing live sessions, finishing in-flight requests"
                );
                hub.shut_down();
            })
            .await;
        sweeper.abort();
        graces.abort();
        deliveries.shutdown().await;
        engine.abort();
        if let Some(renewals) = renewals {
            renewals.abort();
        }
        // Another node takes over the decisions, and this node's users' presence goes, at
        // once rather than when the lease and the liveness run out.
        runtime.leadership.release().await;
        if let Some(node) = node {
            for task in &node.tasks {
                task.abort();
            }
            node.peers.leave().await;
        }
        result.context("server error")
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_server_on_the_same_data_folder_is_refused_naming_the_folder_and_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataLock::take(dir.path()).unwrap();
        let refused = DataLock::take(dir.path())
            .err()
            .expect("the folder is locked");
        let message = refused.to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataLock::take(dir.path()).expect("free again once the holder is gone");
    }
}
