//! Failing open (SPEC §5.1): a message suppressed because a live session was looking is
//! remembered for a while, because that session may turn out to have been gone — dropped and
//! never back within the reconnect grace, or silent until its heartbeats ran out. When the
//! user is then declared away since that moment, every suppression made since is decided
//! again as if the user had been away all along: the grace delay runs from the moment they
//! went, not from when Herald noticed.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{Pending, Thread, Timing, UserState, Wait, confirmed_away};
use crate::notify::Looking;

/// Most suppressions a thread remembers; the oldest go first. A user can read at most a
/// screenful in a few seconds, and a burst beyond this is still told by the one push that
/// carries the latest message.
pub const LOOKED_CAP: usize = 32;

/// How long a suppression may still be decided again: the default heartbeat deadline (60 s)
/// plus one heartbeat (25 s) plus slack. A session declared gone later than this was looking.
pub const RECHECK_WINDOW: Duration = Duration::seconds(95);

/// A message that was not pushed because a live session was looking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Looked {
    /// The decision record of the suppression, which a new decision continues.
    pub notification_id: String,
    pub position: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Remembers a suppression made at `now`, forgetting those too old to be decided again.
pub(super) fn remember(
    thread: &mut Thread,
    notification_id: String,
    position: u64,
    now: OffsetDateTime,
) {
    thread.looked.retain(|l| now - l.at <= RECHECK_WINDOW);
    if thread.looked.len() >= LOOKED_CAP {
        thread.looked.remove(0);
    }
    thread.looked.push(Looked {
        notification_id,
        position,
        at: now,
    });
}

/// What deciding a suppression again did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwayStep {
    /// It now waits, under the suppression's own id.
    Waiting(Pending),
    /// Folded into the push already waiting.
    Folded { into: String },
}

/// The user is away since `since`, though a session seemed to be looking after it: each
/// remembered suppression made since then (and inside the recheck window) is decided again, in
/// transcript order — the first waits for the grace delay counted from `since` (or the
/// coalesce window, if this away period already had a push), later ones fold into it. Every
/// remembered suppression is consumed, decided again or not, so none is decided twice.
/// Answers each one decided again with what was decided.
pub fn on_away(
    thread: &mut Thread,
    user: &UserState,
    since: OffsetDateTime,
    timing: Timing,
    now: OffsetDateTime,
) -> Vec<(Looked, AwayStep)> {
    let mut again: Vec<Looked> = std::mem::take(&mut thread.looked)
        .into_iter()
        .filter(|l| l.at >= since && now - l.at <= RECHECK_WINDOW)
        .collect();
    again.sort_by_key(|l| l.position);
    again
        .into_iter()
        .map(|looked| {
            let step = redecide(thread, user, since, timing, &looked, now);
            (looked, step)
        })
        .collect()
}

fn redecide(
    thread: &mut Thread,
    user: &UserState,
    since: OffsetDateTime,
    timing: Timing,
    looked: &Looked,
    now: OffsetDateTime,
) -> AwayStep {
    let expires_at = looked.at + timing.ttl;
    if let Some(pending) = &mut thread.pending {
        pending.first_position = pending.first_position.min(looked.position);
        pending.latest_position = pending.latest_position.max(looked.position);
        pending.count += 1;
        pending.expires_at = pending.expires_at.max(expires_at);
        return AwayStep::Folded {
            into: pending.notification_id.clone(),
        };
    }
    let (due_at, wait) = if confirmed_away(user, Looking::Away { since: Some(since) }) {
        let window_end = thread
            .last_push_at
            .map_or(now, |last| last + timing.coalesce);
        (window_end, Wait::CoalesceWindow)
    } else {
        (since + timing.grace, Wait::Grace)
    };
    // Due already: the next timer round sends it, through the same checks (quiet hours, read
    // meanwhile, TTL) as any push that waited.
    let pending = Pending {
        notification_id: looked.notification_id.clone(),
        due_at: due_at.max(now),
        wait,
        first_position: looked.position,
        latest_position: looked.position,
        count: 1,
        expires_at,
    };
    thread.pending = Some(pending.clone());
    AwayStep::Waiting(pending)
}
