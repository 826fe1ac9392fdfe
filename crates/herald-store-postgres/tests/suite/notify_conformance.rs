//! The backend-agnostic notification engine suite, against a fresh schema per case.

use std::sync::Arc;

use herald_engine::delivery::DeliveryQueue;
use herald_engine::notify::store::NotifyStore;
use herald_engine::store::Store;
use herald_store_conformance::{Fixture, NotifyFixture};
use herald_store_postgres::PostgresStore;

use crate::fixture::{Schema, fresh};

struct Postgres {
    store: Arc<PostgresStore>,
    _schema: Schema,
}

impl Fixture for Postgres {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

impl NotifyFixture for Postgres {
    fn notify(&self) -> Arc<dyn NotifyStore> {
        self.store.clone()
    }

    fn queue(&self) -> Arc<dyn DeliveryQueue> {
        self.store.clone()
    }
}

herald_store_conformance::notify_conformance_tests!(async {
    let (store, schema) = fresh().await;
    Postgres {
        store,
        _schema: schema,
    }
});
