//! The backend-agnostic delivery queue suite, against a fresh schema per case.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use herald_engine::delivery::DeliveryQueue;
use herald_engine::push::Delivery;
use herald_engine::store::{Store, StoreError};
use herald_store_conformance::{DeliveryFixture, Fixture};
use herald_store_postgres::PostgresStore;
use time::OffsetDateTime;

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

impl DeliveryFixture for Postgres {
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
    let (store, schema) = fresh().await;
    Postgres {
        store,
        _schema: schema,
    }
});
