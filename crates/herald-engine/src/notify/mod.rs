//! The notification engine's decisions (SPEC §3), as pure functions over explicit state and an
//! explicit `now`. [`plan`] decides whole engine steps from the rule modules (`who`, `timing`,
//! `quiet`, `calls`, `content`, `lead`, `compose`, `record`); the server's engine task loads
//! what a plan reads, calls it once, and commits what it returns.

pub mod calls;
pub mod compose;
pub mod content;
pub mod lead;
pub mod left;
pub mod plan;
pub mod quiet;
pub mod record;
pub mod store;
pub mod timing;
pub mod who;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::EventBody;

/// Whether an appended event waits in the outbox for the engine. Membership changes decide
/// nothing, except a participant someone else added (an invitation, a forward): they may be
/// told they were added. Stores queue by this rule, in the append's transaction.
pub fn evaluates(body: &EventBody) -> bool {
    match body {
        EventBody::ParticipantJoined(j) => j.by.is_some(),
        EventBody::ParticipantLeft(_) => false,
        _ => true,
    }
}

/// Whether the user is looking, as the live sessions tell (see the server's presence view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Looking {
    Foreground,
    /// Away since the given time; `None` when not seen since this node started.
    Away {
        #[serde(with = "time::serde::rfc3339::option", default)]
        since: Option<OffsetDateTime>,
    },
}

impl Looking {
    pub fn is_foreground(self) -> bool {
        self == Looking::Foreground
    }
}

/// Where new notification and delivery ids come from. The server mints unique, time-ordered
/// ids; tests count, so that what a plan decides can be compared value for value.
pub trait NewIds {
    /// A new notification (decision record) id.
    fn notification(&mut self) -> String;
    /// A new delivery id.
    fn delivery(&mut self) -> String;
}
