//! The backend-agnostic conformance suite, against a fresh database file per case.

use std::sync::Arc;

use herald_store_sqlite::SqliteStore;

herald_store_conformance::store_conformance_tests!(async {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SqliteStore::open(&dir.path().join("herald.db")).expect("the store opens");
    (Arc::new(store), dir)
});
