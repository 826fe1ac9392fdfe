//! When a push goes out (SPEC §3.3), per (user, app, conversation) thread:
//!
//! 1. A user who is looking (foreground) gets the event over the live session: no push.
//! 2. The first push of an away period waits `grace_delay`; if the user comes back meanwhile
//!    nothing is sent; when it fires, one push carries the latest content.
//! 3. Later in the same away period pushes go at once, but at most one per conversation per
//!    `coalesce_window`: messages inside the window fold into the waiting push, which then
//!    carries the latest message and how many it stands for.
//! 4. A push due while the user is paused or inside quiet hours waits for their end.
//! 5. A read that leaves nothing unread cancels what waits, and if a visible push was shown,
//!    asks for a silent read push to clear it.
//!
//! Split by seam: `message` (a new message: rules 1–4), `due` (a timer fires, the user
//! comes back, a read: rules 2, 4, 5), `digest` (the email digest of SPEC §3.3 rule 6) and
//! `looked` (suppressions decided again when the session that was looking turns out gone,
//! SPEC §5.1).
//!
//! An away period "has had a push" when the user's last visible push (in this app) is later
//! than the moment they went away; such a period skips the grace delay.

mod digest;
mod due;
mod looked;
mod message;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::app::Rules;
use crate::notify::quiet::HoldReason;

pub use digest::{Digest, DigestStep, on_digest_due, on_message_email};
pub use due::{Cancel, DueStep, ReadStep, on_due, on_foreground, on_read};
pub use looked::{AwayStep, LOOKED_CAP, Looked, RECHECK_WINDOW, on_away};
use message::confirmed_away;
pub use message::{MessageStep, on_message};

/// Why a pending push waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// The grace delay at the start of an away period.
    Grace,
    /// The coalesce window after the previous push in this conversation.
    CoalesceWindow,
    /// Pause or quiet hours.
    Held(HoldReason),
}

impl Wait {
    pub fn describe(self) -> &'static str {
        match self {
            Wait::Grace => "waiting for the grace delay: the user just went away",
            Wait::CoalesceWindow => {
                "waiting for the coalesce window: a push for this conversation went out moments ago"
            }
            Wait::Held(reason) => reason.describe(),
        }
    }
}

/// A push waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub notification_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    pub wait: Wait,
    pub first_position: u64,
    pub latest_position: u64,
    /// How many messages it stands for.
    pub count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Engine state per (user, app, conversation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// When the last visible push for this conversation went out.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_push_at: Option<OffsetDateTime>,
    /// The latest position a visible push showed, until the conversation is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_position: Option<u64>,
    /// The collapse key of the push shown, so the read push replaces exactly it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_notification: Option<String>,
    /// An email digest waiting for `email_delay` (SPEC §3.3 rule 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Recent suppressions made because a live session was looking, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub looked: Vec<Looked>,
}

impl Thread {
    /// The earliest timer of the thread: a pending push or an email digest.
    pub fn due_at(&self) -> Option<OffsetDateTime> {
        let push = self.pending.as_ref().map(|p| p.due_at);
        let digest = self.digest.as_ref().map(|d| d.due_at);
        match (push, digest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Engine state per (user, app).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    /// When the last visible push went out, in any conversation.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_push_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub missed_calls: u64,
}

/// The timing parameters of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub grace: Duration,
    pub coalesce: Duration,
    pub ttl: Duration,
}

impl Timing {
    pub fn of(rules: &Rules) -> Timing {
        Timing {
            grace: Duration::milliseconds(rules.grace_delay_ms as i64),
            coalesce: Duration::milliseconds(rules.coalesce_window_ms as i64),
            ttl: Duration::seconds(rules.chat_ttl_s as i64),
        }
    }
}

/// A push to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    pub notification_id: String,
    pub first_position: u64,
    pub latest_position: u64,
    pub count: u32,
    pub expires_at: OffsetDateTime,
}

/// A push went out: the thread shows it, and the away period has had its push.
fn mark_sent(thread: &mut Thread, user: &mut UserState, send: &Send, now: OffsetDateTime) {
    thread.pending = None;
    thread.last_push_at = Some(now);
    thread.shown_position = Some(send.latest_position);
    thread.shown_notification = Some(send.notification_id.clone());
    user.last_push_at = Some(now);
}
