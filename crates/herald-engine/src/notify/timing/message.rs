//! A new message (SPEC §3.3 rules 1–4): no push while looking; the first push of an away
//! period waits the grace delay, later ones the coalesce window; what arrives meanwhile folds
//! into the waiting push; a push due inside pause or quiet hours waits for their end.

use time::OffsetDateTime;

use crate::notify::Looking;
use crate::notify::quiet::Preferences;

use super::{Pending, Send, Thread, Timing, UserState, Wait, looked, mark_sent};

/// What a new message did to a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageStep {
    /// The user is looking: no push. The suppression is remembered under this id, to be
    /// decided again should the session that was looking turn out gone.
    Foreground {
        notification_id: String,
    },
    /// Folded into the push already waiting.
    Folded {
        into: String,
    },
    /// A new push now waits.
    Waiting(Pending),
    Send(Send),
}

pub(super) fn confirmed_away(user: &UserState, looking: Looking) -> bool {
    match (looking, user.last_push_at) {
        (Looking::Away { since: Some(since) }, Some(last)) => last >= since,
        // Away since before this node started: any push counts.
        (Looking::Away { since: None }, Some(_)) => true,
        _ => false,
    }
}

/// A pushable message at `position` for a user who passed the who-rules. `new_id` names the
/// notification if a new one starts.
#[expect(
    clippy::too_many_arguments,
    reason = "each input is a distinct part of the decision; a struct would only rename them"
)]
pub fn on_message(
    thread: &mut Thread,
    user: &mut UserState,
    looking: Looking,
    prefs: &Preferences,
    timing: Timing,
    position: u64,
    new_id: String,
    now: OffsetDateTime,
) -> MessageStep {
    if looking.is_foreground() {
        looked::remember(thread, new_id.clone(), position, now);
        return MessageStep::Foreground {
            notification_id: new_id,
        };
    }
    if let Some(pending) = &mut thread.pending {
        pending.latest_position = position;
        pending.count += 1;
        pending.expires_at = now + timing.ttl;
        return MessageStep::Folded {
            into: pending.notification_id.clone(),
        };
    }
    let (due_at, wait) = if !confirmed_away(user, looking) {
        (now + timing.grace, Wait::Grace)
    } else {
        let window_end = thread
            .last_push_at
            .map_or(now, |last| last + timing.coalesce);
        (window_end.max(now), Wait::CoalesceWindow)
    };
    let mut pending = Pending {
        notification_id: new_id,
        due_at,
        wait,
        first_position: position,
        latest_position: position,
        count: 1,
        expires_at: now + timing.ttl,
    };
    if due_at > now {
        thread.pending = Some(pending.clone());
        return MessageStep::Waiting(pending);
    }
    if let Some(hold) = prefs.hold(now) {
        pending.due_at = hold.until;
        pending.wait = Wait::Held(hold.reason);
        pending.expires_at = hold.until + timing.ttl;
        thread.pending = Some(pending.clone());
        return MessageStep::Waiting(pending);
    }
    let send = Send {
        notification_id: pending.notification_id,
        first_position: position,
        latest_position: position,
        count: 1,
        expires_at: pending.expires_at,
    };
    mark_sent(thread, user, &send, now);
    MessageStep::Send(send)
}
