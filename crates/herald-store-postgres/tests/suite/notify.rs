//! The notification engine's state (`NotifyStore`), which has no conformance suite yet: the
//! outbox, one step's commit, timers, the decision log and its conclusion, health checks.

use std::sync::Arc;

use herald_engine::delivery::{Attempt, DeliveryQueue, Settlement};
use herald_engine::device::DeviceChannel;
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::record::{NotificationRecord, Status};
use herald_engine::notify::store::{HealthCheck, NotifyCommit, NotifyStore, ThreadKey};
use herald_engine::notify::timing::{Pending, Thread, UserState, Wait};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use herald_engine::store::Store;
use herald_store_conformance::support::{
    app_id, append, at, conversation, device_id, joined, left, message, registration, tenant, user,
};
use time::Duration;

use crate::fixture::fresh;

fn record(id: &str, status: Status, created: i64) -> NotificationRecord {
    NotificationRecord::new(
        id.into(),
        tenant("acme"),
        user("ann"),
        Some(app_id("chat")),
        Some(conversation("c1")),
        PushKind::NewMessage,
        Some(1),
        None,
        status,
        "because",
        at(created),
    )
}

fn thread_due(seconds: i64) -> Thread {
    Thread {
        pending: Some(Pending {
            notification_id: "n1".into(),
            due_at: at(seconds),
            wait: Wait::Grace,
            first_position: 1,
            latest_position: 1,
            count: 1,
            expires_at: at(seconds + 3_600),
        }),
        ..Thread::default()
    }
}

