//! A thread's timer fires, the user comes back, or a read empties the conversation: what
//! waited is sent, deferred, expired or cancelled, and a push that was shown is cleared.

use time::OffsetDateTime;

use crate::notify::Looking;
use crate::notify::quiet::Preferences;

use super::{Pending, Send, Thread, Timing, UserState, Wait, mark_sent};

/// Why a waiting push was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    UserReturned,
    AlreadyRead,
}

impl Cancel {
    pub fn describe(self) -> &'static str {
        match self {
            Cancel::UserReturned => "the user came back before it was due",
            Cancel::AlreadyRead => "the user read the conversation before it was due",
        }
    }
}

/// What firing a thread's timer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueStep {
    /// Nothing was waiting (or not yet due).
    Nothing,
    Expired {
        notification_id: String,
    },
    Cancelled {
        notification_id: String,
        why: Cancel,
    },
    /// Due inside pause or quiet hours: waits again.
    Held(Pending),
    Send(Send),
}

/// The thread's timer fired; `read` is the position the user has read through. A push whose
/// events are all read by then is dropped — judged by position, not by the unread count,
/// which counts messages only: a push led by a notice must still go when nothing is unread.
pub fn on_due(
    thread: &mut Thread,
    user: &mut UserState,
    looking: Looking,
    prefs: &Preferences,
    timing: Timing,
    read: u64,
    now: OffsetDateTime,
) -> DueStep {
    let Some(pending) = thread.pending.clone() else {
        return DueStep::Nothing;
    };
    if pending.due_at > now {
        return DueStep::Nothing;
    }
    let id = pending.notification_id.clone();
    if now >= pending.expires_at {
        thread.pending = None;
        return DueStep::Expired {
            notification_id: id,
        };
    }
    if looking.is_foreground() {
        thread.pending = None;
        return DueStep::Cancelled {
            notification_id: id,
            why: Cancel::UserReturned,
        };
    }
    if read >= pending.latest_position {
        thread.pending = None;
        return DueStep::Cancelled {
            notification_id: id,
            why: Cancel::AlreadyRead,
        };
    }
    if let Some(hold) = prefs.hold(now) {
        let held = Pending {
            due_at: hold.until,
            wait: Wait::Held(hold.reason),
            expires_at: hold.until + timing.ttl,
            ..pending
        };
        thread.pending = Some(held.clone());
        return DueStep::Held(held);
    }
    let send = Send {
        notification_id: id,
        first_position: pending.first_position,
        latest_position: pending.latest_position,
        count: pending.count,
        expires_at: pending.expires_at,
    };
    mark_sent(thread, user, &send, now);
    DueStep::Send(send)
}

/// The user came back: whatever waited is cancelled. Answers the cancelled notification.
pub fn on_foreground(thread: &mut Thread) -> Option<String> {
    thread.pending.take().map(|p| p.notification_id)
}

/// What a read did to a thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStep {
    /// The waiting push it cancelled.
    pub cancelled: Option<String>,
    /// A visible push was shown and is now read: send a silent read push (carrying the id of
    /// the notification shown).
    pub invalidate: Option<String>,
    /// The email digest it cancelled.
    pub digest_cancelled: Option<String>,
}

pub fn on_read(thread: &mut Thread, unread_after: u64) -> ReadStep {
    if unread_after > 0 {
        return ReadStep::default();
    }
    let cancelled = thread.pending.take().map(|p| p.notification_id);
    let invalidate = thread
        .shown_position
        .take()
        .and(thread.shown_notification.take());
    let digest_cancelled = thread.digest.take().map(|d| d.notification_id);
    ReadStep {
        cancelled,
        invalidate,
        digest_cancelled,
    }
}
