//! Unblu's invitation and forwarding notifications: an agent added to a conversation by
//! another is told, if away, with a push of their own.

use crate::app::AppConfig;
use crate::event::{EventBody, ParticipantJoined};
use crate::notify::Looking;
use crate::notify::quiet::{Preferences, QuietHours};
use crate::notify::record::Status;
use crate::notify::store::UserContext;
use crate::participant::Role;
use crate::push::PushKind;

use super::*;

/// `agent` (named Ann) is in the conversation; `agent-9` has a phone and looks as told.
fn world(config: AppConfig, looking: Looking) -> World {
    let mut world = World::with_app(config);
    world.members[0].participant.name = Some("Ann".into());
    let ctx = UserContext {
        devices: vec![device("agent-9")],
        ..UserContext::default()
    };
    world.context("agent-9", ctx, looking);
    world.members.push(member("agent-9", Role::Agent, 0));
    world
}

/// `agent-9` joins at position 1, added `by` someone or on their own.
fn joins(by: Option<&str>) -> StoredEvent {
    let participant = member("agent-9", Role::Agent, 0).participant;
    let by = by.map(user);
    stored(
        1,
        EventBody::ParticipantJoined(ParticipantJoined { participant, by }),
    )
}

#[test]
fn an_agent_forwarded_a_conversation_while_away_is_pushed_at_once_with_who_forwarded_it() {
    let planned = world(AppConfig::default(), away()).evaluate(vec![joins(Some("agent"))], at(0));
    let r = planned.record("agent-9", PushKind::Invitation);
    assert_eq!(r.status, Status::Sent);
    assert_eq!(
        r.reason,
        "Ann added the user while they were away: pushed at once; handed to the delivery core for 1 target(s)"
    );
    let push = r.push.as_ref().unwrap();
    assert_eq!(push.kind, PushKind::Invitation);
    assert_eq!(push.title.as_deref(), Some("New conversation"));
    assert_eq!(
        push.body.as_deref(),
        Some("Ann added you to a conversation")
    );
    assert_eq!(push.event_id.as_ref().unwrap().as_str(), "e1");
    assert!(push.high_priority, "someone is waiting for them");
    assert_eq!(planned.commit.deliveries.len(), 1);
    assert!(
        planned
            .commit
            .records
            .iter()
            .all(|r| r.user_id == user("agent-9")),
        "the one who added them is told nothing"
    );
}

#[test]
fn an_invitation_speaks_the_invited_users_language() {
    let mut world = world(AppConfig::default(), away());
    world.ctx("agent-9").preferences.locale = Some("de".into());
    let planned = world.evaluate(vec![joins(Some("agent"))], at(0));
    let push = planned
        .record("agent-9", PushKind::Invitation)
        .push
        .clone()
        .unwrap();
    assert_eq!(push.title.as_deref(), Some("Neue Unterhaltung"));
    assert_eq!(
        push.body.as_deref(),
        Some("Ann hat Sie zu einer Unterhaltung hinzugefügt")
    );
}

#[test]
fn joining_on_ones_own_tells_nobody() {
    let planned = world(AppConfig::default(), away()).evaluate(vec![joins(None)], at(0));
    assert!(
        planned.commit.records.is_empty(),
        "{:#?}",
        planned.commit.records
    );
}

#[test]
fn an_agent_looking_at_a_live_session_sees_the_conversation_there() {
    let planned = world(AppConfig::default(), Looking::Foreground)
        .evaluate(vec![joins(Some("agent"))], at(0));
    let r = planned.record("agent-9", PushKind::Invitation);
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(
        r.reason,
        "the user is looking at a live session, which carries the event"
    );
}

#[test]
fn the_apps_who_rules_decide_whether_invitations_push() {
    let mut visitors_only = AppConfig::default();
    visitors_only.rules.notify_roles = vec![Role::Visitor];
    let planned = world(visitors_only, away()).evaluate(vec![joins(Some("agent"))], at(0));
    let r = planned.record("agent-9", PushKind::Invitation);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (
            Status::Suppressed,
            "the app does not notify participants with role agent"
        )
    );

    let mut filtered = AppConfig::default();
    filtered.rules.filter.push("participant.joined".into());
    let planned = world(filtered, away()).evaluate(vec![joins(Some("agent"))], at(0));
    let r = planned.record("agent-9", PushKind::Invitation);
    assert_eq!(r.reason, "the app filters out participant.joined events");
}

#[test]
fn an_invitation_inside_quiet_hours_is_not_deferred() {
    let mut world = world(AppConfig::default(), away());
    world.ctx("agent-9").preferences = Preferences {
        quiet_hours: Some(QuietHours {
            start: "09:00".into(),
            end: "12:00".into(),
            time_zone: "UTC".into(),
        }),
        ..Preferences::default()
    };
    let planned = world.evaluate(vec![joins(Some("agent"))], at(0));
    let r = planned.record("agent-9", PushKind::Invitation);
    assert_eq!(r.status, Status::Suppressed);
    assert_eq!(
        r.reason,
        "the user is inside their quiet hours; an invitation is not deferred"
    );
    assert!(planned.commit.threads.is_empty(), "no timer waits");
}
