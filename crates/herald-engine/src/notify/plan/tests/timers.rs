//! Timers: pushes that waited, email digests, users coming back, proactive notifications.

use std::collections::BTreeMap;

use crate::app::AppConfig;
use crate::notify::quiet::{Preferences, QuietHours};
use crate::notify::record::{Proactive, Status};
use crate::notify::timing::Digest;
use crate::participant::Role;
use crate::push::PushKind;

use super::*;

/// v1 has a push for messages 1 and 2 due at 5 s (the grace delay).
fn waiting_push() -> World {
    let mut world = World::new().visitor("v1", away(), 2);
    world.waiting_for_grace(
        pending_record("n1", "v1", PushKind::NewMessage),
        (1, 2, 2),
        2,
    );
    world.transcript(vec![
        message(1, "agent", Role::Agent, "hello"),
        message(2, "agent", Role::Agent, "still there?"),
    ]);
    world
}

fn fire(world: &World, now: OffsetDateTime) -> Planned {
    let threads = [thread_key("v1")];
    super::super::timers(
        world.inputs.clone(),
        &threads,
        &[],
        now,
        &mut Counting::default(),
    )
}

#[test]
fn a_due_push_carries_the_latest_message_and_how_many_it_stands_for() {
    let planned = fire(&waiting_push(), at(5_000));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!((r.id.as_str(), r.status), ("n1", Status::Sent));
    let push = r.push.as_ref().unwrap();
    assert_eq!(
        push.title.as_deref(),
        Some("2 new messages from agent name")
    );
    assert_eq!(push.body.as_deref(), Some("still there?"));
    assert_eq!(planned.fired, vec![("push", at(5_000))]);
    assert_eq!(
        planned.commit.user_states[0].3.last_push_at,
        Some(at(5_000))
    );
}

#[test]
fn a_push_due_inside_quiet_hours_is_deferred_to_their_end() {
    let mut world = waiting_push();
    world.ctx("v1").preferences = Preferences {
        quiet_hours: Some(QuietHours {
            start: "09:00".into(),
            end: "12:00".into(),
            time_zone: "UTC".into(),
        }),
        ..Preferences::default()
    };
    let planned = fire(&world, at(5_000));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Pending);
    assert_eq!(
        r.reason,
        "deferred to 2026-11-23T12:00:00Z: the user is inside their quiet hours"
    );
    assert!(planned.commit.deliveries.is_empty());
}

#[test]
fn a_push_whose_conversation_was_read_meanwhile_is_cancelled() {
    let mut world = waiting_push();
    let membership = (tenant(), conversation(), user("v1"));
    let read = Membership {
        read_position: 2,
        ..member("v1", Role::Visitor, 0)
    };
    world.inputs.memberships.insert(membership, read);
    let r = fire(&world, at(5_000))
        .record("v1", PushKind::NewMessage)
        .clone();
    assert_eq!(r.status, Status::Cancelled);
    assert_eq!(r.reason, "the user read the conversation before it was due");
}

#[test]
fn a_push_past_its_ttl_expires() {
    let r = fire(&waiting_push(), at(3_600_000))
        .record("v1", PushKind::NewMessage)
        .clone();
    assert_eq!(r.status, Status::Expired);
    assert_eq!(r.reason, "its TTL ran out before it could be sent");
}

#[test]
fn deleted_app_cancels_waiting_push() {
    let mut world = waiting_push();
    world
        .ctx("v1")
        .threads
        .get_mut(&(app(), conversation()))
        .unwrap()
        .digest = Some(Digest {
        notification_id: "n2".into(),
        due_at: at(600_000),
        first_position: 1,
    });
    world.store(pending_record("n2", "v1", PushKind::Digest));
    world.inputs.apps.clear();
    let planned = fire(&world, at(5_000));
    for kind in [PushKind::NewMessage, PushKind::Digest] {
        let r = planned.record("v1", kind);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (Status::Cancelled, "the app was deleted")
        );
    }
    let (_, thread) = &planned.commit.threads[0];
    assert_eq!(thread.due_at(), None, "never due again");
}

#[test]
fn a_due_digest_emails_what_is_still_unread() {
    let config = AppConfig {
        smtp: Some(smtp()),
        ..AppConfig::default()
    };
    let mut world = waiting_push();
    world
        .inputs
        .apps
        .insert(tenant(), vec![(app(), std::sync::Arc::new(config))]);
    world.ctx("v1").email = Some("v1@example".into());
    let thread = world
        .ctx("v1")
        .threads
        .get_mut(&(app(), conversation()))
        .unwrap();
    thread.pending = None;
    thread.digest = Some(Digest {
        notification_id: "n2".into(),
        due_at: at(600_000),
        first_position: 1,
    });
    world.store(pending_record("n2", "v1", PushKind::Digest));
    world
        .inputs
        .last_positions
        .insert((tenant(), conversation()), 2);
    let planned = fire(&world, at(600_000));
    let r = planned.record("v1", PushKind::Digest);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(
        r.reason,
        "2 message(s) still unread after the email delay; handed to the delivery core for 1 target(s)"
    );
    assert_eq!(r.push.as_ref().unwrap().lines.len(), 2);
    assert_eq!(planned.commit.deliveries[0].channel, "email");
}

