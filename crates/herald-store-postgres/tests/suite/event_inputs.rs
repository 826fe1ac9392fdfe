//! The engine's batched read: `event_inputs` answers, for each outbox item, what the single
//! reads it replaces answer.

use std::sync::Arc;

use crate::fixture::fresh;
use herald_engine::device::DeviceChannel;
use herald_engine::notify::store::{MAX_TRANSCRIPT_LINES, NotifyStore};
use herald_engine::participant::Role;
use herald_engine::store::Store;
use herald_store_conformance::support::{
    append, at, conversation, device_id, event_id, joined, message, participant, read,
    registration, tenant, user,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_inputs_matches_the_single_reads_it_replaces() {
    let (pg, _schema) = fresh().await;
    let store: Arc<dyn Store> = pg.clone();
    let t = tenant("acme");
    store
        .register_device(
            &t,
            &registration("chat", "visitor", DeviceChannel::Apns, "tok-1"),
            device_id("d1"),
            at(1),
        )
        .await
        .expect("device registered");
    let mut events = vec![
        joined("j1", "c1", "visitor", "visitor"),
        joined("j2", "c1", "agent", "agent"),
    ];
    // More messages than a push may quote, so `recent` is cut to the newest ones.
    for i in 0..MAX_TRANSCRIPT_LINES + 5 {
        events.push(message(
            &format!("m{i}"),
            "c1",
            "agent",
            "agent",
            &format!("line {i}"),
        ));
    }
    events.push(read("r1", "c1", "visitor", 3));
    events.push(message("other", "c2", "agent", "agent", "elsewhere"));
    append(&store, &t, events).await;

    let items = pg.outbox(100).await.expect("the outbox reads");
    assert!(
        items.len() > MAX_TRANSCRIPT_LINES,
        "messages and reads are queued"
    );
    let inputs = pg.event_inputs(&items).await.expect("inputs read");
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
            let single = pg
                .user_context(&t, &m.participant.user_id, Some(&item.conversation))
                .await
                .expect("context read");
            assert_eq!(got.contexts[&m.participant.user_id], single);
        }
        let recent = pg
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

/// An agent forwarding the conversation to another adds them `by` themselves: the engine is to
/// tell the one added, so that join is queued in its transaction and its inputs hold their
/// context; joining on one's own is not queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_added_by_someone_else_is_queued_with_their_context() {
    let (store, _schema) = fresh().await;
    let (t, c1) = (tenant("acme"), conversation("c1"));
    let agent_7 = participant("agent-7", Role::Agent);
    let agent_9 = participant("agent-9", Role::Agent);
    let forwarder = user("agent-7");
    store
        .put_participant(&t, &c1, &agent_7, None, event_id("j1"), at(1))
        .await
        .expect("joined");
    store
        .put_participant(&t, &c1, &agent_9, Some(&forwarder), event_id("j2"), at(2))
        .await
        .expect("added");
    let items = store.outbox(10).await.expect("the outbox reads");
    let positions: Vec<u64> = items.iter().map(|i| i.position).collect();
    assert_eq!(positions, [2], "only the join someone else made");
    let inputs = store.event_inputs(&items).await.expect("inputs read");
    assert!(
        inputs[0].contexts.contains_key(&user("agent-9")),
        "the one added may be told"
    );
    assert!(
        !inputs[0].contexts.contains_key(&forwarder),
        "not the one who added them"
    );
}
