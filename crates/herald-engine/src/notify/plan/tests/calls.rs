//! Calls: who is rung, who is told it stopped, who missed it.

use crate::app::AppConfig;
use crate::event::{Actor, CallKind, CallRinging, CallUpdate, EventBody};
use crate::notify::Looking;
use crate::notify::calls::CallState;
use crate::notify::quiet::Preferences;
use crate::notify::record::Status;
use crate::participant::Role;
use crate::push::PushKind;

use super::*;

fn ringing(position: u64, callees: &[&str]) -> StoredEvent {
    stored(
        position,
        EventBody::CallRinging(CallRinging {
            call_id: "k1".into(),
            caller: Actor {
                id: user("agent"),
                role: Role::Agent,
                name: Some("Ann".into()),
            },
            callees: callees.iter().map(|c| user(c)).collect(),
            ring_timeout_s: Some(20),
        }),
    )
}

fn ended(position: u64, kind: CallKind, by: Option<&str>) -> StoredEvent {
    let update = CallUpdate {
        call_id: "k1".into(),
        by: by.map(user),
    };
    stored(position, EventBody::Call(kind, update))
}

/// A call of the agent to v1 and v2 that rang only v1, stored by an earlier step.
fn rang_v1(world: &mut World) {
    let call = CallState {
        conversation_id: conversation(),
        caller: user("agent"),
        callees: vec![user("v1"), user("v2")],
        rang: vec![(user("v1"), app())],
        over: false,
        ring_until: at(20_000),
        caller_name: Some("Ann".into()),
        declined: vec![],
    };
    world.inputs.calls.insert((tenant(), "k1".into()), call);
}

#[test]
fn ringing_pushes_at_once_and_remembers_who_rang() {
    let world = World::new().visitor("v1", away(), 0);
    let planned = world.evaluate(vec![ringing(1, &["v1"])], at(0));
    let r = planned.record("v1", PushKind::IncomingCall);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(
        r.reason,
        "ringing: pushed at once, without a grace delay; handed to the delivery core for 1 target(s)"
    );
    let push = r.push.as_ref().unwrap();
    assert_eq!(push.expires_at, at(20_000), "the TTL is the ring timeout");
    assert_eq!(push.body.as_deref(), Some("Ann is calling"));
    let (_, id, call) = &planned.commit.calls[0];
    assert_eq!(id, "k1");
    assert_eq!(call.rang, vec![(user("v1"), app())]);
}

#[test]
fn auto_join_call_is_not_rung() {
    let mut config = AppConfig::default();
    config.rules.auto_join_calls = true;
    let world = World::with_app(config).visitor("v1", away(), 0);
    let planned = world.evaluate(vec![ringing(1, &["v1"])], at(0));
    let r = planned.record("v1", PushKind::IncomingCall);
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(
        r.reason,
        "the app joins calls automatically: no incoming-call push"
    );
    assert!(planned.commit.deliveries.is_empty());
    assert!(
        planned.commit.calls[0].2.rang.is_empty(),
        "nothing to revoke later"
    );
}

#[test]
fn ringing_is_suppressed_while_looking() {
    let world = World::new().visitor("v1", Looking::Foreground, 0);
    let planned = world.evaluate(vec![ringing(1, &["v1"])], at(0));
    let r = planned.record("v1", PushKind::IncomingCall);
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(
        r.reason,
        "the user is looking at a live session, which carries the call"
    );
    assert!(planned.commit.deliveries.is_empty());
}

#[test]
fn a_ringing_call_cannot_wait_for_the_end_of_a_pause() {
    let mut world = World::new().visitor("v1", away(), 0);
    world.ctx("v1").preferences = Preferences {
        pause_until: Some(at(60_000)),
        ..Preferences::default()
    };
    let planned = world.evaluate(vec![ringing(1, &["v1"])], at(0));
    let r = planned.record("v1", PushKind::IncomingCall);
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(
        r.reason,
        "the user paused notifications; a ringing call cannot wait"
    );
}

#[test]
fn revoke_goes_to_exactly_who_rang() {
    let mut world = World::new()
        .visitor("v1", away(), 0)
        .visitor("v2", away(), 0);
    rang_v1(&mut world);
    let planned = world.evaluate(vec![ended(2, CallKind::Answered, Some("v2"))], at(5_000));
    let r = planned.record("v1", PushKind::RevokedCall);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(
        r.reason,
        "the call stopped ringing: dismiss the incoming call; handed to the delivery core for 1 target(s)"
    );
    assert!(planned.records_of("v2", PushKind::RevokedCall).is_empty());
    assert!(
        planned.records_of("v1", PushKind::MissedCall).is_empty(),
        "answered"
    );
    assert!(planned.commit.calls[0].2.over);
}

#[test]
fn a_revocation_outlives_a_ring_that_already_timed_out() {
    let mut world = World::new().visitor("v1", away(), 0);
    rang_v1(&mut world);
    let now = at(60_000);
    let planned = world.evaluate(vec![ended(2, CallKind::Ended, None)], now);
    let push = planned
        .record("v1", PushKind::RevokedCall)
        .push
        .clone()
        .unwrap();
    assert_eq!(push.expires_at, now + Duration::seconds(30));
}

#[test]
fn a_cancelled_call_is_missed_by_every_callee_with_their_count() {
    let mut world = World::new()
        .visitor("v1", away(), 0)
        .visitor("v2", away(), 0);
    rang_v1(&mut world);
    let planned = world.evaluate(
        vec![ended(2, CallKind::Cancelled, Some("agent"))],
        at(5_000),
    );
    for v in ["v1", "v2"] {
        let r = planned.record(v, PushKind::MissedCall);
        assert_eq!(r.status, Status::Sent);
        assert_eq!(r.push.as_ref().unwrap().missed_calls, 1);
    }
    let counts: Vec<u64> = planned
        .commit
        .user_states
        .iter()
        .map(|s| s.3.missed_calls)
        .collect();
    assert_eq!(counts, vec![1, 1]);
}

