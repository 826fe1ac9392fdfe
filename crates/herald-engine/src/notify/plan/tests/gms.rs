//! Apps whose pushes take the Genesys GMS shape: what `lastTranscript` lists, from a push
//! that waited the grace delay and from one that goes at once.

use serde_json::json;

use crate::app::{AppConfig, ContentShape};
use crate::event::{Notice, NoticeKind};
use crate::notify::timing::UserState;
use crate::participant::Role;
use crate::push::{Gms, PushKind};

use super::*;

fn gms_app() -> AppConfig {
    let mut app = AppConfig::default();
    app.content.shape = ContentShape::Gms;
    app.content.gms.message = "Your agent wrote".into();
    app
}

fn notice(position: u64, kind: NoticeKind, text: Option<&str>) -> StoredEvent {
    let actor = Actor {
        id: user("agent"),
        role: Role::Agent,
        name: None,
    };
    let body = EventBody::Notice(
        kind,
        Notice {
            actor: Some(actor),
            text: text.map(Into::into),
            url: None,
            data: None,
        },
    );
    stored(position, body)
}

fn gms_of(planned: &Planned) -> serde_json::Value {
    let r = planned.record("v1", PushKind::NewMessage);
    let gms: &Gms = r.push.as_ref().unwrap().gms.as_ref().expect("a GMS push");
    serde_json::to_value(gms).unwrap()
}

/// v1 went away; the agent's events 2–6 wait for the grace delay, due at 5 s.
fn waiting(app: AppConfig) -> World {
    let mut world = World::with_app(app).visitor("v1", away(), 2);
    world.waiting_for_grace(
        pending_record("n1", "v1", PushKind::NewMessage),
        (2, 6, 3),
        2,
    );
    world.transcript(vec![
        message(1, "v1", Role::Visitor, "hi"),
        message(4, "agent", Role::Agent, "hello"),
        message(6, "agent", Role::Agent, "still there?"),
    ]);
    world
}

fn app_id() -> AppId {
    super::app()
}

fn span() -> Vec<StoredEvent> {
    vec![
        notice(2, NoticeKind::TypingStarted, None),
        notice(3, NoticeKind::Custom, Some("transferring you")),
        message(4, "agent", Role::Agent, "hello"),
        message(5, "v1", Role::Visitor, "brb"),
        message(6, "agent", Role::Agent, "still there?"),
    ]
}

fn fire(world: &World) -> Planned {
    let threads = [thread_key("v1")];
    let mut ids = Counting::default();
    super::super::timers(world.inputs.clone(), &threads, &[], at(5_000), &mut ids)
}

#[test]
fn a_due_push_lists_every_agent_event_it_stands_for_less_the_filtered() {
    let mut world = waiting(gms_app());
    let reads = world.inputs.thread_reads(&thread_key("v1"), at(5_000));
    assert_eq!(reads.span, Some((2, 6)), "the runtime loads the span");
    world
        .inputs
        .spans
        .insert((tenant(), conversation(), 2, 6), span());
    assert_eq!(
        gms_of(&fire(&world)),
        json!({
            "message": "Your agent wrote",
            "serviceId": "c1",
            "lastTranscript": [
                {"Notice.Custom": "transferring you"},
                {"Message.Text": "hello"},
                {"Message.Text": "still there?"},
            ],
        })
    );
}

#[test]
fn an_app_of_herald_shape_neither_reads_the_span_nor_sends_the_gms_shape() {
    let world = waiting(AppConfig::default());
    let reads = world.inputs.thread_reads(&thread_key("v1"), at(5_000));
    assert_eq!(reads.span, None);
    let r = fire(&world);
    let push = r.record("v1", PushKind::NewMessage).push.clone().unwrap();
    assert_eq!(push.gms, None);
    assert_eq!(push.body.as_deref(), Some("still there?"));
}

#[test]
fn a_push_at_once_later_in_the_away_period_lists_its_one_event() {
    let mut world = World::with_app(gms_app()).visitor("v1", away(), 3);
    // The away period had its push: the next one goes at once (the coalesce window is over).
    let state = UserState {
        last_push_at: Some(at(-30_000)),
        ..UserState::default()
    };
    world.ctx("v1").states.insert(app_id(), state);
    world.transcript(vec![
        message(4, "agent", Role::Agent, "hello"),
        message(7, "agent", Role::Agent, "one more thing"),
    ]);
    let planned = world.evaluate(
        vec![message(7, "agent", Role::Agent, "one more thing")],
        at(0),
    );
    assert_eq!(
        planned.record("v1", PushKind::NewMessage).status,
        Status::Sent
    );
    assert_eq!(
        gms_of(&planned)["lastTranscript"],
        json!([{"Message.Text": "one more thing"}])
    );
}
