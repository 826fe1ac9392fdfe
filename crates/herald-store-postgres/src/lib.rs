//! Herald's cluster store: the engine's [`Store`], [`DeliveryQueue`] and [`NotifyStore`] ports
//! on PostgreSQL, for several Herald nodes sharing one database.
//!
//! - `pool`: the connections (deadpool; every connection's `search_path` is the store's
//!   schema) and the versioned migrations (refinery, from `migrations/`), run at connect.
//! - `codec`: how engine values map to columns (times as unix milliseconds, ids as
//!   `TEXT COLLATE "C"`), and the statement helpers.
//! - `tenants`, `apps`, `devices`: one module per resource.
//! - `transcript`: appending events (idempotency, gap-free positions under the conversation's
//!   lock, effects); `conversation`: the appends the store writes itself and the transcript
//!   reads; `membership`: the membership and unread projection.
//! - `deliveries`: the delivery queue (claims `FOR UPDATE SKIP LOCKED` under a lease,
//!   settlements); `concluded`: a notification's status from its deliveries.
//! - `notify`: the notification engine's state (`NotifyStore`); `lease`: the engine lease
//!   (`EngineLease`) its commits are fenced with.
//! - `ports`: the `Store` and `DeliveryQueue` implementations.
//!
//! Every write is one transaction, committed before the method answers (with PostgreSQL's
//! default `synchronous_commit = on` the commit is flushed to the WAL): an acknowledgement means
//! committed. A batch locks its conversations in sorted order, so batches do not deadlock one
//! another; a transaction that still hits a deadlock, a serialization failure or a unique-key
//! race with another node runs again after a short pause. Reads run in one
//! read-only `REPEATABLE READ` transaction, so a multi-statement read is one snapshot.
//!
//! Times are stored with millisecond precision: a time read back is the written one truncated
//! to the millisecond, in UTC. Event bodies keep their exact `occurred_at`.
//!
//! ```no_run
//! # async fn run() -> Result<(), herald_engine::store::StoreError> {
//! let url = "postgres://postgres@127.0.0.1:5432/herald";
//! let store = herald_store_postgres::PostgresStore::connect(url, Some("herald")).await?;
//! # Ok(()) }
//! ```

mod apps;
mod codec;
mod concluded;
mod conversation;
mod deliveries;
mod devices;
mod lease;
mod membership;
mod notify;
mod pool;
mod ports;
mod tenants;
mod transcript;

use herald_engine::push::Delivery;
use herald_engine::store::StoreError;
use time::OffsetDateTime;

#[cfg(doc)]
use herald_engine::ports::{DeliveryQueue, NotifyStore, Store};

use crate::pool::Connections;

/// How often a transaction that deadlocked or lost a unique-key race runs again.
const RETRIES: usize = 5;

/// The pause before the first run again; it doubles each time (5, 10, 20, 40, 80 ms).
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Runs `$body` (an expression using the transaction `$tx`) in one read-write transaction and
/// commits it before answering; runs it again after a deadlock or a lost unique-key race.
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 0;
        loop {
            let mut client = $store.connections.client().await?;
            let $tx = client.transaction().await.map_err($crate::codec::db)?;
            match $body {
                Ok(value) => {
                    $tx.commit().await.map_err($crate::codec::db)?;
                    break Ok(value);
                }
                Err(e) if $crate::codec::retryable(&e) && tries < $crate::RETRIES => {
                    drop($tx);
                    drop(client);
                    // The other side is committing: give it a moment, longer each time.
                    tokio::time::sleep($crate::RETRY_PAUSE * (1u32 << tries)).await;
                    tries += 1;
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

/// Runs `$body` in one read-only `REPEATABLE READ` transaction: one snapshot.
macro_rules! read_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.connections.client().await?;
        let $tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err($crate::codec::db)?;
        let value = $body?;
        $tx.commit().await.map_err($crate::codec::db)?;
        Ok(value)
    }};
}

pub(crate) use {read_tx, write_tx};

/// The PostgreSQL store. Cheap to share behind an `Arc`.
pub struct PostgresStore {
    connections: Connections,
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or key=value string), creates `schema` if it is
    /// missing (`None`: the server's default `search_path`), and runs the migrations that
    /// have not run yet. Schema names are lowercase letters, digits and `_`.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        Ok(PostgresStore {
            connections: Connections::open(url, schema).await?,
        })
    }

    /// Enqueues new deliveries, due at once, in one transaction (all or nothing; an id
    /// already stored for the tenant is `AlreadyExists`).
    pub async fn enqueue_deliveries(
        &self,
        deliveries: Vec<Delivery>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        write_tx!(self, |tx| {
            let mut result = Ok(());
            for delivery in &deliveries {
                result = deliveries::insert(&tx, delivery, now, now).await;
                if result.is_err() {
                    break;
                }
            }
            result
        })
    }
}
