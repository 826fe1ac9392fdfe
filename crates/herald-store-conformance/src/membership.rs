//! The membership projection: who is a participant, and what each event tells whom.

use std::sync::Arc;

use herald_engine::event::EventBody;
use herald_engine::participant::{Membership, Participant, Role};
use herald_engine::store::Store;
use serde_json::json;

use crate::support::{
    append, append_one, at, change, conversation, effects, event, event_id, joined, left,
    membership, message, participant, tenant, transcript, unread_of, user, users,
};

pub async fn a_message_sender_joins_the_conversation(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let first = event(
        "e1",
        "c1",
        "message.created",
        json!({"sender": {"id": "a1", "role": "agent", "name": "Ann"}, "text": "hi"}),
    );
    let appended = append_one(&store, &t, first).await;
    assert_eq!(effects(&appended).recipients, users(&["a1"]));
    assert_eq!(
        membership(&store, &t, "c1", "a1").await,
        Some(Membership {
            participant: Participant {
                user_id: user("a1"),
                role: Role::Agent,
                secondary: false,
                name: Some("Ann".into()),
                email: None,
            },
            read_position: 1,
            unread: 0,
        }),
        "joined as the sender says, having read their own message"
    );
}

pub async fn a_notice_actor_does_not_join(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let typing = event(
        "e1",
        "c1",
        "notice.typing_started",
        json!({"actor": {"id": "a1", "role": "agent"}}),
    );
    let appended = append_one(&store, &t, typing).await;
    assert!(effects(&appended).recipients.is_empty());
    assert_eq!(membership(&store, &t, "c1", "a1").await, None);
    let c1 = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap()
        .unwrap();
    assert!(c1.participants.is_empty());
    assert_eq!(c1.last_position, 1);
}

pub async fn a_caller_joins_the_conversation(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let ringing = event(
        "e1",
        "c1",
        "call.ringing",
        json!({"call_id": "k1", "caller": {"id": "a1", "role": "agent", "name": "Ann"}, "callees": ["v1"]}),
    );
    let appended = append_one(&store, &t, ringing).await;
    assert_eq!(effects(&appended).recipients, users(&["a1"]));
    let caller = membership(&store, &t, "c1", "a1")
        .await
        .expect("the caller joined");
    assert_eq!(caller.participant.role, Role::Agent);
    assert_eq!(caller.participant.name.as_deref(), Some("Ann"));
    assert_eq!(
        membership(&store, &t, "c1", "v1").await,
        None,
        "callees do not join"
    );
}

pub async fn participant_joined_updates_a_member_and_keeps_their_read_state(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "v1", "visitor"),
            message("e2", "c1", "a1", "agent", "hello"),
        ],
    )
    .await;
    let again = event(
        "e3",
        "c1",
        "participant.joined",
        json!({"participant": {"user_id": "v1", "role": "visitor", "secondary": true, "name": "Vi"}}),
    );
    append_one(&store, &t, again).await;
    assert_eq!(
        membership(&store, &t, "c1", "v1").await,
        Some(Membership {
            participant: Participant {
                user_id: user("v1"),
                role: Role::Visitor,
                secondary: true,
                name: Some("Vi".into()),
                email: None,
            },
            read_position: 1,
            unread: 1,
        })
    );
}

pub async fn new_members_do_not_count_earlier_messages_as_unread(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            message("e1", "c1", "a1", "agent", "one"),
            message("e2", "c1", "a1", "agent", "two"),
            message("e3", "c1", "a1", "agent", "three"),
            joined("e4", "c1", "v1", "visitor"),
        ],
    )
    .await;
    let v1 = membership(&store, &t, "c1", "v1").await.unwrap();
    assert_eq!((v1.read_position, v1.unread), (4, 0));
    append_one(&store, &t, message("e5", "c1", "a1", "agent", "four")).await;
    assert_eq!(unread_of(&store, &t, "c1", "v1").await, 1);
}

pub async fn participant_left_removes_the_member_and_still_tells_them(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "v1", "visitor"),
            message("e2", "c1", "a1", "agent", "hello"),
            message("e3", "c2", "a1", "agent", "elsewhere"),
            joined("e4", "c2", "v1", "visitor"),
            message("e5", "c2", "a1", "agent", "again"),
        ],
    )
    .await;
    let gone = append_one(&store, &t, left("e6", "c1", "v1")).await;
    let told = effects(&gone);
    assert_eq!(
        told.recipients,
        users(&["a1", "v1"]),
        "the removed user hears it too"
    );
    assert_eq!(
        told.unread,
        [change("v1", "c1", 0, 1)],
        "their unread messages there no longer count"
    );
    assert_eq!(membership(&store, &t, "c1", "v1").await, None);
    let c1 = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c1.participants
            .iter()
            .map(|m| m.participant.user_id.clone())
            .collect::<Vec<_>>(),
        users(&["a1"])
    );
    let unread = store.unread(&t, &user("v1")).await.unwrap();
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0].conversation_id, conversation("c2"));

    // Leaving twice is stored but removes nobody.
    let again = append_one(&store, &t, left("e7", "c1", "v1")).await;
    assert_eq!(effects(&again).unread, []);
    assert_eq!(effects(&again).recipients, users(&["a1", "v1"]));
}

