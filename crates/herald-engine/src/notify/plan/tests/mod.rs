//! Stories of whole engine steps, told with plain values: a world of one tenant, one app, a
//! visitor and an agent in one conversation, and ids that count.

mod away;
mod calls;
mod gms;
mod health;
mod invitations;
mod messages;
mod notices;
mod reads;
mod timers;

use std::sync::Arc;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::app::{AppConfig, SmtpSection};
use crate::device::{Device, DeviceChannel, Platform};
use crate::event::{Actor, EventBody, MessageCreated, NewEvent, StoredEvent};
use crate::ids::{AppId, ConversationId, DeviceId, EventId, TenantId, UserId};
use crate::notify::record::{NotificationRecord, Status};
use crate::notify::store::{ThreadKey, UserContext};
use crate::notify::timing::{Pending, Thread, Wait};
use crate::notify::{Looking, NewIds};
use crate::participant::{Membership, Participant, Role};
use crate::push::PushKind;
use crate::store::Conversation;

use super::{Inputs, OutboxEvent, Planned};

pub const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

pub fn at(ms: i64) -> OffsetDateTime {
    T0 + Duration::milliseconds(ms)
}

/// Ids `n1`, `n2`, … for notifications and `d1`, `d2`, … for deliveries.
#[derive(Default)]
pub struct Counting {
    notifications: u32,
    deliveries: u32,
}

impl NewIds for Counting {
    fn notification(&mut self) -> String {
        self.notifications += 1;
        format!("n{}", self.notifications)
    }

    fn delivery(&mut self) -> String {
        self.deliveries += 1;
        format!("d{}", self.deliveries)
    }
}

pub fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub fn app() -> AppId {
    AppId::parse("chat").unwrap()
}

pub fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

pub fn conversation() -> ConversationId {
    ConversationId::parse("c1").unwrap()
}

pub fn thread_key(u: &str) -> ThreadKey {
    ThreadKey {
        tenant: tenant(),
        user: user(u),
        app: app(),
        conversation: conversation(),
    }
}

pub fn member(u: &str, role: Role, unread: u64) -> Membership {
    Membership {
        participant: Participant {
            user_id: user(u),
            role,
            secondary: false,
            name: None,
            email: None,
        },
        read_position: 0,
        unread,
    }
}

pub fn device(u: &str) -> Device {
    Device {
        id: DeviceId::parse(format!("dev-{u}")).unwrap(),
        app_id: app(),
        user_id: user(u),
        channel: DeviceChannel::Fcm,
        token: format!("token-{u}"),
        subscription: None,
        platform: Platform::Android,
        locale: None,
        installation_id: None,
        created_at: T0,
        updated_at: T0,
    }
}

pub fn stored(position: u64, body: EventBody) -> StoredEvent {
    StoredEvent {
        position,
        event: NewEvent {
            event_id: EventId::parse(format!("e{position}")).unwrap(),
            conversation_id: conversation(),
            occurred_at: T0,
            body,
        },
        recorded_at: T0,
    }
}

pub fn message(position: u64, from: &str, role: Role, text: &str) -> StoredEvent {
    stored(
        position,
        EventBody::MessageCreated(MessageCreated {
            sender: Actor {
                id: user(from),
                role,
                name: Some(format!("{from} name")),
            },
            text: text.into(),
            attachments: vec![],
        }),
    )
}

pub fn away() -> Looking {
    Looking::Away {
        since: Some(T0 - Duration::minutes(1)),
    }
}

/// An app's SMTP settings: email is possible.
pub fn smtp() -> SmtpSection {
    SmtpSection {
        host: "smtp.example".into(),
        port: 587,
        security: Default::default(),
        username: None,
        password: None,
        from: "herald@example".into(),
    }
}

/// One tenant with the app `chat` (default rules: 5 s grace, 3 s coalesce window).
pub struct World {
    pub inputs: Inputs,
    pub members: Vec<Membership>,
}

impl World {
    pub fn new() -> Self {
        World::with_app(AppConfig::default())
    }

