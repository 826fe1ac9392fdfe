//! Which event leads a push of a conversation's thread. A push carries the latest content
//! (SPEC §3.3 rule 2), and the latest pushable event may be a notice (`notice.push_url`,
//! `notice.custom`, …) rather than a message: the push must then describe that notice — its
//! kind, its `event_id`, its text and URL — and not the message before it, or a push proxy
//! fetches an older event than the one that triggered the push.

use crate::event::{EventBody, MessageCreated, Notice, NoticeKind, StoredEvent};
use crate::push::PushKind;

/// The event a push is about, with its type's fields.
#[derive(Debug, Clone, Copy)]
pub enum Lead<'a> {
    Message(&'a StoredEvent, &'a MessageCreated),
    Notice(&'a StoredEvent, NoticeKind, &'a Notice),
}

impl<'a> Lead<'a> {
    fn of(event: &'a StoredEvent) -> Option<Lead<'a>> {
        match &event.event.body {
            EventBody::MessageCreated(m) => Some(Lead::Message(event, m)),
            EventBody::Notice(kind, n) => Some(Lead::Notice(event, *kind, n)),
            _ => None,
        }
    }

    pub fn event(self) -> &'a StoredEvent {
        match self {
            Lead::Message(e, _) | Lead::Notice(e, _, _) => e,
        }
    }

    /// The kind of push it makes.
    pub fn kind(self) -> PushKind {
        match self {
            Lead::Message(..) => PushKind::NewMessage,
            Lead::Notice(..) => PushKind::Notice,
        }
    }
}

/// The kind of push an event would lead, if it can lead one.
pub fn kind(event: &StoredEvent) -> Option<PushKind> {
    Lead::of(event).map(Lead::kind)
}

/// The lead of a push standing for everything up to `position`, given `recent` as
/// [`with_lead`] builds it: the event at `position` when it is a message or a notice, else the
/// latest message.
pub fn of(recent: &[StoredEvent], position: Option<u64>) -> Option<Lead<'_>> {
    let at = recent.iter().rev().find(|e| Some(e.position) == position);
    at.and_then(Lead::of).or_else(|| {
        recent
            .iter()
            .rev()
            .find_map(|e| Lead::of(e).filter(|l| matches!(l, Lead::Message(..))))
    })
}

/// The recent transcript a push reads: the recent messages (oldest first, as the stores read
/// them) and, when the event at the push's position is a notice, that notice last.
pub fn with_lead(mut messages: Vec<StoredEvent>, at: Option<StoredEvent>) -> Vec<StoredEvent> {
    if let Some(notice) = at.filter(|e| matches!(e.event.body, EventBody::Notice(..))) {
        messages.push(notice);
    }
    messages
}
