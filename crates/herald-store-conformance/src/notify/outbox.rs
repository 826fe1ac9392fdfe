//! What is queued for the engine (`outbox`), the batched read of one step (`event_inputs`) and
//! the messages a push quotes (`recent_messages`).

use herald_engine::device::DeviceChannel;
use herald_engine::notify::store::{EventInputs, MAX_TRANSCRIPT_LINES, OutboxItem};
use herald_engine::participant::Role;
use serde_json::json;

use crate::NotifyFixture;
use crate::support::{
    append, at, conversation, event, event_id, joined, left, message, participant, read, tenant,
    user,
};

use super::*;

/// The engine's queueing rule (`notify::evaluates`): everything but membership changes, in the
/// order the appends committed, whatever the conversation or tenant.
pub async fn the_outbox_queues_every_event_but_membership_changes_in_append_order(
    fx: &dyn NotifyFixture,
) {
    let (acme, beta, store, notify) = (tenant("acme"), tenant("beta"), fx.store(), fx.notify());
    assert!(outbox(&notify).await.is_empty(), "nothing appended yet");
    append(
        &store,
        &acme,
        vec![
            joined("j1", "c1", "ann", "visitor"),
            message("m1", "c1", "bob", "agent", "hi"),
        ],
    )
    .await;
    append(
        &store,
        &beta,
        vec![message("m1", "c9", "bob", "agent", "x")],
    )
    .await;
    append(
        &store,
        &acme,
        vec![
            message("m2", "c2", "bob", "agent", "elsewhere"),
            read("r1", "c1", "ann", 2),
            event("n1", "c1", "notice.typing_started", json!({})),
            left("l1", "c1", "ann"),
        ],
    )
    .await;
    // The port's own writes queue like appends: a read that moves, not a plain join.
    store
        .mark_read(
            &acme,
            &conversation("c1"),
            &user("bob"),
            4,
            event_id("r2"),
            at(11),
        )
        .await
        .expect("the read is stored");
    store
        .put_participant(
            &acme,
            &conversation("c2"),
            &participant("cy", Role::Agent),
            None,
            event_id("j2"),
            at(12),
        )
        .await
        .expect("the join is stored");
    let s = |t: &str, c: &str, p: u64| (t.to_string(), c.to_string(), p);
    assert_eq!(
        queued(&outbox(&notify).await),
        [
            s("acme", "c1", 2),
            s("beta", "c9", 1),
            s("acme", "c2", 1),
            s("acme", "c1", 3),
            s("acme", "c1", 4),
            s("acme", "c1", 6),
        ]
    );
}

pub async fn the_outbox_hands_out_the_oldest_items_up_to_the_limit_without_taking_them(
    fx: &dyn NotifyFixture,
) {
    let (t, store, notify) = (tenant("acme"), fx.store(), fx.notify());
    let messages = (1..=5)
        .map(|i| message(&format!("m{i}"), "c1", "bob", "agent", "hi"))
        .collect();
    append(&store, &t, messages).await;
    let first = notify.outbox(2).await.expect("the outbox reads");
    assert_eq!(first.iter().map(|i| i.position).collect::<Vec<_>>(), [1, 2]);
    assert!(first[0].seq < first[1].seq, "seq grows with the queue");
    // Reading takes nothing: only a commit does (see `commits`).
    assert_eq!(notify.outbox(2).await.expect("the outbox reads"), first);
    assert_eq!(outbox(&notify).await.len(), 5);
    assert!(notify.outbox(0).await.expect("reads").is_empty());
}

/// An agent forwarding the conversation to another adds them `by` themselves: the engine is to
/// tell the one added, so that join is queued in its transaction and its inputs hold their
/// context; joining on one's own is not queued.
pub async fn a_participant_added_by_someone_else_is_queued_with_their_context(
    fx: &dyn NotifyFixture,
) {
    let (t, c1, store, notify) = (tenant("acme"), conversation("c1"), fx.store(), fx.notify());
    let forwarder = user("agent-7");
    store
        .put_participant(
            &t,
            &c1,
            &participant("agent-7", Role::Agent),
            None,
            event_id("j1"),
            at(1),
        )
        .await
        .expect("joined");
    store
        .put_participant(
            &t,
            &c1,
            &participant("agent-9", Role::Agent),
            Some(&forwarder),
            event_id("j2"),
            at(2),
        )
        .await
        .expect("added");
    let items = outbox(&notify).await;
    assert_eq!(
        items.iter().map(|i| i.position).collect::<Vec<_>>(),
        [2],
        "only the join someone else made"
    );
    let inputs = notify.event_inputs(&items).await.expect("inputs read");
    assert!(
        inputs[0].contexts.contains_key(&user("agent-9")),
        "the one added may be told"
    );
    assert!(
        !inputs[0].contexts.contains_key(&forwarder),
        "not the one who added them"
    );
}

