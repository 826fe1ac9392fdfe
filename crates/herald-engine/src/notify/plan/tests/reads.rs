//! Reads: what a read cancels and clears.

use crate::event::{EventBody, MessageRead};
use crate::notify::record::Status;
use crate::notify::timing::{Digest, Pending, Thread, Wait};
use crate::push::PushKind;

use super::*;

fn read(position: u64, by: &str) -> StoredEvent {
    let read = MessageRead {
        reader_id: user(by),
        position,
    };
    stored(position, EventBody::MessageRead(read))
}

fn shown(notification: &str) -> Thread {
    Thread {
        last_push_at: Some(T0),
        shown_position: Some(1),
        shown_notification: Some(notification.into()),
        ..Thread::default()
    }
}

fn waiting(notification: &str) -> Pending {
    Pending {
        notification_id: notification.into(),
        due_at: at(3_000),
        wait: Wait::CoalesceWindow,
        first_position: 2,
        latest_position: 2,
        count: 1,
        expires_at: at(3_600_000),
    }
}

#[test]
fn read_that_empties_the_conversation_sends_a_silent_read_push() {
    let mut world = World::new().visitor("v1", away(), 0);
    world
        .ctx("v1")
        .threads
        .insert((app(), conversation()), shown("n0"));
    let planned = world.evaluate(vec![read(1, "v1")], at(1_000));
    let r = planned.record("v1", PushKind::Read);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(
        r.reason,
        "the conversation was read: clearing what notification n0 showed; handed to the delivery core for 1 target(s)"
    );
    let push = r.push.as_ref().unwrap();
    assert!(!push.high_priority, "silent");
    assert_eq!(push.collapse_key, "conv:c1", "replaces what was shown");
    let (_, thread) = &planned.commit.threads[0];
    assert_eq!(thread.shown_notification, None, "cleared once");
}

#[test]
fn a_read_that_leaves_messages_unread_clears_nothing() {
    let mut world = World::new().visitor("v1", away(), 2);
    world
        .ctx("v1")
        .threads
        .insert((app(), conversation()), shown("n0"));
    let planned = world.evaluate(vec![read(1, "v1")], at(1_000));
    assert!(planned.commit.records.is_empty());
    assert!(planned.commit.deliveries.is_empty());
}

#[test]
fn a_read_cancels_the_waiting_push_and_email_digest() {
    let mut world = World::new().visitor("v1", away(), 0);
    let thread = Thread {
        pending: Some(waiting("n7")),
        digest: Some(Digest {
            notification_id: "n8".into(),
            due_at: at(600_000),
            first_position: 2,
        }),
        ..shown("n0")
    };
    world
        .ctx("v1")
        .threads
        .insert((app(), conversation()), thread);
    world.store(pending_record("n7", "v1", PushKind::NewMessage));
    world.store(pending_record("n8", "v1", PushKind::Digest));
    let planned = world.evaluate(vec![read(2, "v1")], at(1_000));
    let push = planned.record("v1", PushKind::NewMessage);
    assert_eq!((push.id.as_str(), push.status), ("n7", Status::Cancelled));
    assert_eq!(
        push.reason,
        "the user read the conversation before it was due"
    );
    let digest = planned.record("v1", PushKind::Digest);
    assert_eq!(digest.status, Status::Cancelled);
    assert_eq!(
        digest.reason,
        "the conversation was read before the email digest was due"
    );
    let (_, thread) = &planned.commit.threads[0];
    assert_eq!((&thread.pending, &thread.digest), (&None, &None));
}

#[test]
fn a_read_of_a_push_waiting_from_earlier_in_the_batch_cancels_it() {
    let world = World::new().visitor("v1", away(), 0);
    let batch = vec![
        message(1, "agent", crate::participant::Role::Agent, "hello"),
        read(1, "v1"),
    ];
    let planned = world.evaluate(batch, at(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Cancelled);
    let steps: Vec<Status> = r.log.iter().map(|e| e.status).collect();
    assert_eq!(steps, [Status::Pending, Status::Cancelled]);
    assert_eq!(planned.decisions.len(), 2, "two decisions on one record");
}
