//! The backend-agnostic delivery queue suite, against a fresh database file per case.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use herald_engine::delivery::DeliveryQueue;
use herald_engine::push::Delivery;
use herald_engine::store::{Store, StoreError};
use herald_store_conformance::{DeliveryFixture, Fixture};
use herald_store_sqlite::SqliteStore;
use time::OffsetDateTime;

struct Sqlite {
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl Fixture for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

impl DeliveryFixture for Sqlite {
    fn queue(&self) -> Arc<dyn DeliveryQueue> {
        self.store.clone()
    }

    fn enqueue_deliveries(
        &self,
        deliveries: Vec<Delivery>,
        now: OffsetDateTime,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>> {
        Box::pin(self.store.enqueue_deliveries(deliveries, now))
    }
}

herald_store_conformance::delivery_conformance_tests!(async {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SqliteStore::open(&dir.path().join("herald.db")).expect("the store opens");
    Sqlite {
        store: Arc::new(store),
        _dir: dir,
    }
});
