//! The delivery core carries an email delivery through the built-in channel.

use std::time::Duration as StdDuration;

use herald_engine::delivery::DeliveryStatus;
use herald_server::server::DB_FILE;
use herald_store_sqlite::SqliteStore;
use herald_testkit::peers::SmtpPeer;
use herald_testkit::{PATIENCE, TestHub};
use serde_json::json;
use time::OffsetDateTime;

use super::*;

#[tokio::test]
async fn the_delivery_core_carries_an_email_delivery_through_the_builtin_channel() {
    let mut peer = SmtpPeer::plain().await;
    let hub = TestHub::builder()
        .configure(|c| c.delivery.poll_ms = 50)
        .start()
        .await;
    let (status, body) = hub
        .put(
            "/v1/apps/chat",
            &hub.key,
            json!({"smtp": {"host": "127.0.0.1", "port": peer.port, "security": "none", "from": FROM}}),
        )
        .await;
    assert!(status.is_success(), "app refused: {body}");

    // Enqueued straight into the queue through a second store on the hub's database file, as
    // `delivery_core.rs` in this suite does.
    let store = SqliteStore::open(&hub.data_dir().join(DB_FILE)).expect("the store opens");
    let d = delivery(digest(), "alice@example.com");
    store
        .enqueue_deliveries(vec![d.clone()], OffsetDateTime::now_utc())
        .await
        .expect("enqueued");
    hub.state.delivery_wakeup.notify_one();

    let mail = peer.next().await;
    assert_eq!(mail["rcpt_tos"], json!(["alice@example.com"]));
    assert_eq!(
        str_of(&mail, "/headers/Message-ID"),
        format!("<herald.{}@herald.test>", d.id)
    );

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let view = loop {
        let views = hub
            .state
            .queue
            .deliveries_of(&d.tenant_id, &d.notification_id)
            .await
            .expect("deliveries read");
        let view = views
            .into_iter()
            .find(|v| v.id == d.id)
            .expect("the delivery is stored");
        if view.status != DeliveryStatus::Pending {
            break view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {view:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    assert_eq!(view.status, DeliveryStatus::Delivered, "{view:?}");
    assert_eq!(view.channel, "email");
    assert_eq!(view.attempts.len(), 1, "{view:?}");
    peer.nothing_more().await;
}
