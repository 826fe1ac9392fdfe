//! Appending and reading transcripts: positions, idempotency, atomic batches.

use std::collections::HashSet;
use std::sync::Arc;

use herald_engine::event::NewEvent;
use herald_engine::store::{Store, StoreError};
use serde_json::json;

use crate::support::{
    append, append_one, assert_invalid, at, conversation, effects, event, joined, membership,
    message, positions, read, tenant, transcript, unread_of,
};

pub async fn positions_start_at_one_and_are_gap_free_per_conversation(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let appended = append(
        &store,
        &t,
        vec![
            message("e1", "c1", "a1", "agent", "one"),
            message("e2", "c2", "a1", "agent", "one"),
            message("e3", "c1", "a1", "agent", "two"),
        ],
    )
    .await;
    assert_eq!(positions(&appended), [1, 1, 2]);
    let next = append_one(&store, &t, message("e4", "c1", "a1", "agent", "three")).await;
    assert_eq!(next.position, 3);
    assert!(!next.duplicate);
    assert_eq!(next.conversation_id, conversation("c1"));
    let c1 = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap()
        .expect("created by its first event");
    assert_eq!(c1.last_position, 3);
    assert_eq!(c1.created_at, at(10));
    assert_eq!(
        store
            .get_conversation(&t, &conversation("c2"))
            .await
            .unwrap()
            .unwrap()
            .last_position,
        1
    );
}

pub async fn positions_are_gap_free_under_concurrent_appends(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const EACH: usize = 50;
    let t = tenant("acme");
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, t) = (Arc::clone(&store), t.clone());
            tokio::spawn(async move {
                let mut positions = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let sender = format!("u{task}");
                    let e = message(&format!("e-{task}-{i}"), "c1", &sender, "agent", "hi");
                    positions.push(append_one(&store, &t, e).await.position);
                }
                positions
            })
        })
        .collect();
    let mut all = Vec::with_capacity(TASKS * EACH);
    for task in tasks {
        let positions = task.await.expect("the task finishes");
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "one task's appends are ordered: {positions:?}"
        );
        all.extend(positions);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(TASKS * EACH) as u64).collect();
    assert_eq!(all, expected, "every position exactly once");

    let stored = store
        .events_after(&t, &conversation("c1"), 0, 10_000)
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|s| s.position).collect::<Vec<_>>(),
        expected
    );
    let ids: HashSet<_> = stored.iter().map(|s| s.event.event_id.clone()).collect();
    assert_eq!(ids.len(), TASKS * EACH, "every event stored once");
    let c1 = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c1.last_position, (TASKS * EACH) as u64);
    assert_eq!(c1.participants.len(), TASKS);
}

pub async fn a_repeated_event_id_returns_the_original_position(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            message("e1", "c1", "a1", "agent", "one"),
            message("e2", "c1", "a1", "agent", "two"),
        ],
    )
    .await;
    let before = transcript(&store, &t, "c1").await;

    let again = append_one(&store, &t, message("e1", "c1", "a1", "agent", "one")).await;
    assert!(again.duplicate);
    assert_eq!(again.position, 1);
    assert_eq!(again.conversation_id, conversation("c1"));
    assert_eq!(
        again.effects, None,
        "a repeat changes nothing, so tells nobody"
    );

    let mixed = append(
        &store,
        &t,
        vec![
            message("e3", "c1", "a1", "agent", "three"),
            message("e2", "c1", "a1", "agent", "two"),
        ],
    )
    .await;
    assert_eq!(positions(&mixed), [3, 2]);
    assert_eq!(
        mixed.iter().map(|a| a.duplicate).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(transcript(&store, &t, "c1").await.len(), before.len() + 1);
}

pub async fn a_reused_event_id_with_a_different_body_conflicts_and_changes_nothing(
    store: Arc<dyn Store>,
) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            joined("e0", "c1", "v1", "visitor"),
            message("e1", "c1", "a1", "agent", "original"),
        ],
    )
    .await;
    let transcript_before = transcript(&store, &t, "c1").await;
    let conversation_before = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap();

    let changed_text = store
        .append_events(
            &t,
            vec![
                message("e2", "c1", "a1", "agent", "fine"),
                message("e1", "c1", "a1", "agent", "edited"),
            ],
            at(20),
        )
        .await;
    assert!(
        matches!(changed_text, Err(StoreError::EventConflict { index: 1 })),
        "{changed_text:?}"
    );
    let other_conversation = store
        .append_events(
            &t,
            vec![message("e1", "c2", "a1", "agent", "original")],
            at(20),
        )
        .await;
    assert!(
        matches!(
            other_conversation,
            Err(StoreError::EventConflict { index: 0 })
        ),
        "{other_conversation:?}"
    );

    assert_eq!(transcript(&store, &t, "c1").await, transcript_before);
    assert_eq!(
        store
            .get_conversation(&t, &conversation("c1"))
            .await
            .unwrap(),
        conversation_before,
        "no position taken, no unread counted"
    );
    assert_eq!(
        store
            .get_conversation(&t, &conversation("c2"))
            .await
            .unwrap(),
        None
    );
    let e2 = append_one(&store, &t, message("e2", "c1", "a1", "agent", "fine")).await;
    assert!(!e2.duplicate, "the rolled-back event was never stored");
}

