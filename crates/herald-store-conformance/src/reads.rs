//! Read positions and unread counts.

use std::sync::Arc;

use herald_engine::event::{EventBody, MessageRead};
use herald_engine::store::{Store, UnreadCount};

use crate::support::{
    append, append_one, assert_invalid, at, change, conversation, effects, event_id, joined, left,
    message, read, read_position_of, tenant, transcript, unread_of, user, users,
};

pub async fn unread_counts_follow_messages_and_reads(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let c1 = conversation("c1");
    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "v1", "visitor"),
            message("e2", "c1", "a1", "agent", "one"),
            message("e3", "c1", "a1", "agent", "two"),
            message("e4", "c1", "a1", "agent", "three"),
        ],
    )
    .await;
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 3);
    assert_eq!(
        unread_of(&store, &t, "c1", "a1").await,
        0,
        "own messages do not count"
    );

    append_one(&store, &t, message("e5", "c1", "sys", "system", "closed")).await;
    assert_eq!(
        unread_of(&store, &t, "c1", "v1").await,
        3,
        "system lines do not count"
    );
    let reply = append_one(&store, &t, message("e6", "c1", "v1", "visitor", "thanks")).await;
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 3);
    assert_eq!(unread_of(&store, &t, "c1", "a1").await, 1);
    assert!(
        effects(&reply).unread.contains(&change("a1", "c1", 1, 1)),
        "{:?}",
        effects(&reply).unread
    );

    // Read up to "two": "three" is still unread; the system line and v1's own reply never were.
    let marked = store
        .mark_read(&t, &c1, &user("v1"), 3, event_id("m1"), at(20))
        .await
        .unwrap()
        .expect("the position moved");
    assert_eq!(effects(&marked).unread, [change("v1", "c1", 1, 1)]);
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 1);

    let read_all = append_one(&store, &t, read("e8", "c1", "v1", 6)).await;
    assert_eq!(effects(&read_all).unread, [change("v1", "c1", 0, 0)]);
    let v1 = store
        .membership(&t, &c1, &user("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v1.read_position, v1.unread), (6, 0));

    let last = store
        .get_conversation(&t, &c1)
        .await
        .unwrap()
        .unwrap()
        .last_position;
    store
        .mark_read(&t, &c1, &user("a1"), last, event_id("m2"), at(21))
        .await
        .unwrap()
        .expect("the position moved");
    assert_eq!(unread_of(&store, &t, "c1", "a1").await, 0);
}

pub async fn reads_never_move_backwards(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let c1 = conversation("c1");
    let mut batch = vec![joined("e1", "c1", "v1", "visitor")];
    batch.extend((2..=6).map(|i| message(&format!("e{i}"), "c1", "a1", "agent", "hi")));
    append(&store, &t, batch).await;
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 5);

    let v1 = user("v1");
    assert!(
        store
            .mark_read(&t, &c1, &v1, 4, event_id("m1"), at(20))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(read_position_of(&store, &t, "c1", "v1").await, 4);
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 2);
    let length = transcript(&store, &t, "c1").await.len();

    for back in [2, 4] {
        let none = store
            .mark_read(
                &t,
                &c1,
                &v1,
                back,
                event_id(&format!("m-back-{back}")),
                at(21),
            )
            .await
            .unwrap();
        assert_eq!(none, None, "reading {back} again appends nothing");
    }
    assert_eq!(transcript(&store, &t, "c1").await.len(), length);

    let stale = append_one(&store, &t, read("e-stale", "c1", "v1", 1)).await;
    assert!(!stale.duplicate, "a stale read event is still stored");
    assert_eq!(effects(&stale).unread, [], "and changes no count");
    assert_eq!(read_position_of(&store, &t, "c1", "v1").await, 4);
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 2);

    assert!(
        store
            .mark_read(&t, &c1, &v1, 6, event_id("m2"), at(22))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 0);
}

