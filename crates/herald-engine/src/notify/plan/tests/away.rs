//! Failing open (SPEC §5.1): messages suppressed while a session only seemed to be looking are
//! decided again once the user turns out to have been away since it went.

use crate::notify::Looking;
use crate::notify::record::Status;
use crate::notify::timing::{LOOKED_CAP, Thread, Wait};
use crate::participant::Role;
use crate::push::PushKind;

use super::*;

/// v1 looked at a live session while the agent wrote a message at each (position, ms): the
/// world the next step reads, with the thread as those steps left it and their records.
fn suppressed(messages: &[(u64, i64)]) -> World {
    suppressed_in(World::new().visitor("v1", Looking::Foreground, 0), messages)
}

fn suppressed_in(mut world: World, messages: &[(u64, i64)]) -> World {
    let mut ids = Counting::default();
    for &(position, ms) in messages {
        let text = format!("message {position}");
        let event = OutboxEvent {
            seq: position as i64,
            tenant: tenant(),
            found: Some((
                message(position, "agent", Role::Agent, &text),
                world.conversation(),
            )),
        };
        let planned = super::super::events(world.inputs.clone(), &[event], at(ms), &mut ids);
        for (key, thread) in planned.commit.threads {
            world
                .ctx("v1")
                .threads
                .insert((key.app, key.conversation), thread);
        }
        for r in planned.commit.records {
            assert_eq!(r.status, Status::Suppressed, "{r:?}");
            world.store(r);
        }
    }
    world
}

/// The user is away since `since_ms`, as the engine hears at `now_ms`, looking as told then.
fn away_at(world: &mut World, since_ms: i64, now_ms: i64, looking: Looking) -> Planned {
    let ctx = world.ctx("v1").clone();
    let mut inputs = world.inputs.clone();
    inputs.contexts.insert((tenant(), user("v1"), None), ctx);
    inputs.looking.insert((tenant(), user("v1")), looking);
    super::super::away(
        inputs,
        &tenant(),
        &user("v1"),
        at(since_ms),
        at(now_ms),
        &mut Counting::default(),
    )
}

fn gone_since(ms: i64) -> Looking {
    Looking::Away {
        since: Some(at(ms)),
    }
}

fn thread(planned: &Planned) -> &Thread {
    match planned.commit.threads.as_slice() {
        [(key, thread)] if *key == thread_key("v1") => thread,
        other => panic!("one thread of v1: {other:#?}"),
    }
}

#[test]
fn a_message_suppressed_during_the_reconnect_grace_is_pushed_when_the_grace_ends_without_a_return()
{
    // The session dropped at 1 s, the agent wrote at 3 s, the 10 s grace ended at 11 s.
    let mut world = suppressed(&[(1, 3_000)]);
    let planned = away_at(&mut world, 1_000, 11_000, gone_since(1_000));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Pending);
    assert_eq!(
        r.reason,
        "decided again: the live session that was looking went at 2026-11-23T10:00:01Z and the user did not come back; waiting for the grace delay: the user just went away"
    );
    assert_eq!(
        r.log[0].status,
        Status::Suppressed,
        "the same record goes on"
    );
    assert_eq!(r.looking, Some(gone_since(1_000)));
    let waited = thread(&planned);
    let pending = waited.pending.as_ref().unwrap();
    assert_eq!(pending.notification_id, r.id);
    assert_eq!(pending.wait, Wait::Grace);
    assert_eq!(
        pending.due_at,
        at(11_000),
        "the grace delay ran out 5 s after the drop: due at once"
    );
    assert!(waited.looked.is_empty(), "consumed");

    // The next timer round sends it like any push that waited.
    let mut firing = World::new().visitor("v1", gone_since(1_000), 1);
    firing
        .ctx("v1")
        .threads
        .insert((app(), conversation()), waited.clone());
    firing.store(r.clone());
    let membership = (tenant(), conversation(), user("v1"));
    firing
        .inputs
        .memberships
        .insert(membership, member("v1", Role::Visitor, 1));
    firing.transcript(vec![message(1, "agent", Role::Agent, "message 1")]);
    let fired = super::super::timers(
        firing.inputs.clone(),
        &[thread_key("v1")],
        &[],
        at(11_000),
        &mut Counting::default(),
    );
    let sent = fired.record("v1", PushKind::NewMessage);
    assert_eq!(sent.status, Status::Sent);
    assert_eq!(
        sent.push.as_ref().unwrap().body.as_deref(),
        Some("message 1")
    );
    assert_eq!(fired.commit.deliveries.len(), 1);
}