pub async fn a_repeated_event_id_within_one_batch_is_a_duplicate_or_a_conflict(
    store: Arc<dyn Store>,
) {
    let t = tenant("acme");
    let twice = append(
        &store,
        &t,
        vec![
            message("e1", "c1", "a1", "agent", "same"),
            message("e1", "c1", "a1", "agent", "same"),
        ],
    )
    .await;
    assert_eq!(positions(&twice), [1, 1]);
    assert_eq!(
        twice.iter().map(|a| a.duplicate).collect::<Vec<_>>(),
        [false, true]
    );

    let conflicting = store
        .append_events(
            &t,
            vec![
                message("e2", "c1", "a1", "agent", "first"),
                message("e2", "c1", "a1", "agent", "second"),
            ],
            at(20),
        )
        .await;
    assert!(
        matches!(conflicting, Err(StoreError::EventConflict { index: 1 })),
        "{conflicting:?}"
    );
    assert_eq!(transcript(&store, &t, "c1").await.len(), 1);
}

pub async fn a_failing_event_rolls_back_its_whole_batch(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let batch = vec![
        message("e1", "c1", "v1", "visitor", "hello"),
        joined("e2", "c1", "a1", "agent"),
        read("e3", "c1", "stranger", 1),
    ];
    let failed = store.append_events(&t, batch, at(10)).await;
    assert_invalid(failed, 2, "reader_id");
    assert_eq!(
        store
            .get_conversation(&t, &conversation("c1"))
            .await
            .unwrap(),
        None
    );
    assert!(transcript(&store, &t, "c1").await.is_empty());
    assert_eq!(membership(&store, &t, "c1", "v1").await, None);
    let retried = append_one(&store, &t, message("e1", "c1", "v1", "visitor", "hello")).await;
    assert_eq!((retried.position, retried.duplicate), (1, false));

    // In an existing conversation: no position, no unread count survives the failure.
    append_one(&store, &t, joined("e4", "c1", "a1", "agent")).await;
    let before = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap();
    let failed = store
        .append_events(
            &t,
            vec![
                message("e5", "c1", "v1", "visitor", "more"),
                read("e6", "c1", "a1", 99),
            ],
            at(11),
        )
        .await;
    assert_invalid(failed, 1, "position");
    assert_eq!(
        store
            .get_conversation(&t, &conversation("c1"))
            .await
            .unwrap(),
        before
    );
    assert_eq!(unread_of(&store, &t, "c1", "a1").await, 0);
}

pub async fn a_thousand_event_batch_reads_back_in_pages(store: Arc<dyn Store>) {
    const PAGE: usize = 128;
    let t = tenant("acme");
    let events: Vec<NewEvent> = (1..=1000)
        .map(|i| {
            message(
                &format!("e{i}"),
                "c1",
                "a1",
                "agent",
                &format!("message {i}"),
            )
        })
        .collect();
    let appended = append(&store, &t, events.clone()).await;
    assert_eq!(positions(&appended), (1..=1000).collect::<Vec<_>>());

    let mut stored = Vec::new();
    let mut pages = 0;
    loop {
        let after = stored
            .last()
            .map_or(0, |s: &herald_engine::event::StoredEvent| s.position);
        let page = store
            .events_after(&t, &conversation("c1"), after, PAGE)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= PAGE, "at most `limit` events");
        pages += 1;
        stored.extend(page);
    }
    assert_eq!(pages, 8, "seven full pages and one of 104");
    assert_eq!(stored.len(), 1000);
    for (i, s) in stored.iter().enumerate() {
        assert_eq!(s.position, i as u64 + 1);
        assert_eq!(s.event, events[i]);
        assert_eq!(s.recorded_at, at(10));
    }
    let middle = store
        .events_after(&t, &conversation("c1"), 500, 3)
        .await
        .unwrap();
    assert_eq!(
        middle.iter().map(|s| s.position).collect::<Vec<_>>(),
        [501, 502, 503]
    );
    assert!(
        store
            .events_after(&t, &conversation("c1"), 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .events_after(&t, &conversation("c1"), 0, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn events_after_an_unknown_conversation_is_empty(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append_one(&store, &t, message("e1", "c1", "a1", "agent", "hi")).await;
    assert!(
        store
            .events_after(&t, &conversation("nope"), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .get_conversation(&t, &conversation("nope"))
            .await
            .unwrap(),
        None
    );
}

pub async fn stored_events_read_back_as_appended(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let mut exact_time = event(
        "e1",
        "c1",
        "message.created",
        json!({
            "sender": {"id": "a1", "role": "agent", "name": "Ann"},
            "text": "hello ☀",
            "attachments": [{"name": "a.pdf", "content_type": "application/pdf", "size": 12, "url": "https://x.example/a"}],
        }),
    );
    exact_time.occurred_at = time::macros::datetime!(2027-01-15 08:00:00.123_456_789 +02:00);
    let events = vec![
        exact_time,
        event(
            "e2",
            "c1",
            "notice.custom",
            json!({"actor": {"id": "b1", "role": "bot"}, "data": {"z": [1, {"y": null}], "a": "x"}}),
        ),
        event(
            "e3",
            "c1",
            "notice.push_url",
            json!({"url": "https://x.example/c1"}),
        ),
        event(
            "e4",
            "c1",
            "call.ringing",
            json!({"call_id": "k1", "caller": {"id": "a1", "role": "agent"}, "callees": ["v1", "v2"], "ring_timeout_s": 30}),
        ),
        event(
            "e5",
            "c1",
            "call.declined",
            json!({"call_id": "k1", "by": "v1"}),
        ),
        event("e6", "c1", "notice.typing_started", json!({})),
    ];
    let appended = append(&store, &t, events.clone()).await;
    let stored = store
        .events_after(&t, &conversation("c1"), 0, 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), events.len());
    for ((sent, appended), stored) in events.iter().zip(&appended).zip(&stored) {
        assert_eq!(&stored.event, sent, "stored exactly, occurred_at included");
        assert_eq!(stored.recorded_at, at(10));
        assert_eq!(
            &effects(appended).event,
            stored,
            "effects carry the stored event"
        );
        assert_eq!(appended.event_id, sent.event_id);
    }
}