pub async fn a_read_by_a_non_participant_is_invalid(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            message("e1", "c1", "a1", "agent", "hi"),
            joined("e2", "c1", "v1", "visitor"),
            left("e3", "c1", "v1"),
        ],
    )
    .await;
    let before = transcript(&store, &t, "c1").await;
    for reader in ["stranger", "v1"] {
        let result = store
            .append_events(&t, vec![read("e-r", "c1", reader, 1)], at(20))
            .await;
        assert_invalid(result, 0, "reader_id");
        let result = store
            .mark_read(
                &t,
                &conversation("c1"),
                &user(reader),
                1,
                event_id("m1"),
                at(20),
            )
            .await;
        assert_invalid(result, 0, "reader_id");
    }
    let unknown = store
        .mark_read(
            &t,
            &conversation("nope"),
            &user("a1"),
            0,
            event_id("m2"),
            at(20),
        )
        .await;
    assert_invalid(unknown, 0, "reader_id");
    assert_eq!(transcript(&store, &t, "c1").await, before);
}

pub async fn a_read_beyond_the_transcript_is_invalid(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let c1 = conversation("c1");
    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "v1", "visitor"),
            message("e2", "c1", "a1", "agent", "hi"),
        ],
    )
    .await;
    // Position 3 would be the read event itself.
    let own = store
        .append_events(&t, vec![read("e3", "c1", "v1", 3)], at(20))
        .await;
    assert_invalid(own, 0, "position");
    let beyond = store
        .mark_read(&t, &c1, &user("v1"), 3, event_id("m1"), at(20))
        .await;
    assert_invalid(beyond, 0, "position");
    assert_eq!(transcript(&store, &t, "c1").await.len(), 2);

    // Within a batch, "the end" is where the batch has got to.
    append(
        &store,
        &t,
        vec![
            message("e4", "c1", "a1", "agent", "more"),
            read("e5", "c1", "v1", 3),
        ],
    )
    .await;
    assert_eq!(read_position_of(&store, &t, "c1", "v1").await, 3);
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 0);
}

pub async fn mark_read_appends_only_when_the_position_moves(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let c1 = conversation("c1");
    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "v1", "visitor"),
            message("e2", "c1", "a1", "agent", "one"),
            message("e3", "c1", "a1", "agent", "two"),
        ],
    )
    .await;
    let unmoved = store
        .mark_read(&t, &c1, &user("v1"), 1, event_id("m0"), at(39))
        .await
        .unwrap();
    assert_eq!(unmoved, None, "v1 joined at 1, so has read it");
    assert_eq!(transcript(&store, &t, "c1").await.len(), 3);

    let marked = store
        .mark_read(&t, &c1, &user("v1"), 2, event_id("m1"), at(40))
        .await
        .unwrap()
        .expect("the position moved");
    assert_eq!((marked.position, marked.duplicate), (4, false));
    let told = effects(&marked);
    assert_eq!(
        told.event.event.body,
        EventBody::MessageRead(MessageRead {
            reader_id: user("v1"),
            position: 2
        })
    );
    assert_eq!(told.event.event.event_id, event_id("m1"));
    assert_eq!(told.event.event.occurred_at, at(40));
    assert_eq!(told.recipients, users(&["a1", "v1"]));
    assert_eq!(told.unread, [change("v1", "c1", 1, 1)]);
    let v1 = store
        .membership(&t, &c1, &user("v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((v1.read_position, v1.unread), (2, 1));
}

pub async fn unread_lists_every_membership_sorted_by_conversation(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            joined("e1", "c3", "v1", "visitor"),
            joined("e2", "c1", "v1", "visitor"),
            joined("e3", "c2", "v1", "visitor"),
            message("e4", "c2", "a1", "agent", "one"),
            message("e5", "c2", "a1", "agent", "two"),
            message("e6", "c3", "a1", "agent", "one"),
            message("e7", "c4", "a1", "agent", "not v1's"),
        ],
    )
    .await;
    let counts = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .map(|(c, count)| UnreadCount {
                conversation_id: conversation(c),
                count: *count,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        store.unread(&t, &user("v1")).await.unwrap(),
        counts(&[("c1", 0), ("c2", 2), ("c3", 1)])
    );
    assert_eq!(
        store.unread(&t, &user("a1")).await.unwrap(),
        counts(&[("c2", 0), ("c3", 0), ("c4", 0)])
    );
    assert!(store.unread(&t, &user("nobody")).await.unwrap().is_empty());
}
