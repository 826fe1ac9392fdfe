//! The backend-agnostic notification engine suite, against a fresh database file per case.

use std::sync::Arc;

use herald_engine::delivery::DeliveryQueue;
use herald_engine::notify::store::NotifyStore;
use herald_engine::store::Store;
use herald_store_conformance::{Fixture, NotifyFixture};
use herald_store_sqlite::SqliteStore;

struct Sqlite {
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

impl Fixture for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

impl NotifyFixture for Sqlite {
    fn notify(&self) -> Arc<dyn NotifyStore> {
        self.store.clone()
    }

    fn queue(&self) -> Arc<dyn DeliveryQueue> {
        self.store.clone()
    }
}

herald_store_conformance::notify_conformance_tests!(async {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SqliteStore::open(&dir.path().join("herald.db")).expect("the store opens");
    Sqlite {
        store: Arc::new(store),
        _dir: dir,
    }
});