pub async fn a_batch_of_inputs_matches_the_single_reads_it_replaces(fx: &dyn NotifyFixture) {
    let (t, store, notify) = (tenant("acme"), fx.store(), fx.notify());
    device_of(fx, &t, "d1", "visitor", "chat", DeviceChannel::Apns).await;
    let mut events = vec![
        joined("j1", "c1", "visitor", "visitor"),
        joined("j2", "c1", "agent", "agent"),
    ];
    // More messages than a push may quote, so `recent` is cut to the newest ones.
    for i in 0..MAX_TRANSCRIPT_LINES + 5 {
        let text = format!("line {i}");
        events.push(message(&format!("m{i}"), "c1", "agent", "agent", &text));
    }
    events.push(read("r1", "c1", "visitor", 3));
    events.push(message("other", "c2", "agent", "agent", "elsewhere"));
    append(&store, &t, events).await;

    let items = outbox(&notify).await;
    assert!(
        items.len() > MAX_TRANSCRIPT_LINES,
        "messages and reads are queued"
    );
    let inputs = notify.event_inputs(&items).await.expect("inputs read");
    assert_eq!(inputs.len(), items.len(), "one per item, in order");
    for (item, got) in items.iter().zip(&inputs) {
        let event = store
            .events_after(&item.tenant, &item.conversation, item.position - 1, 1)
            .await
            .expect("events read")
            .pop();
        assert_eq!(got.event, event, "event at {}", item.position);
        let conv = store
            .get_conversation(&item.tenant, &item.conversation)
            .await
            .expect("conversation read");
        assert_eq!(got.conversation, conv);
        let actor = event.as_ref().and_then(|e| e.event.body.actor_id());
        let members: Vec<_> = conv
            .expect("the conversation exists")
            .participants
            .into_iter()
            .filter(|m| Some(&m.participant.user_id) != actor)
            .collect();
        assert_eq!(
            got.contexts.len(),
            members.len(),
            "a context per participant but the actor"
        );
        for m in &members {
            let single = notify
                .user_context(&t, &m.participant.user_id, Some(&item.conversation))
                .await
                .expect("context read");
            assert_eq!(got.contexts[&m.participant.user_id], single);
        }
        let recent = notify
            .recent_messages(&t, &item.conversation, item.position, MAX_TRANSCRIPT_LINES)
            .await
            .expect("recent read");
        assert_eq!(got.recent, recent);
        assert!(got.recent.len() <= MAX_TRANSCRIPT_LINES);
    }
    let visitor = &inputs[0].contexts[&user("visitor")];
    assert_eq!(
        visitor.devices.len(),
        1,
        "the visitor's device is in its context"
    );
    assert!(
        !inputs[0].contexts.contains_key(&user("agent")),
        "the sender is not told of their own message"
    );
    assert_eq!(
        inputs
            .last()
            .and_then(|i| i.conversation.as_ref())
            .map(|c| &c.id),
        Some(&conversation("c2"))
    );
}

/// The engine drops an item whose event it cannot find; the read must say so rather than fail
/// the whole batch, and answer the items it can.
pub async fn inputs_of_an_item_whose_event_is_gone_hold_only_what_was_found(
    fx: &dyn NotifyFixture,
) {
    let (t, store, notify) = (tenant("acme"), fx.store(), fx.notify());
    append(
        &store,
        &t,
        vec![
            joined("j1", "c1", "ann", "visitor"),
            message("m1", "c1", "bob", "agent", "hi"),
        ],
    )
    .await;
    let mut items = outbox(&notify).await;
    let item = |conv: &str, position| OutboxItem {
        seq: 1_000_000,
        tenant: t.clone(),
        conversation: conversation(conv),
        position,
    };
    items.insert(0, item("c1", 9));
    items.push(item("nowhere", 1));
    let inputs = notify.event_inputs(&items).await.expect("inputs read");
    assert_eq!(inputs.len(), 3);
    let c1 = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap();
    assert_eq!(
        inputs[0],
        EventInputs {
            conversation: c1,
            ..EventInputs::default()
        },
        "past the transcript: the conversation only"
    );
    assert_eq!(inputs[1].event.as_ref().map(|e| e.position), Some(2));
    assert!(inputs[1].contexts.contains_key(&user("ann")));
    assert_eq!(inputs[2], EventInputs::default(), "an unknown conversation");
    assert!(notify.event_inputs(&[]).await.expect("reads").is_empty());
}

pub async fn recent_messages_are_the_newest_messages_at_or_before_a_position_oldest_first(
    fx: &dyn NotifyFixture,
) {
    let (acme, beta, store, notify) = (tenant("acme"), tenant("beta"), fx.store(), fx.notify());
    append(
        &store,
        &acme,
        vec![
            message("m1", "c1", "bob", "agent", "one"),
            event("n1", "c1", "notice.typing_started", json!({})),
            message("m2", "c1", "ann", "visitor", "two"),
            read("r1", "c1", "bob", 3),
            message("m3", "c1", "bob", "agent", "three"),
            message("m4", "c1", "bob", "agent", "four"),
            message("x1", "c2", "bob", "agent", "elsewhere"),
        ],
    )
    .await;
    append(
        &store,
        &beta,
        vec![message("m9", "c1", "bob", "agent", "beta")],
    )
    .await;
    let recent = |position, n| {
        let notify = notify.clone();
        let acme = acme.clone();
        async move {
            notify
                .recent_messages(&acme, &conversation("c1"), position, n)
                .await
                .expect("recent read")
                .into_iter()
                .map(|e| (e.position, e.event.event_id.as_str().to_string()))
                .collect::<Vec<_>>()
        }
    };
    let p = |position: u64, id: &str| (position, id.to_string());
    // Notices and reads are not messages; the transcript after `position` is not yet read.
    assert_eq!(recent(5, 10).await, [p(1, "m1"), p(3, "m2"), p(5, "m3")]);
    assert_eq!(recent(6, 2).await, [p(5, "m3"), p(6, "m4")], "the newest n");
    assert_eq!(recent(4, 10).await, [p(1, "m1"), p(3, "m2")]);
    assert!(recent(6, 0).await.is_empty());
    assert!(
        notify
            .recent_messages(&acme, &conversation("c9"), 5, 10)
            .await
            .expect("recent read")
            .is_empty(),
        "an unknown conversation"
    );
}