pub async fn effects_name_every_participant_and_each_changed_count(store: Arc<dyn Store>) {
    let t = tenant("acme");
    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "zed", "visitor"),
            joined("e2", "c1", "bob", "agent"),
            joined("e3", "c2", "zed", "visitor"),
            message("e4", "c2", "amy", "agent", "earlier"),
            message("e5", "c2", "amy", "agent", "earlier"),
        ],
    )
    .await;
    let appended = append_one(&store, &t, message("e6", "c1", "amy", "agent", "hi all")).await;
    let told = effects(&appended);
    assert_eq!(
        told.recipients,
        users(&["amy", "bob", "zed"]),
        "sorted by user id"
    );
    assert_eq!(
        told.unread,
        [change("bob", "c1", 1, 1), change("zed", "c1", 1, 3)],
        "the sender's count did not change; totals span the user's conversations"
    );
    assert_eq!(told.event.position, 3);
    assert_eq!(told.event.recorded_at, at(10));

    let c1 = store
        .get_conversation(&t, &conversation("c1"))
        .await
        .unwrap()
        .unwrap();
    let listed: Vec<_> = c1
        .participants
        .iter()
        .map(|m| (m.participant.user_id.clone(), m.unread))
        .collect();
    assert_eq!(
        listed,
        [(user("amy"), 0), (user("bob"), 1), (user("zed"), 1)]
    );

    let typing = append_one(
        &store,
        &t,
        event("e7", "c1", "notice.typing_started", json!({})),
    )
    .await;
    assert_eq!(effects(&typing).recipients, users(&["amy", "bob", "zed"]));
    assert_eq!(effects(&typing).unread, [], "no count changed");
}

pub async fn put_participant_appends_only_when_membership_changes(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let c1 = conversation("c1");
    let v1 = participant("v1", Role::Visitor);
    let added = store
        .put_participant(&t, &c1, &v1, None, event_id("p1"), at(30))
        .await
        .unwrap()
        .expect("a new participant is announced");
    assert_eq!((added.position, added.duplicate), (1, false));
    let stored = &effects(&added).event;
    assert_eq!(stored.event.occurred_at, at(30));
    assert_eq!(stored.event.event_id, event_id("p1"));
    match &stored.event.body {
        EventBody::ParticipantJoined(j) => assert_eq!(j.participant, v1),
        other => panic!("expected participant.joined, got {other:?}"),
    }
    assert_eq!(effects(&added).recipients, users(&["v1"]));

    let unchanged = store
        .put_participant(&t, &c1, &v1, None, event_id("p2"), at(31))
        .await
        .unwrap();
    assert_eq!(unchanged, None);
    assert_eq!(
        transcript(&store, &t, "c1").await.len(),
        1,
        "nothing appended"
    );

    let renamed = Participant {
        name: Some("Vi".into()),
        email: None,
        ..v1
    };
    let changed = store
        .put_participant(&t, &c1, &renamed, None, event_id("p3"), at(32))
        .await
        .unwrap()
        .expect("a change is announced");
    assert_eq!(changed.position, 2);
    assert_eq!(
        membership(&store, &t, "c1", "v1")
            .await
            .unwrap()
            .participant,
        renamed
    );
    let secondary = Participant {
        secondary: true,
        ..renamed
    };
    assert!(
        store
            .put_participant(&t, &c1, &secondary, None, event_id("p4"), at(33))
            .await
            .unwrap()
            .is_some()
    );
}

/// An agent forwarding a conversation to another (or inviting them) adds them `by` themselves:
/// the transcript keeps who added them, since the engine may tell the new participant, and
/// reading it back must say the same.
pub async fn put_participant_keeps_who_added_them(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let c1 = conversation("c1");
    let forwarder = user("a1");
    let a2 = participant("a2", Role::Agent);
    let added = store
        .put_participant(&t, &c1, &a2, Some(&forwarder), event_id("f1"), at(30))
        .await
        .unwrap()
        .expect("a new participant is announced");
    let joined = |body: &EventBody| match body {
        EventBody::ParticipantJoined(j) => (j.participant.clone(), j.by.clone()),
        other => panic!("expected participant.joined, got {other:?}"),
    };
    let expected = (a2.clone(), Some(forwarder.clone()));
    assert_eq!(joined(&effects(&added).event.event.body), expected);
    let read_back = transcript(&store, &t, "c1").await;
    assert_eq!(joined(&read_back[0].body), expected, "as stored");
    assert_eq!(
        read_back[0].body.actor_id(),
        Some(&forwarder),
        "the one who added them caused it"
    );
    assert!(
        membership(&store, &t, "c1", "a2").await.is_some(),
        "and they are a participant"
    );

    let again = store
        .put_participant(&t, &c1, &a2, Some(&user("a3")), event_id("f2"), at(31))
        .await
        .unwrap();
    assert_eq!(again, None, "adding a participant again changes nothing");
}

pub async fn remove_participant_appends_only_for_members(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let c1 = conversation("c1");
    let none = store
        .remove_participant(&t, &c1, &user("v1"), event_id("r1"), at(30))
        .await
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(
        store.get_conversation(&t, &c1).await.unwrap(),
        None,
        "nothing created"
    );

    append(
        &store,
        &t,
        vec![
            joined("e1", "c1", "v1", "visitor"),
            joined("e2", "c1", "a1", "agent"),
        ],
    )
    .await;
    let removed = store
        .remove_participant(&t, &c1, &user("v1"), event_id("r2"), at(31))
        .await
        .unwrap()
        .expect("a member's removal is announced");
    assert_eq!(removed.position, 3);
    assert_eq!(effects(&removed).recipients, users(&["a1", "v1"]));
    assert!(matches!(
        &effects(&removed).event.event.body,
        EventBody::ParticipantLeft(l) if l.user_id == user("v1")
    ));
    assert_eq!(membership(&store, &t, "c1", "v1").await, None);
    assert_eq!(
        store
            .remove_participant(&t, &c1, &user("v1"), event_id("r3"), at(32))
            .await
            .unwrap(),
        None
    );
}