#[test]
fn a_declined_call_leaves_no_missed_call() {
    let mut world = World::new().visitor("v1", away(), 0);
    rang_v1(&mut world);
    let planned = world.evaluate(vec![ended(2, CallKind::Declined, Some("v1"))], at(5_000));
    assert_eq!(
        planned.record("v1", PushKind::RevokedCall).status,
        Status::Sent
    );
    assert!(planned.records_of("v1", PushKind::MissedCall).is_empty());
}

#[test]
fn a_call_that_rings_and_stops_in_one_batch_is_revoked_where_it_rang() {
    let world = World::new()
        .visitor("v1", away(), 0)
        .visitor("v2", Looking::Foreground, 0);
    let batch = vec![ringing(1, &["v1", "v2"]), ended(2, CallKind::Timeout, None)];
    let planned = world.evaluate(batch, at(0));
    assert_eq!(
        planned.record("v1", PushKind::RevokedCall).status,
        Status::Sent
    );
    assert!(
        planned.records_of("v2", PushKind::RevokedCall).is_empty(),
        "v2 never rang"
    );
    let missed = planned.record("v2", PushKind::MissedCall);
    assert_eq!(missed.status, Status::Suppressed);
    assert_eq!(
        missed.reason,
        "the user is looking at a live session, which shows the missed call"
    );
}

/// A group call of the agent to v1 and v2 that rang both, stored by an earlier step.
fn rang_both(world: &mut World) {
    let call = CallState {
        conversation_id: conversation(),
        caller: user("agent"),
        callees: vec![user("v1"), user("v2")],
        rang: vec![(user("v1"), app()), (user("v2"), app())],
        over: false,
        ring_until: at(20_000),
        caller_name: Some("Ann".into()),
        declined: vec![],
    };
    world.inputs.calls.insert((tenant(), "k1".into()), call);
}

#[test]
fn one_decline_in_a_group_call_stops_the_ringing_for_the_decliner_only() {
    let mut world = World::new()
        .visitor("v1", away(), 0)
        .visitor("v2", away(), 0);
    rang_both(&mut world);
    let planned = world.evaluate(vec![ended(2, CallKind::Declined, Some("v1"))], at(5_000));
    assert_eq!(
        planned.record("v1", PushKind::RevokedCall).status,
        Status::Sent
    );
    assert!(
        planned.records_of("v2", PushKind::RevokedCall).is_empty(),
        "v2 is still ringing"
    );
    let (_, _, call) = &planned.commit.calls[0];
    assert!(!call.over, "the call rings on for v2");
    assert_eq!(call.rang, vec![(user("v2"), app())]);
    assert_eq!(call.declined, vec![user("v1")]);
}

#[test]
fn at_the_timeout_of_a_group_call_who_never_answered_misses_it_and_the_decliner_does_not() {
    let mut world = World::new()
        .visitor("v1", away(), 0)
        .visitor("v2", away(), 0);
    rang_both(&mut world);
    let batch = vec![
        ended(2, CallKind::Declined, Some("v1")),
        ended(3, CallKind::Timeout, None),
    ];
    let planned = world.evaluate(batch, at(20_000));
    assert_eq!(
        planned.records_of("v1", PushKind::RevokedCall).len(),
        1,
        "the decliner is revoked once, at the decline"
    );
    assert!(planned.records_of("v1", PushKind::MissedCall).is_empty());
    assert_eq!(
        planned.record("v2", PushKind::RevokedCall).status,
        Status::Sent
    );
    assert_eq!(
        planned.record("v2", PushKind::MissedCall).status,
        Status::Sent
    );
    assert!(planned.commit.calls.last().unwrap().2.over);
}

#[test]
fn the_last_callee_to_decline_ends_the_call_and_nobody_misses_it() {
    let mut world = World::new()
        .visitor("v1", away(), 0)
        .visitor("v2", away(), 0);
    rang_both(&mut world);
    let batch = vec![
        ended(2, CallKind::Declined, Some("v1")),
        ended(3, CallKind::Declined, Some("v2")),
        ended(4, CallKind::Timeout, None),
    ];
    let planned = world.evaluate(batch, at(6_000));
    for v in ["v1", "v2"] {
        assert_eq!(planned.records_of(v, PushKind::RevokedCall).len(), 1);
        assert!(planned.records_of(v, PushKind::MissedCall).is_empty());
    }
    assert!(planned.records_of("agent", PushKind::MissedCall).is_empty());
    assert!(planned.commit.calls.last().unwrap().2.over);
}

#[test]
fn a_decline_of_a_one_to_one_call_ends_it_and_nobody_misses_it() {
    let mut world = World::new().visitor("v1", away(), 0);
    rang_v1(&mut world);
    world
        .inputs
        .calls
        .get_mut(&(tenant(), "k1".into()))
        .unwrap()
        .callees = vec![user("v1")];
    let batch = vec![
        ended(2, CallKind::Declined, Some("v1")),
        ended(3, CallKind::Timeout, None),
    ];
    let planned = world.evaluate(batch, at(6_000));
    assert_eq!(planned.records_of("v1", PushKind::RevokedCall).len(), 1);
    assert!(planned.records_of("v1", PushKind::MissedCall).is_empty());
    assert!(planned.records_of("agent", PushKind::MissedCall).is_empty());
    assert!(planned.commit.calls.last().unwrap().2.over);
}
