//! What only a file can show: data outlives the process that wrote it.

use std::sync::Arc;

use herald_engine::device::DeviceChannel;
use herald_engine::store::Store;
use herald_store_conformance::support::{
    append, at, conversation, device_id, joined, message, registration, tenant, user,
};
use herald_store_sqlite::SqliteStore;

#[tokio::test]
async fn committed_writes_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let t = tenant("acme");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "v1", "visitor"),
            message("e2", "c1", "a1", "agent", "hi"),
        ],
    )
    .await;
    let (device, _) = store
        .register_device(
            &t,
            &registration("mobile", "v1", DeviceChannel::Fcm, "tok-1"),
            device_id("d1"),
            at(1),
        )
        .await
        .unwrap();
    let conversation_before = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap();
    drop(store);

    let reopened: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    assert_eq!(
        reopened
            .get_conversation(&t, &conversation("c1"))
            .await
            .unwrap(),
        conversation_before
    );
    assert_eq!(
        reopened.list_devices(&t, &user("v1")).await.unwrap(),
        [device]
    );
    // Positions carry on where they stopped, and event ids are still remembered.
    let next = append(
        &reopened,
        &t,
        vec![
            message("e3", "c1", "a1", "agent", "again"),
            message("e2", "c1", "a1", "agent", "hi"),
        ],
    )
    .await;
    assert_eq!(
        next.iter()
            .map(|a| (a.position, a.duplicate))
            .collect::<Vec<_>>(),
        [(3, false), (2, true)]
    );
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_commits() {
    // The operator CLI opens the server's file from another process while it runs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let server: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let cli: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let t = tenant("acme");
    append(&server, &t, vec![message("e1", "c1", "a1", "agent", "hi")]).await;
    append(&cli, &t, vec![message("e2", "c1", "a1", "agent", "hi")]).await;
    let c1 = server
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c1.last_position, 2);
}

/// The embedded store holds no engine lease: a fenced commit is a wiring mistake, refused
/// with nothing written rather than written unchecked.
#[tokio::test]
async fn a_fenced_engine_commit_is_refused_and_writes_nothing() {
    use herald_engine::lease::Fence;
    use herald_engine::notify::store::{NotifyCommit, NotifyStore};
    use herald_engine::store::StoreError;

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("herald.db")).unwrap());
    let dyn_store: Arc<dyn Store> = store.clone();
    append(
        &dyn_store,
        &tenant("acme"),
        vec![message("e1", "c1", "a1", "agent", "hi")],
    )
    .await;
    let outbox = store.outbox(10).await.unwrap();
    let fenced = NotifyCommit {
        evaluated: vec![outbox[0].seq],
        fence: Some(Fence {
            holder: "node-a".into(),
            epoch: 1,
        }),
        ..NotifyCommit::default()
    };
    let refused = store.commit_notify(fenced, at(2)).await;
    assert!(matches!(refused, Err(StoreError::Fenced)), "{refused:?}");
    assert_eq!(
        store.outbox(10).await.unwrap(),
        outbox,
        "nothing was written"
    );
}
