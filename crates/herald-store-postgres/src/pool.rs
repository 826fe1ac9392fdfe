//! The connection pool (deadpool) and the start-up work: creating the schema, pinning every
//! connection's `search_path` to it, and running the versioned migrations (refinery, embedded
//! from `migrations/`) under an advisory lock, so nodes starting together migrate once.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use herald_engine::store::StoreError;
use tokio_postgres::NoTls;

use crate::codec::db;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Serializes migrations across processes: `pg_advisory_lock` key ("herald" in ASCII).
const MIGRATION_LOCK: i64 = 0x6865_7261_6c64;

/// How long connecting may take unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A transaction whose node has gone quiet this long is ended by the server, releasing its
/// locks. A node stalled mid-transaction (a long pause, `SIGSTOP`) would otherwise hold them for
/// as long as it stalls — above all the engine lease row an engine commit holds `FOR SHARE`,
/// which the node taking the lease over must update: decisions would stop cluster-wide. A
/// healthy node never waits this long between the statements of one transaction.
const STALLED_TRANSACTION: std::time::Duration = std::time::Duration::from_secs(2);

/// Connections per store. A node's writers wait for a free one rather than overload the server.
const POOL_SIZE: usize = 16;

/// The pool of a store, every connection using `schema`.
pub(crate) struct Connections {
    pool: Pool,
}

impl Connections {
    pub(crate) async fn open(url: &str, schema: Option<&str>) -> Result<Connections, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("postgres url: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut options = format!(
            "-c idle_in_transaction_session_timeout={}",
            STALLED_TRANSACTION.as_millis()
        );
        if let Some(schema) = schema {
            check_schema_name(schema)?;
            options.push_str(&format!(" -c search_path={schema}"));
        }
        config.options(options);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Unavailable(format!("postgres pool: {e}")))?;
        let connections = Connections { pool };
        connections.migrate(schema).await?;
        Ok(connections)
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => db(e),
            other => StoreError::Unavailable(format!("postgres pool: {other}")),
        })
    }

    async fn migrate(&self, schema: Option<&str>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db)?;
        let result = migrate_locked(&mut client, schema).await;
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db);
        result.and(unlocked.map(drop))
    }
}

async fn migrate_locked(client: &mut Object, schema: Option<&str>) -> Result<(), StoreError> {
    if let Some(schema) = schema {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(db)?;
    }
    let client: &mut tokio_postgres::Client = client.as_mut();
    embedded::migrations::runner()
        .set_grouped(true)
        .set_abort_divergent(true)
        .run_async(client)
        .await
        .map_err(|e| StoreError::Unavailable(format!("postgres migration: {e}")))?;
    Ok(())
}

/// Schema names go into SQL and connection options unquoted: only lowercase ASCII letters,
/// digits and `_`, starting with a letter or `_`, at most 63 bytes.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "invalid schema name {schema:?}: use lowercase letters, digits and _"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["herald", "herald_test_0a1b", "_x"] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "Herald",
            "1x",
            "a-b",
            "a b",
            "a;drop",
            "\"a\"",
            long.as_str(),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
