//! Builders and assertions the cases share. Times are whole seconds so they survive stores
//! that keep millisecond precision.

use std::sync::Arc;

use herald_engine::device::{DeviceChannel, DeviceRegistration, Platform};
use herald_engine::event::NewEvent;
use herald_engine::ids::{AppId, ConversationId, DeviceId, EventId, TenantId, UserId};
use herald_engine::participant::{Membership, Participant, Role};
use herald_engine::store::{Appended, Effects, Store, StoreError, UnreadChange};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).expect("a valid tenant id")
}

pub fn user(id: &str) -> UserId {
    UserId::parse(id).expect("a valid user id")
}

pub fn conversation(id: &str) -> ConversationId {
    ConversationId::parse(id).expect("a valid conversation id")
}

pub fn event_id(id: &str) -> EventId {
    EventId::parse(id).expect("a valid event id")
}

pub fn app_id(id: &str) -> AppId {
    AppId::parse(id).expect("a valid app id")
}

pub fn device_id(id: &str) -> DeviceId {
    DeviceId::parse(id).expect("a valid device id")
}

pub fn users(ids: &[&str]) -> Vec<UserId> {
    ids.iter().map(|id| user(id)).collect()
}

/// `seconds` after a fixed instant.
pub fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("a valid time")
}

fn rfc3339(seconds: i64) -> String {
    herald_engine::event::rfc3339(at(seconds))
}

/// An event from its wire form (envelope fields added here).
pub fn event(id: &str, conversation: &str, type_name: &str, fields: Value) -> NewEvent {
    let mut wire = json!({
        "event_id": id,
        "conversation_id": conversation,
        "type": type_name,
        "occurred_at": rfc3339(1),
    });
    if let (Value::Object(wire), Value::Object(fields)) = (&mut wire, fields) {
        wire.extend(fields);
    }
    NewEvent::from_json(wire).expect("a valid event")
}

pub fn message(id: &str, conversation: &str, sender: &str, role: &str, text: &str) -> NewEvent {
    event(
        id,
        conversation,
        "message.created",
        json!({"sender": {"id": sender, "role": role}, "text": text}),
    )
}

pub fn joined(id: &str, conversation: &str, user: &str, role: &str) -> NewEvent {
    event(
        id,
        conversation,
        "participant.joined",
        json!({"participant": {"user_id": user, "role": role}}),
    )
}

pub fn left(id: &str, conversation: &str, user: &str) -> NewEvent {
    event(
        id,
        conversation,
        "participant.left",
        json!({"user_id": user}),
    )
}

pub fn read(id: &str, conversation: &str, reader: &str, position: u64) -> NewEvent {
    event(
        id,
        conversation,
        "message.read",
        json!({"reader_id": reader, "position": position}),
    )
}

pub fn participant(user_id: &str, role: Role) -> Participant {
    Participant {
        user_id: user(user_id),
        role,
        secondary: false,
        name: None,
        email: None,
    }
}

pub fn registration(
    app: &str,
    owner: &str,
    channel: DeviceChannel,
    token: &str,
) -> DeviceRegistration {
    DeviceRegistration {
        app_id: app_id(app),
        user_id: user(owner),
        channel,
        token: token.to_string(),
        subscription: None,
        platform: Platform::Android,
        locale: None,
        installation_id: None,
    }
}

pub fn from_installation(
    mut registration: DeviceRegistration,
    installation: &str,
) -> DeviceRegistration {
    registration.installation_id = Some(installation.to_string());
    registration
}

pub async fn append(
    store: &Arc<dyn Store>,
    tenant: &TenantId,
    events: Vec<NewEvent>,
) -> Vec<Appended> {
    store
        .append_events(tenant, events, at(10))
        .await
        .expect("the batch is appended")
}

pub async fn append_one(store: &Arc<dyn Store>, tenant: &TenantId, event: NewEvent) -> Appended {
    append(store, tenant, vec![event]).await.remove(0)
}

pub fn effects(appended: &Appended) -> &Effects {
    appended.effects.as_ref().expect("a new event has effects")
}

pub fn positions(appended: &[Appended]) -> Vec<u64> {
    appended.iter().map(|a| a.position).collect()
}

pub async fn membership(
    store: &Arc<dyn Store>,
    tenant: &TenantId,
    conversation_id: &str,
    user_id: &str,
) -> Option<Membership> {
    store
        .membership(tenant, &conversation(conversation_id), &user(user_id))
        .await
        .expect("membership reads")
}

pub async fn unread_of(
    store: &Arc<dyn Store>,
    tenant: &TenantId,
    conversation_id: &str,
    user_id: &str,
) -> u64 {
    membership(store, tenant, conversation_id, user_id)
        .await
        .expect("a participant")
        .unread
}

pub async fn read_position_of(
    store: &Arc<dyn Store>,
    tenant: &TenantId,
    conversation_id: &str,
    user_id: &str,
) -> u64 {
    membership(store, tenant, conversation_id, user_id)
        .await
        .expect("a participant")
        .read_position
}

/// Every position of the transcript, in order.
pub async fn transcript(
    store: &Arc<dyn Store>,
    tenant: &TenantId,
    conversation_id: &str,
) -> Vec<NewEvent> {
    store
        .events_after(tenant, &conversation(conversation_id), 0, usize::MAX)
        .await
        .expect("events read")
        .into_iter()
        .map(|stored| stored.event)
        .collect()
}

pub fn change(user_id: &str, conversation_id: &str, count: u64, total: u64) -> UnreadChange {
    UnreadChange {
        user_id: user(user_id),
        conversation_id: conversation(conversation_id),
        count,
        total,
    }
}

/// Asserts `result` is `EventInvalid` for the event at `index`, naming the field at `path`.
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, index: usize, path: &str) {
    match result {
        Err(StoreError::EventInvalid {
            index: got,
            invalid,
        }) => {
            assert_eq!((got, invalid.path.as_str()), (index, path), "{invalid}");
        }
        other => panic!("expected EventInvalid at {index} ({path}), got {other:?}"),
    }
}
