//! A fresh schema per case. PostgreSQL is found at `HERALD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); when it cannot be reached the case fails with a
//! message saying so — it is never skipped, in CI or elsewhere.

use std::sync::Arc;

use herald_store_postgres::PostgresStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// Drops its schema (and everything in it) when dropped.
pub struct Schema {
    pub name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // A thread of its own with its own runtime: the case's runtime may be shutting down.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
                let connection = tokio::spawn(connection);
                let result = client.batch_execute(&sql).await;
                drop(client);
                let _ = connection.await;
                result
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop a test schema: {e}");
        }
    }
}

/// A store on a new, empty schema, and the guard that drops the schema.
pub async fn fresh() -> (Arc<PostgresStore>, Schema) {
    let name = format!("herald_test_{}", uuid::Uuid::new_v4().simple());
    let url = url();
    let schema = Schema { name };
    match PostgresStore::connect(&url, Some(&schema.name)).await {
        Ok(store) => (Arc::new(store), schema),
        Err(e) => panic!(
            "these tests need PostgreSQL at {url} (set HERALD_TEST_POSTGRES_URL to point \
             elsewhere): {e}"
        ),
    }
}