    pub fn with_app(config: AppConfig) -> Self {
        let mut inputs = Inputs::default();
        inputs
            .apps
            .insert(tenant(), vec![(app(), Arc::new(config))]);
        World {
            inputs,
            members: vec![member("agent", Role::Agent, 0)],
        }
    }

    /// A visitor with a phone in the app, looking as told, with `unread` messages.
    pub fn visitor(mut self, u: &str, looking: Looking, unread: u64) -> Self {
        let ctx = UserContext {
            devices: vec![device(u)],
            ..UserContext::default()
        };
        self.context(u, ctx, looking);
        self.members.push(member(u, Role::Visitor, unread));
        self
    }

    pub fn context(&mut self, u: &str, ctx: UserContext, looking: Looking) {
        let key = (tenant(), user(u), Some(conversation()));
        self.inputs.contexts.insert(key, ctx);
        self.inputs.looking.insert((tenant(), user(u)), looking);
    }

    pub fn ctx(&mut self, u: &str) -> &mut UserContext {
        let key = (tenant(), user(u), Some(conversation()));
        self.inputs
            .contexts
            .get_mut(&key)
            .expect("a user of the world")
    }

    pub fn store(&mut self, record: NotificationRecord) {
        let key = (record.tenant_id.clone(), record.id.clone());
        self.inputs.records.insert(key, record);
    }

    /// `record`'s push waits for the grace delay (due at 5 s) over positions `first..=latest`
    /// (`count` messages): the user's thread holds it, the record is stored, and the user is a
    /// visitor of the conversation with `unread` unread.
    pub fn waiting_for_grace(
        &mut self,
        record: NotificationRecord,
        (first, latest, count): (u64, u64, u32),
        unread: u64,
    ) {
        let u = record.user_id.clone();
        let pending = Pending {
            notification_id: record.id.clone(),
            due_at: at(5_000),
            wait: Wait::Grace,
            first_position: first,
            latest_position: latest,
            count,
            expires_at: at(3_600_000),
        };
        let thread = Thread {
            pending: Some(pending),
            ..Thread::default()
        };
        self.ctx(u.as_str())
            .threads
            .insert((app(), conversation()), thread);
        self.store(record);
        let membership = (tenant(), conversation(), u.clone());
        self.inputs
            .memberships
            .insert(membership, member(u.as_str(), Role::Visitor, unread));
    }

    /// The transcript up to `last` as the store would answer it.
    pub fn transcript(&mut self, messages: Vec<StoredEvent>) {
        let last = messages.last().map_or(0, |m| m.position);
        let key = (tenant(), conversation(), last);
        self.inputs.recent.insert(key, messages);
    }

    pub fn conversation(&self) -> Conversation {
        Conversation {
            id: conversation(),
            last_position: 0,
            created_at: T0,
            participants: self.members.clone(),
        }
    }

    /// Evaluates `events`, one batch, at `now`.
    pub fn evaluate(&self, events: Vec<StoredEvent>, now: OffsetDateTime) -> Planned {
        let events: Vec<OutboxEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| OutboxEvent {
                seq: i as i64,
                tenant: tenant(),
                found: Some((e, self.conversation())),
            })
            .collect();
        super::events(self.inputs.clone(), &events, now, &mut Counting::default())
    }
}

/// A stored pending record, as an earlier step left it.
pub fn pending_record(id: &str, u: &str, kind: PushKind) -> NotificationRecord {
    NotificationRecord::new(
        id.into(),
        tenant(),
        user(u),
        Some(app()),
        Some(conversation()),
        kind,
        Some(1),
        Some(away()),
        Status::Pending,
        "waiting",
        T0,
    )
}

impl Planned {
    /// The records decided about `u`, by kind.
    pub fn records_of(&self, u: &str, kind: PushKind) -> Vec<&NotificationRecord> {
        let u = user(u);
        let of = |r: &&NotificationRecord| r.user_id == u && r.kind == kind;
        self.commit.records.iter().filter(of).collect()
    }

    /// The one record decided about `u` of that kind.
    pub fn record(&self, u: &str, kind: PushKind) -> &NotificationRecord {
        match self.records_of(u, kind).as_slice() {
            [one] => one,
            other => panic!("{} {kind:?} records for {u}: {other:#?}", other.len()),
        }
    }
}