fn key(conv: &str) -> ThreadKey {
    ThreadKey {
        tenant: tenant("acme"),
        user: user("ann"),
        app: app_id("chat"),
        conversation: conversation(conv),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queue_in_order_and_a_commit_takes_them_off_the_outbox() {
    let (pg, _schema) = fresh().await;
    let store: Arc<dyn Store> = pg.clone();
    let t = tenant("acme");
    let events = vec![
        joined("j1", "c1", "ann", "visitor"),
        message("m1", "c1", "bob", "agent", "hi"),
        message("m2", "c1", "bob", "agent", "there"),
        left("l1", "c1", "ann"),
    ];
    append(&store, &t, events).await;
    let items = pg.outbox(10).await.expect("the outbox reads");
    let positions: Vec<u64> = items.iter().map(|i| i.position).collect();
    assert_eq!(positions, vec![2, 3], "messages only, in order");
    let commit = NotifyCommit {
        evaluated: vec![items[0].seq],
        ..NotifyCommit::default()
    };
    pg.commit_notify(commit, at(5)).await.expect("committed");
    let rest = pg.outbox(10).await.expect("the outbox reads");
    assert_eq!(rest, items[1..].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_and_notification_timers_come_due_and_a_default_thread_is_deleted() {
    let (pg, _schema) = fresh().await;
    assert_eq!(pg.next_due().await.expect("reads"), None);
    let mut scheduled = record("n-later", Status::Scheduled, 1);
    scheduled.due_at = Some(at(50));
    let commit = NotifyCommit {
        threads: vec![(key("c1"), thread_due(30)), (key("c2"), thread_due(90))],
        records: vec![scheduled.clone(), record("n-sent", Status::Sent, 2)],
        ..NotifyCommit::default()
    };
    pg.commit_notify(commit, at(1)).await.expect("committed");
    assert_eq!(pg.next_due().await.expect("reads"), Some(at(30)));
    assert_eq!(pg.due_threads(at(60), 10).await.unwrap(), vec![key("c1")]);
    let due = pg.due_notifications(at(60), 10).await.unwrap();
    assert_eq!(due, vec![(tenant("acme"), "n-later".to_string())]);
    assert_eq!(
        pg.notification(&tenant("acme"), "n-later").await.unwrap(),
        Some(scheduled)
    );

    // The thread ends; the scheduled notification is sent (replaced by id, no timer left).
    let commit = NotifyCommit {
        threads: vec![(key("c1"), Thread::default())],
        records: vec![record("n-later", Status::Sent, 1)],
        ..NotifyCommit::default()
    };
    pg.commit_notify(commit, at(60)).await.expect("committed");
    assert_eq!(pg.next_due().await.expect("reads"), Some(at(90)));
    assert!(pg.due_notifications(at(100), 10).await.unwrap().is_empty());
    let context = pg
        .user_context(&tenant("acme"), &user("ann"), None)
        .await
        .unwrap();
    assert_eq!(context.threads.len(), 1, "only c2's thread is left");
    let newest_first: Vec<String> = pg
        .user_notifications(&tenant("acme"), &user("ann"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(newest_first, vec!["n-sent", "n-later"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_context_holds_devices_state_preferences_email_and_badge() {
    let (pg, _schema) = fresh().await;
    let store: Arc<dyn Store> = pg.clone();
    let t = tenant("acme");
    let reg = registration("chat", "ann", DeviceChannel::Apns, "tok");
    store
        .register_device(&t, &reg, device_id("d1"), at(1))
        .await
        .unwrap();
    append(&store, &t, vec![joined("j1", "c1", "ann", "visitor")]).await;
    append(&store, &t, vec![message("m1", "c1", "bob", "agent", "hi")]).await;
    let ann = herald_engine::participant::Participant {
        email: Some("ann@example.com".into()),
        ..herald_store_conformance::support::participant(
            "ann",
            herald_engine::participant::Role::Visitor,
        )
    };
    store
        .put_participant(
            &t,
            &conversation("c1"),
            &ann,
            None,
            herald_store_conformance::support::event_id("p1"),
            at(2),
        )
        .await
        .unwrap();
    let state = UserState {
        last_push_at: Some(at(3)),
        missed_calls: 2,
    };
    let commit = NotifyCommit {
        user_states: vec![(t.clone(), user("ann"), app_id("chat"), state.clone())],
        threads: vec![(key("c1"), thread_due(30))],
        ..NotifyCommit::default()
    };
    pg.commit_notify(commit, at(3)).await.unwrap();

    let context = pg
        .user_context(&t, &user("ann"), Some(&conversation("c1")))
        .await
        .unwrap();
    assert_eq!(context.devices.len(), 1);
    assert_eq!(context.states.get(&app_id("chat")), Some(&state));
    assert_eq!(context.unread_total, 1);
    assert_eq!(
        context.email.as_deref(),
        Some("ann@example.com"),
        "the participant's"
    );
    assert_eq!(context.threads.len(), 1);

    let preferences = Preferences {
        email: Some("ann@home.example".into()),
        ..Preferences::default()
    };
    pg.put_preferences(&t, &user("ann"), &preferences)
        .await
        .unwrap();
    let context = pg
        .user_context(&t, &user("ann"), Some(&conversation("c1")))
        .await
        .unwrap();
    assert_eq!(
        context.email.as_deref(),
        Some("ann@home.example"),
        "preferences first"
    );
    assert_eq!(context.preferences, preferences);
}

pub fn webhook_delivery(id: &str, notification: &str) -> Delivery {
    let push: Push = serde_json::from_value(serde_json::json!({
        "kind": "new_message", "tenant_id": "acme", "app_id": "chat", "user_id": "ann",
        "message_count": 1, "unread": 1, "badge": 1, "missed_calls": 0,
        "collapse_key": "c1", "high_priority": true,
        "created_at": "1970-01-01T00:00:00Z", "expires_at": "1970-01-01T01:00:00Z",
    }))
    .expect("a push");
    Delivery {
        id: id.into(),
        notification_id: notification.into(),
        tenant_id: tenant("acme"),
        app_id: app_id("chat"),
        channel: "webhook".into(),
        target: Target::Webhook {
            endpoint_id: "hook".into(),
            devices: vec![],
        },
        push,
        attempt: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_notification_whose_deliveries_all_fail_is_concluded_failed() {
    let (pg, _schema) = fresh().await;
    let commit = NotifyCommit {
        records: vec![record("n1", Status::Sent, 1)],
        deliveries: vec![webhook_delivery("d1", "n1"), webhook_delivery("d2", "n1")],
        ..NotifyCommit::default()
    };
    pg.commit_notify(commit, at(1)).await.unwrap();
    let claimed = pg
        .claim_deliveries(at(2), Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let failed = |at_s| Attempt {
        at: at(at_s),
        duration_ms: 5,
        outcome: DeliveryOutcome::InvalidTarget {
            reason: "gone".into(),
        },
    };
    for (i, d) in claimed.iter().enumerate() {
        let status = pg
            .notification(&tenant("acme"), "n1")
            .await
            .unwrap()
            .unwrap()
            .status;
        assert_eq!(
            status,
            Status::Sent,
            "still sent while a delivery is pending ({i})"
        );
        pg.settle_delivery(&d.tenant_id, &d.id, Settlement::Failed(failed(3)), at(3))
            .await
            .unwrap();
    }
    let status = pg
        .notification(&tenant("acme"), "n1")
        .await
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(status, Status::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_expire_into_unhealthy_devices_until_acknowledged() {
    let (pg, _schema) = fresh().await;
    let store: Arc<dyn Store> = pg.clone();
    let t = tenant("acme");
    let reg = registration(
        "chat",
        "ann",
        DeviceChannel::Webpush,
        "https://push.example/1",
    );
    store
        .register_device(&t, &reg, device_id("w1"), at(1))
        .await
        .unwrap();
    let to_check = pg
        .devices_to_check(&t, &app_id("chat"), at(10), 10)
        .await
        .unwrap();
    assert_eq!(to_check.len(), 1, "never checked");
    let check = HealthCheck {
        tenant: t.clone(),
        app: app_id("chat"),
        user: user("ann"),
        device: device_id("w1"),
        check_id: "chk-1".into(),
        deadline: at(100),
    };
    let commit = NotifyCommit {
        checks: vec![check],
        ..NotifyCommit::default()
    };
    pg.commit_notify(commit, at(10)).await.unwrap();
    assert!(
        pg.devices_to_check(&t, &app_id("chat"), at(50), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        pg.expire_checks(at(99)).await.unwrap().is_empty(),
        "not yet"
    );
    let expired = pg.expire_checks(at(100)).await.unwrap();
    assert_eq!(expired, vec![(t.clone(), user("ann"), device_id("w1"))]);
    assert!(pg.expire_checks(at(200)).await.unwrap().is_empty(), "once");
    let unhealthy = pg.unhealthy_devices(&t, &user("ann")).await.unwrap();
    assert_eq!(unhealthy, vec![(device_id("w1"), app_id("chat"))]);
    let wrong_user = pg
        .acknowledge_check(&t, &user("bob"), &device_id("w1"), "chk-1", at(201))
        .await
        .unwrap();
    assert!(!wrong_user);
    let acknowledged = pg
        .acknowledge_check(&t, &user("ann"), &device_id("w1"), "chk-1", at(201))
        .await
        .unwrap();
    assert!(acknowledged);
    assert!(
        pg.unhealthy_devices(&t, &user("ann"))
            .await
            .unwrap()
            .is_empty()
    );
}
