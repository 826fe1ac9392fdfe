//! The resume cursor: what a live session sends, in order, with no gap and no duplicate —
//! independent of the transport (the WebSocket session of SPEC §2.4 and the CometD session of
//! §2.6 both drive one).
//!
//! The cursor keeps, per conversation, the last position it emitted. A live event at
//! `last + 1` is emitted; at or below `last` it is a duplicate and skipped; beyond `last + 1`
//! the gap is read from the store first. A `resume` sets the position the client has seen and
//! emits the catch-up from the store, page by page, then `caught_up`. What makes this
//! race-free is the order the transport keeps: it registers with the hub *before* the first
//! resume, so every event is in the store read, in the hub's queue, or both, and the cursor
//! removes the overlap. Live items are held until the client's first frame ([`Cursor::hold`],
//! [`Cursor::release`]), so a client that opens with `resume` gets its catch-up first.
//!
//! The transport supplies a [`Sink`] (the socket, a long-poll's queue) and a [`Reader`] (the
//! store and the tenant); the cursor decides what to emit and which store reads to do. Idle,
//! it is an empty map and an empty queue: a few words.

use std::collections::{HashMap, VecDeque};

use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_engine::store::{Store, StoreError};

use crate::live::hub::{LiveEvent, Outbound};

/// One thing for the transport to send, in the order the cursor emits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// An event of a conversation; `json` is the stored event, serialised.
    Event {
        conversation: &'a ConversationId,
        position: u64,
        json: &'a str,
    },
    /// A changed unread count: the hub's `unread` frame, ready to send.
    Unread(&'a str),
    /// Every stored event after the resumed position has been emitted; live events follow.
    CaughtUp {
        conversation: &'a ConversationId,
        position: u64,
    },
}

/// The transport is gone; the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Where the cursor's items go.
pub trait Sink: Send {
    /// Sends one item. An error ends the cursor's work at once.
    fn emit(&mut self, item: Item<'_>) -> impl Future<Output = Result<(), Gone>> + Send;
}

/// Why a resume or a live event stopped short.
#[derive(Debug)]
pub enum Stopped {
    /// The sink failed.
    Gone,
    /// The store could not be read. Nothing past what was emitted is assumed sent: the next
    /// live event of the conversation fills the gap again, and a resume starts over.
    Store(StoreError),
    /// A resume of a conversation the user is not a participant of.
    NotAParticipant,
}

impl From<Gone> for Stopped {
    fn from(_: Gone) -> Self {
        Stopped::Gone
    }
}

impl From<StoreError> for Stopped {
    fn from(e: StoreError) -> Self {
        Stopped::Store(e)
    }
}

/// What the cursor reads from: the store, the session's tenant and the page size
/// (`limits.max_page_events`).
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub store: &'a dyn Store,
    pub tenant: &'a TenantId,
    pub page: usize,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Cursor {
    /// Per conversation, the last position emitted.
    sent: HashMap<ConversationId, u64>,
    /// Live items held until the client's first frame; `None` once released.
    held: Option<VecDeque<Outbound>>,
}

impl Default for Cursor {
    fn default() -> Self {
        Self::new()
    }
}

impl Cursor {
    /// A cursor that holds live items until [`Cursor::release`].
    pub fn new() -> Cursor {
        Cursor {
            sent: HashMap::new(),
            held: Some(VecDeque::new()),
        }
    }

    /// Keeps a live item while the cursor holds them; hands it back once released (pass it
    /// to [`Cursor::live`]).
    pub fn hold(&mut self, outbound: Outbound) -> Option<Outbound> {
        match &mut self.held {
            Some(held) => {
                held.push_back(outbound);
                None
            }
            None => Some(outbound),
        }
    }

    /// Call after handling the client's first frame: answers the items held since
    /// connecting, in order (pass each to [`Cursor::live`]); from now on nothing is held.
    /// Later calls answer nothing.
    pub fn release(&mut self) -> VecDeque<Outbound> {
        self.held.take().unwrap_or_default()
    }

    /// The last position emitted for a conversation.
    pub fn position(&self, conversation: &ConversationId) -> Option<u64> {
        self.sent.get(conversation).copied()
    }

    /// Emits a live item from the hub: an unread change as it is; an event unless it was
    /// already emitted, after the stored events missing before it.
    pub async fn live<S: Sink>(
        &mut self,
        reader: Reader<'_>,
        outbound: &Outbound,
        sink: &mut S,
    ) -> Result<(), Stopped> {
        match outbound {
            Outbound::Event(event) => self.event(reader, event, sink).await,
            Outbound::Unread(frame) => Ok(sink.emit(Item::Unread(frame)).await?),
        }
    }

    async fn event<S: Sink>(
        &mut self,
        reader: Reader<'_>,
        event: &LiveEvent,
        sink: &mut S,
    ) -> Result<(), Stopped> {
        let conversation = &event.conversation_id;
        if let Some(last) = self.position(conversation) {
            if event.position <= last {
                return Ok(());
            }
            self.fill(reader, conversation, event.position - 1, sink)
                .await?;
        }
        let item = Item::Event {
            conversation,
            position: event.position,
            json: &event.json,
        };
        sink.emit(item).await?;
        self.sent.insert(conversation.clone(), event.position);
        Ok(())
    }

    /// A client's `resume` of one conversation after the position it has seen: checks that
    /// `user` takes part in it, emits every stored event after `after`, then `caught_up`.
    pub async fn resume<S: Sink>(
        &mut self,
        reader: Reader<'_>,
        user: &UserId,
        conversation: ConversationId,
        after: u64,
        sink: &mut S,
    ) -> Result<(), Stopped> {
        let member = reader
            .store
            .membership(reader.tenant, &conversation, user)
            .await?;
        if member.is_none() {
            return Err(Stopped::NotAParticipant);
        }
        self.sent.insert(conversation.clone(), after);
        self.fill(reader, &conversation, u64::MAX, sink).await?;
        let position = self.sent[&conversation];
        sink.emit(Item::CaughtUp {
            conversation: &conversation,
            position,
        })
        .await?;
        Ok(())
    }

    /// Emits the stored events after the conversation's position, up to `until` inclusive,
    /// a page at a time. The conversation has a position.
    async fn fill<S: Sink>(
        &mut self,
        reader: Reader<'_>,
        conversation: &ConversationId,
        until: u64,
        sink: &mut S,
    ) -> Result<(), Stopped> {
        loop {
            let after = self.sent[conversation];
            if after >= until {
                return Ok(());
            }
            let wanted = usize::try_from(until - after).unwrap_or(usize::MAX);
            let limit = reader.page.max(1).min(wanted);
            let events = reader
                .store
                .events_after(reader.tenant, conversation, after, limit)
                .await?;
            let done = events.len() < limit;
            for event in events {
                let json = event.to_json().to_string();
                let item = Item::Event {
                    conversation,
                    position: event.position,
                    json: &json,
                };
                sink.emit(item).await?;
                self.sent.insert(conversation.clone(), event.position);
            }
            if done {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
#[path = "cursor_tests.rs"]
mod tests;