#[test]
fn a_due_digest_of_a_conversation_read_meanwhile_is_cancelled() {
    let mut world = waiting_push();
    let thread = world
        .ctx("v1")
        .threads
        .get_mut(&(app(), conversation()))
        .unwrap();
    thread.pending = None;
    thread.digest = Some(Digest {
        notification_id: "n2".into(),
        due_at: at(600_000),
        first_position: 1,
    });
    world.store(pending_record("n2", "v1", PushKind::Digest));
    let membership = (tenant(), conversation(), user("v1"));
    world
        .inputs
        .memberships
        .insert(membership, member("v1", Role::Visitor, 0));
    let planned = fire(&world, at(600_000));
    let r = planned.record("v1", PushKind::Digest);
    assert_eq!(r.status, Status::Cancelled);
    assert_eq!(
        r.reason,
        "everything was read before the email digest was due"
    );
    assert!(planned.commit.deliveries.is_empty());
    assert_eq!(planned.fired, vec![("digest", at(600_000))]);
}

#[test]
fn a_user_who_comes_back_cancels_what_waits() {
    let mut world = waiting_push();
    let ctx = world.ctx("v1").clone();
    world
        .inputs
        .contexts
        .insert((tenant(), user("v1"), None), ctx);
    let planned = super::super::foreground(
        world.inputs.clone(),
        &tenant(),
        &user("v1"),
        at(1_000),
        &mut Counting::default(),
    );
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Cancelled);
    assert_eq!(r.reason, "the user came back before it was due");
    assert_eq!(planned.commit.threads[0].1.pending, None);
}

fn scheduled(world: &mut World, ttl_s: u64) {
    let mut r = pending_record("p1", "v1", PushKind::Proactive);
    r.conversation_id = None;
    r.status = Status::Scheduled;
    r.due_at = Some(at(10_000));
    r.proactive = Some(Proactive {
        title: "Sale".into(),
        body: "Everything must go".into(),
        data: BTreeMap::new(),
        channels: vec![],
        ttl_s,
    });
    world.store(r);
    let ctx = world.ctx("v1").clone();
    world
        .inputs
        .contexts
        .insert((tenant(), user("v1"), None), ctx);
}

fn fire_scheduled(world: &World, now: OffsetDateTime) -> Planned {
    let due = [(tenant(), "p1".to_string())];
    super::super::timers(
        world.inputs.clone(),
        &[],
        &due,
        now,
        &mut Counting::default(),
    )
}

#[test]
fn a_due_proactive_notification_is_sent_as_asked() {
    let mut world = World::new().visitor("v1", away(), 0);
    scheduled(&mut world, 60);
    let planned = fire_scheduled(&world, at(10_000));
    let r = planned.record("v1", PushKind::Proactive);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(r.push.as_ref().unwrap().title.as_deref(), Some("Sale"));
    assert_eq!(planned.fired, vec![("scheduled", at(10_000))]);
}

#[test]
fn a_proactive_notification_past_its_ttl_or_whose_app_is_gone_is_not_sent() {
    let mut world = World::new().visitor("v1", away(), 0);
    scheduled(&mut world, 60);
    let late = fire_scheduled(&world, at(70_000));
    assert_eq!(
        late.record("v1", PushKind::Proactive).status,
        Status::Expired
    );
    world.inputs.apps.clear();
    let gone = fire_scheduled(&world, at(10_000));
    let r = gone.record("v1", PushKind::Proactive);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (Status::Failed, "the app was deleted")
    );
}

#[test]
fn a_proactive_notification_waits_out_a_pause() {
    let mut world = World::new().visitor("v1", away(), 0);
    world.ctx("v1").preferences.pause_until = Some(at(20_000));
    scheduled(&mut world, 60);
    let r = fire_scheduled(&world, at(10_000))
        .record("v1", PushKind::Proactive)
        .clone();
    assert_eq!(r.status, Status::Scheduled);
    assert_eq!(r.due_at, Some(at(20_000)));
    assert_eq!(
        r.reason,
        "deferred to 2026-11-23T10:00:20Z: the user paused notifications"
    );
}
