//! Messages: who is told, and when.

use crate::app::{AppConfig, ContentMode};
use crate::notify::Looking;
use crate::notify::record::Status;
use crate::participant::Role;
use crate::push::PushKind;

use super::*;

#[test]
fn agent_writes_while_visitor_away_waits_the_grace_delay() {
    let world = World::new().visitor("v1", away(), 1);
    let planned = world.evaluate(vec![message(1, "agent", Role::Agent, "hello")], at(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Pending);
    assert_eq!(
        r.reason,
        "waiting for the grace delay: the user just went away"
    );
    assert_eq!(r.due_at, Some(at(5_000)));
    assert!(planned.commit.deliveries.is_empty(), "nothing goes yet");
    let (key, thread) = &planned.commit.threads[0];
    assert_eq!(key, &thread_key("v1"));
    assert_eq!(thread.due_at(), Some(at(5_000)), "the timer is durable");
    assert_eq!(planned.commit.evaluated, vec![0]);
}

#[test]
fn nobody_is_told_of_their_own_message() {
    let world = World::new().visitor("v1", away(), 1);
    let planned = world.evaluate(vec![message(1, "v1", Role::Visitor, "hi")], at(0));
    assert!(planned.records_of("v1", PushKind::NewMessage).is_empty());
    assert_eq!(planned.records_of("agent", PushKind::NewMessage).len(), 1);
}

#[test]
fn a_visitor_looking_at_a_live_session_gets_no_push() {
    let world = World::new().visitor("v1", Looking::Foreground, 1);
    let planned = world.evaluate(vec![message(1, "agent", Role::Agent, "hello")], at(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(
        r.reason,
        "the user is looking at a live session, which carries the event"
    );
}

#[test]
fn a_later_message_of_the_same_batch_folds_into_the_waiting_push() {
    let world = World::new().visitor("v1", away(), 2);
    let batch = vec![
        message(1, "agent", Role::Agent, "hello"),
        message(2, "agent", Role::Agent, "are you there?"),
    ];
    let planned = world.evaluate(batch, at(0));
    let records = planned.records_of("v1", PushKind::NewMessage);
    assert_eq!(records[0].status, Status::Pending);
    assert_eq!(records[1].status, Status::Coalesced);
    let waiting = &records[0].id;
    assert_eq!(
        records[1].reason,
        format!(
            "folded into notification {waiting}, which is waiting and will carry the latest message"
        )
    );
    let (_, thread) = planned.commit.threads.last().unwrap();
    assert_eq!(thread.pending.as_ref().unwrap().count, 2);
}

#[test]
fn a_user_reachable_by_no_app_is_recorded_as_such() {
    let mut world = World::new().visitor("v1", away(), 1);
    world.ctx("v1").devices.clear();
    let planned = world.evaluate(vec![message(1, "agent", Role::Agent, "hello")], at(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(r.app_id, None);
    assert_eq!(
        r.reason,
        "the user has no device registered in any app, and no app has a webhook for new messages"
    );
}

#[test]
fn a_looking_user_without_a_device_is_suppressed_because_they_are_looking() {
    let mut world = World::new().visitor("v1", Looking::Foreground, 1);
    world.ctx("v1").devices.clear();
    let planned = world.evaluate(vec![message(1, "agent", Role::Agent, "hello")], at(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Suppressed);
    assert!(
        r.reason
            .starts_with("the user is looking at a live session, which carries the event"),
        "the first rule in SPEC order names the decision: {}",
        r.reason
    );
    assert!(r.reason.contains("no device registered"), "{}", r.reason);
}

#[test]
fn roles_the_app_does_not_notify_are_suppressed_by_the_who_rules() {
    let mut config = AppConfig::default();
    config.rules.notify_roles = vec![Role::Agent];
    let world = World::with_app(config).visitor("v1", away(), 1);
    let planned = world.evaluate(vec![message(1, "agent", Role::Agent, "hello")], at(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Suppressed);
    assert!(r.reason.contains("visitor"), "{}", r.reason);
    assert!(planned.commit.threads.is_empty(), "no timer starts");
}

#[test]
fn with_no_grace_delay_the_push_goes_at_once_with_the_message() {
    let mut config = AppConfig::default();
    config.rules.grace_delay_ms = 0;
    let mut world = World::with_app(config).visitor("v1", away(), 1);
    let hello = message(1, "agent", Role::Agent, "hello");
    world.transcript(vec![hello.clone()]);
    let planned = world.evaluate(vec![hello], at(0));
    let r = planned.record("v1", PushKind::NewMessage);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(
        r.reason,
        "the user is away: one push for 1 message(s); handed to the delivery core for 1 target(s)"
    );
    let push = r.push.as_ref().unwrap();
    assert_eq!(push.title.as_deref(), Some("New message from agent name"));
    assert_eq!(push.body.as_deref(), Some("hello"));
    let delivery = &planned.commit.deliveries[0];
    assert_eq!(
        (delivery.id.as_str(), delivery.notification_id.as_str()),
        ("d1", r.id.as_str())
    );
}

#[test]
fn a_metadata_only_app_sends_no_text() {
    let mut config = AppConfig::default();
    config.rules.grace_delay_ms = 0;
    config.content.mode = ContentMode::MetadataOnly;
    let mut world = World::with_app(config).visitor("v1", away(), 1);
    let hello = message(1, "agent", Role::Agent, "hello");
    world.transcript(vec![hello.clone()]);
    let planned = world.evaluate(vec![hello], at(0));
    let push = planned
        .record("v1", PushKind::NewMessage)
        .push
        .clone()
        .unwrap();
    assert_eq!((push.title, push.body), (None, None));
    assert_eq!(push.position, Some(1));
}

#[test]
fn an_email_digest_waits_only_when_the_app_has_smtp_and_the_user_an_address() {
    let config = AppConfig {
        smtp: Some(smtp()),
        ..AppConfig::default()
    };
    let mut world = World::with_app(config).visitor("v1", away(), 1);
    let hello = || vec![message(1, "agent", Role::Agent, "hello")];
    assert!(
        world
            .evaluate(hello(), at(0))
            .records_of("v1", PushKind::Digest)
            .is_empty(),
        "no address: no email"
    );
    world.ctx("v1").email = Some("v1@example".into());
    let planned = world.evaluate(hello(), at(0));
    let digest = planned.record("v1", PushKind::Digest);
    assert_eq!(digest.status, Status::Pending);
    assert_eq!(digest.due_at, Some(at(600_000)));
    assert_eq!(
        digest.reason,
        "an email digest waits the app's email delay; it goes only if the conversation is still unread then"
    );
    let no_smtp = World::new().visitor("v1", away(), 1);
    let mut no_smtp = no_smtp;
    no_smtp.ctx("v1").email = Some("v1@example".into());
    assert!(
        no_smtp
            .evaluate(hello(), at(0))
            .records_of("v1", PushKind::Digest)
            .is_empty()
    );
}

#[test]
fn secondary_agents_and_secondary_visitors_follow_their_own_rule() {
    let rules =
        serde_json::json!({"rules": {"secondary_rule": {"agent": "never", "visitor": "always"}}});
    let config: AppConfig = serde_json::from_value(rules).unwrap();
    let mut world = World::with_app(config)
        .visitor("v1", away(), 1)
        .visitor("a2", away(), 1);
    for m in &mut world.members {
        if m.participant.user_id == user("a2") {
            m.participant.role = Role::Agent;
        }
        m.participant.secondary = m.participant.user_id != user("agent");
    }
    let planned = world.evaluate(vec![message(1, "agent", Role::Agent, "hello")], at(0));
    let agent = planned.record("a2", PushKind::NewMessage);
    assert_eq!(agent.status, Status::Suppressed);
    assert_eq!(
        agent.reason,
        "the app never notifies secondary participants with role agent"
    );
    assert_eq!(
        planned.record("v1", PushKind::NewMessage).status,
        Status::Pending,
        "a secondary visitor is still told"
    );
}
