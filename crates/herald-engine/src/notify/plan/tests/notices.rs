//! Notices that push (GMS: `Notice.PushUrl`, `Notice.Custom`, … to a disconnected app): the
//! push describes the notice — its kind, its event id, its URL — never the message before it.

use crate::app::{AppConfig, ContentMode};
use crate::event::{Actor, EventBody, Notice, NoticeKind};
use crate::notify::record::Status;
use crate::participant::Role;
use crate::push::PushKind;

use super::*;

const URL: &str = "https://shop.example/order/42";

fn push_url(position: u64) -> StoredEvent {
    let notice = Notice {
        actor: Some(Actor {
            id: user("agent"),
            role: Role::Agent,
            name: Some("agent name".into()),
        }),
        text: None,
        url: Some(URL.into()),
        data: None,
    };
    stored(position, EventBody::Notice(NoticeKind::PushUrl, notice))
}

fn no_grace() -> AppConfig {
    let mut config = AppConfig::default();
    config.rules.grace_delay_ms = 0;
    config.rules.coalesce_window_ms = 0;
    config
}

#[test]
fn an_agent_sharing_a_link_after_a_message_pushes_the_link_not_the_message() {
    let mut world = World::with_app(no_grace()).visitor("v1", away(), 1);
    let hello = message(1, "agent", Role::Agent, "hello");
    let link = push_url(2);
    world.transcript(vec![hello.clone()]);
    // As the runtime loads it: the recent messages, then the notice that leads the push.
    world.transcript(vec![hello.clone(), link.clone()]);
    let planned = world.evaluate(vec![hello, link], at(0));

    let message = planned.record("v1", PushKind::NewMessage);
    let sent = message.push.as_ref().unwrap();
    assert_eq!(sent.event_id.as_ref().unwrap().as_str(), "e1");

    let notice = planned.record("v1", PushKind::Notice);
    assert_eq!(notice.status, Status::Sent);
    let push = notice.push.as_ref().unwrap();
    assert_eq!(push.kind, PushKind::Notice);
    assert_eq!(push.event_id.as_ref().unwrap().as_str(), "e2");
    assert_eq!(push.position, Some(2));
    assert_eq!(push.data.get("url").map(String::as_str), Some(URL));
    assert_eq!(push.title.as_deref(), Some("New link"));
    assert_eq!(push.body.as_deref(), Some(URL));
    assert_eq!(push.sender.as_ref().unwrap().id, user("agent"));
    assert_eq!(
        push.lines.len(),
        1,
        "the transcript lines are still messages"
    );
    let delivered = planned.commit.deliveries.last().unwrap();
    assert_eq!(delivered.push.kind, PushKind::Notice);
}

#[test]
fn a_notice_alone_waits_the_grace_delay_and_goes_though_nothing_is_unread() {
    let mut world = World::new().visitor("v1", away(), 0);
    let link = push_url(1);
    world.transcript(vec![link.clone()]);
    let planned = world.evaluate(vec![link], at(0));
    let waiting = planned.record("v1", PushKind::Notice);
    assert_eq!(waiting.status, Status::Pending);

    world.waiting_for_grace(waiting.clone(), (1, 1, 1), 0);
    let threads = [thread_key("v1")];
    let inputs = world.inputs.clone();
    let fired = super::super::timers(inputs, &threads, &[], at(5_000), &mut Counting::default());
    let r = fired.record("v1", PushKind::Notice);
    assert_eq!(r.status, Status::Sent, "{:#?}", r.log);
    let push = r.push.as_ref().unwrap();
    assert_eq!(push.event_id.as_ref().unwrap().as_str(), "e1");
    assert_eq!(push.data.get("url").map(String::as_str), Some(URL));
}

#[test]
fn a_message_folded_into_a_waiting_notice_push_leads_it_again() {
    let mut world = World::new().visitor("v1", away(), 1);
    let link = push_url(1);
    let hello = message(2, "agent", Role::Agent, "and one more thing");
    world.transcript(vec![link.clone()]);
    world.transcript(vec![hello.clone()]);
    let planned = world.evaluate(vec![link, hello], at(0));
    assert_eq!(
        planned.record("v1", PushKind::NewMessage).status,
        Status::Coalesced
    );
    let (_, thread) = planned.commit.threads.last().unwrap();
    world
        .ctx("v1")
        .threads
        .insert((app(), conversation()), thread.clone());
    world.store(planned.record("v1", PushKind::Notice).clone());
    let membership = (tenant(), conversation(), user("v1"));
    world
        .inputs
        .memberships
        .insert(membership, member("v1", Role::Visitor, 1));
    let threads = [thread_key("v1")];
    let inputs = world.inputs.clone();
    let fired = super::super::timers(inputs, &threads, &[], at(5_000), &mut Counting::default());
    let r = fired.record("v1", PushKind::NewMessage);
    let push = r.push.as_ref().unwrap();
    assert_eq!(push.event_id.as_ref().unwrap().as_str(), "e2");
    assert_eq!(push.body.as_deref(), Some("and one more thing"));
    assert!(push.data.is_empty());
}

#[test]
fn a_metadata_only_app_gets_the_notices_ids_but_not_its_url() {
    let mut config = no_grace();
    config.content.mode = ContentMode::MetadataOnly;
    let mut world = World::with_app(config).visitor("v1", away(), 0);
    let link = push_url(1);
    world.transcript(vec![link.clone()]);
    let planned = world.evaluate(vec![link], at(0));
    let push = planned.record("v1", PushKind::Notice).push.clone().unwrap();
    assert_eq!(push.event_id.as_ref().unwrap().as_str(), "e1");
    assert_eq!((push.title, push.body), (None, None));
    assert!(push.data.is_empty(), "the URL is content: {:?}", push.data);
}