#[test]
fn the_grace_delay_runs_from_the_moment_the_session_went_not_from_when_it_was_noticed() {
    // Silent since 0 s, the agent wrote at 1 s, the session was declared dead at 2 s.
    let mut world = suppressed(&[(1, 1_000)]);
    let planned = away_at(&mut world, 0, 2_000, gone_since(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!((r.status, r.due_at), (Status::Pending, Some(at(5_000))));
}

#[test]
fn several_suppressions_make_one_push_that_carries_the_latest() {
    let mut world = suppressed(&[(1, 2_000), (2, 4_000)]);
    let planned = away_at(&mut world, 1_000, 11_000, gone_since(1_000));
    let records = planned.records_of("v1", PushKind::NewMessage);
    assert_eq!(records.len(), 2, "{records:#?}");
    let (first, second) = (records[0], records[1]);
    assert_eq!(first.status, Status::Pending);
    assert_eq!(second.status, Status::Coalesced);
    assert!(
        second.reason.ends_with(&format!(
            "folded into notification {}, which will carry the latest message",
            first.id
        )),
        "{}",
        second.reason
    );
    let pending = thread(&planned).pending.clone().unwrap();
    assert_eq!(
        (
            pending.first_position,
            pending.latest_position,
            pending.count
        ),
        (1, 2, 2)
    );
}

#[test]
fn only_what_was_suppressed_after_the_session_went_is_decided_again() {
    // Message 1 reached a session that was still there; the session went at 3 s.
    let mut world = suppressed(&[(1, 1_000), (2, 5_000)]);
    let planned = away_at(&mut world, 3_000, 13_000, gone_since(3_000));
    let records = planned.records_of("v1", PushKind::NewMessage);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        (records[0].position, records[0].status),
        (Some(2), Status::Pending)
    );
    assert!(thread(&planned).looked.is_empty(), "nothing left to decide");
}

#[test]
fn a_user_looking_again_has_nothing_decided_again() {
    let mut world = suppressed(&[(1, 3_000)]);
    let planned = away_at(&mut world, 1_000, 11_000, Looking::Foreground);
    assert!(planned.commit.is_empty(), "{planned:#?}");
}

#[test]
fn a_suppression_is_decided_again_only_once() {
    let mut world = suppressed(&[(1, 3_000)]);
    let planned = away_at(&mut world, 1_000, 11_000, gone_since(1_000));
    let mut after = thread(&planned).clone();
    after.pending = None;
    world
        .ctx("v1")
        .threads
        .insert((app(), conversation()), after);
    world.store(planned.record("v1", PushKind::NewMessage).clone());
    let again = away_at(&mut world, 1_000, 12_000, gone_since(1_000));
    assert!(again.commit.records.is_empty(), "{again:#?}");
}

#[test]
fn a_suppression_older_than_the_recheck_window_stays_suppressed() {
    let mut world = suppressed(&[(1, 1_000)]);
    let planned = away_at(&mut world, 0, 97_000, gone_since(0));
    assert!(planned.commit.records.is_empty());
    assert!(thread(&planned).looked.is_empty(), "forgotten");
}

#[test]
fn a_thread_remembers_only_the_latest_suppressions() {
    let messages: Vec<(u64, i64)> = (1..=40).map(|p| (p, p as i64 * 100)).collect();
    let mut world = suppressed(&messages);
    let looked = &world.ctx("v1").threads[&(app(), conversation())].looked;
    assert_eq!(looked.len(), LOOKED_CAP);
    assert_eq!(looked[0].position, 9, "the oldest went first");
}

#[test]
fn an_email_digest_starts_from_the_moment_the_session_went() {
    let config = crate::app::AppConfig {
        smtp: Some(smtp()),
        ..Default::default()
    };
    let mut world = World::with_app(config).visitor("v1", Looking::Foreground, 0);
    world.ctx("v1").email = Some("v1@example.com".into());
    let mut planned_world = suppressed_in(world, &[(1, 3_000)]);
    let planned = away_at(&mut planned_world, 1_000, 11_000, gone_since(1_000));
    let digest = planned.record("v1", PushKind::Digest);
    assert_eq!(digest.status, Status::Pending);
    assert_eq!(digest.due_at, Some(at(601_000)), "10 min after the drop");
}
