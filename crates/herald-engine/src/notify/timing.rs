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
//! An away period "has had a push" when the user's last visible push (in this app) is later
//! than the moment they went away; such a period skips the grace delay.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::app::Rules;
use crate::notify::Looking;
use crate::notify::quiet::{HoldReason, Preferences};

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
}

/// An email digest of a conversation, due when its messages have stayed unread long enough.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub notification_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// The first message the digest is about.
    pub first_position: u64,
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

/// A pushable message for a user who can get email: starts a digest unless one waits already
/// (it then covers this message too) or the user is looking. Answers the digest it started.
pub fn on_message_email(
    thread: &mut Thread,
    looking: Looking,
    email_delay: Duration,
    position: u64,
    new_id: String,
    now: OffsetDateTime,
) -> Option<Digest> {
    if looking.is_foreground() || thread.digest.is_some() {
        return None;
    }
    let digest = Digest {
        notification_id: new_id,
        due_at: now + email_delay,
        first_position: position,
    };
    thread.digest = Some(digest.clone());
    Some(digest)
}

/// What a due digest does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStep {
    Nothing,
    /// Everything was read meanwhile.
    Cancelled {
        notification_id: String,
    },
    /// Email what is still unread.
    Send(Digest),
}

pub fn on_digest_due(thread: &mut Thread, unread: u64, now: OffsetDateTime) -> DigestStep {
    match &thread.digest {
        Some(d) if d.due_at <= now => {
            let digest = thread.digest.take().expect("checked above");
            if unread == 0 {
                DigestStep::Cancelled {
                    notification_id: digest.notification_id,
                }
            } else {
                DigestStep::Send(digest)
            }
        }
        _ => DigestStep::Nothing,
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

/// What a new message did to a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageStep {
    /// The user is looking: no push.
    Foreground,
    /// Folded into the push already waiting.
    Folded {
        into: String,
    },
    /// A new push now waits.
    Waiting(Pending),
    Send(Send),
}

fn confirmed_away(user: &UserState, looking: Looking) -> bool {
    match (looking, user.last_push_at) {
        (Looking::Away { since: Some(since) }, Some(last)) => last >= since,
        // Away since before this node started: any push counts.
        (Looking::Away { since: None }, Some(_)) => true,
        _ => false,
    }
}

fn mark_sent(thread: &mut Thread, user: &mut UserState, send: &Send, now: OffsetDateTime) {
    thread.pending = None;
    thread.last_push_at = Some(now);
    thread.shown_position = Some(send.latest_position);
    thread.shown_notification = Some(send.notification_id.clone());
    user.last_push_at = Some(now);
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
        return MessageStep::Foreground;
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

pub fn on_due(
    thread: &mut Thread,
    user: &mut UserState,
    looking: Looking,
    prefs: &Preferences,
    timing: Timing,
    unread: u64,
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
    if unread == 0 {
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::notify::quiet::QuietHours;

    const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

    fn at(ms: i64) -> OffsetDateTime {
        T0 + Duration::milliseconds(ms)
    }

    fn timing() -> Timing {
        Timing {
            grace: Duration::seconds(5),
            coalesce: Duration::seconds(3),
            ttl: Duration::hours(1),
        }
    }

    fn away_since(ms: i64) -> Looking {
        Looking::Away {
            since: Some(at(ms)),
        }
    }

    fn no_prefs() -> Preferences {
        Preferences::default()
    }

    struct World {
        thread: Thread,
        user: UserState,
        ids: u32,
    }

    impl World {
        fn new() -> Self {
            World {
                thread: Thread::default(),
                user: UserState::default(),
                ids: 0,
            }
        }

        fn message(&mut self, looking: Looking, position: u64, now: OffsetDateTime) -> MessageStep {
            self.ids += 1;
            on_message(
                &mut self.thread,
                &mut self.user,
                looking,
                &no_prefs(),
                timing(),
                position,
                format!("n{}", self.ids),
                now,
            )
        }

        fn due(&mut self, looking: Looking, unread: u64, now: OffsetDateTime) -> DueStep {
            on_due(
                &mut self.thread,
                &mut self.user,
                looking,
                &no_prefs(),
                timing(),
                unread,
                now,
            )
        }
    }

    #[test]
    fn a_foreground_user_gets_no_push() {
        let mut w = World::new();
        assert_eq!(
            w.message(Looking::Foreground, 1, at(0)),
            MessageStep::Foreground
        );
        assert_eq!(w.thread, Thread::default());
    }

    #[test]
    fn the_first_message_of_an_away_period_waits_for_the_grace_delay_then_one_push_carries_the_latest()
     {
        let mut w = World::new();
        let step = w.message(away_since(0), 1, at(100));
        assert!(matches!(
            step,
            MessageStep::Waiting(Pending {
                wait: Wait::Grace,
                ..
            })
        ));
        assert_eq!(w.thread.due_at(), Some(at(5_100)));
        assert_eq!(
            w.message(away_since(0), 2, at(1_000)),
            MessageStep::Folded { into: "n1".into() }
        );
        assert_eq!(
            w.message(away_since(0), 3, at(2_000)),
            MessageStep::Folded { into: "n1".into() }
        );
        assert_eq!(
            w.due(away_since(0), 3, at(5_000)),
            DueStep::Nothing,
            "not yet due"
        );
        let DueStep::Send(send) = w.due(away_since(0), 3, at(5_100)) else {
            panic!("sends")
        };
        assert_eq!(
            (
                send.notification_id.as_str(),
                send.latest_position,
                send.count
            ),
            ("n1", 3, 3)
        );
        assert_eq!(w.thread.pending, None);
    }

    #[test]
    fn a_user_back_before_the_grace_delay_gets_nothing() {
        let mut w = World::new();
        w.message(away_since(0), 1, at(0));
        assert_eq!(on_foreground(&mut w.thread), Some("n1".into()));
        assert_eq!(w.due(Looking::Foreground, 1, at(6_000)), DueStep::Nothing);
        // A timer that fires while the user is looking also sends nothing.
        w.message(away_since(7_000), 2, at(7_000));
        assert_eq!(
            w.due(Looking::Foreground, 2, at(12_000)),
            DueStep::Cancelled {
                notification_id: "n2".into(),
                why: Cancel::UserReturned
            }
        );
    }

    #[test]
    fn a_grace_delay_of_zero_pushes_at_once() {
        let mut w = World::new();
        let zero = Timing {
            grace: Duration::ZERO,
            ..timing()
        };
        let step = on_message(
            &mut w.thread,
            &mut w.user,
            away_since(0),
            &no_prefs(),
            zero,
            1,
            "n1".into(),
            at(0),
        );
        assert!(matches!(step, MessageStep::Send(Send { count: 1, .. })));
    }

    #[test]
    fn after_the_first_push_later_messages_go_at_once_but_once_per_coalesce_window() {
        let mut w = World::new();
        w.message(away_since(0), 1, at(0));
        assert!(matches!(
            w.due(away_since(0), 1, at(5_000)),
            DueStep::Send(_)
        ));
        // 1 s after that push: inside the 3 s window → waits for the window's end.
        let step = w.message(away_since(0), 2, at(6_000));
        assert!(matches!(
            step,
            MessageStep::Waiting(Pending {
                wait: Wait::CoalesceWindow,
                ..
            })
        ));
        assert_eq!(w.thread.due_at(), Some(at(8_000)));
        assert_eq!(
            w.message(away_since(0), 3, at(7_000)),
            MessageStep::Folded { into: "n2".into() }
        );
        let DueStep::Send(send) = w.due(away_since(0), 2, at(8_000)) else {
            panic!("sends")
        };
        assert_eq!((send.latest_position, send.count), (3, 2));
        // Well after the window: at once.
        assert!(matches!(
            w.message(away_since(0), 4, at(20_000)),
            MessageStep::Send(_)
        ));
    }

    #[test]
    fn a_new_away_period_starts_with_the_grace_delay_again() {
        let mut w = World::new();
        w.message(away_since(0), 1, at(0));
        w.due(away_since(0), 1, at(5_000));
        // The user looked, and left again at 60 s.
        let step = w.message(away_since(60_000), 2, at(61_000));
        assert!(matches!(
            step,
            MessageStep::Waiting(Pending {
                wait: Wait::Grace,
                ..
            })
        ));
    }

    #[test]
    fn a_pending_push_past_its_ttl_is_expired_not_sent_late() {
        let mut w = World::new();
        w.message(away_since(0), 1, at(0));
        let late = at(0) + Duration::hours(2);
        assert_eq!(
            w.due(away_since(0), 1, late),
            DueStep::Expired {
                notification_id: "n1".into()
            }
        );
    }

    #[test]
    fn a_read_before_the_push_cancels_it_and_a_read_after_it_asks_for_a_read_push() {
        let mut w = World::new();
        w.message(away_since(0), 1, at(0));
        assert_eq!(
            on_read(&mut w.thread, 0),
            ReadStep {
                cancelled: Some("n1".into()),
                ..ReadStep::default()
            }
        );
        w.message(away_since(0), 2, at(10_000));
        w.due(away_since(0), 2, at(15_000));
        assert_eq!(
            on_read(&mut w.thread, 1),
            ReadStep::default(),
            "still unread: nothing to clear"
        );
        assert_eq!(
            on_read(&mut w.thread, 0),
            ReadStep {
                invalidate: Some("n2".into()),
                ..ReadStep::default()
            }
        );
        assert_eq!(
            on_read(&mut w.thread, 0),
            ReadStep::default(),
            "cleared once"
        );
    }

    #[test]
    fn a_push_due_inside_quiet_hours_is_deferred_to_their_end_not_dropped() {
        let prefs = Preferences {
            quiet_hours: Some(QuietHours {
                start: "09:00".into(),
                end: "12:00".into(),
                time_zone: "UTC".into(),
            }),
            ..Preferences::default()
        };
        let mut thread = Thread::default();
        let mut user = UserState::default();
        on_message(
            &mut thread,
            &mut user,
            away_since(0),
            &prefs,
            timing(),
            1,
            "n1".into(),
            at(0),
        );
        let DueStep::Held(held) = on_due(
            &mut thread,
            &mut user,
            away_since(0),
            &prefs,
            timing(),
            1,
            at(5_000),
        ) else {
            panic!("held")
        };
        assert_eq!(held.wait, Wait::Held(HoldReason::QuietHours));
        assert_eq!(held.due_at, datetime!(2026-11-23 12:00 UTC));
        assert_eq!(
            held.expires_at,
            datetime!(2026-11-23 13:00 UTC),
            "the TTL counts from the end of quiet hours"
        );
        let noon = datetime!(2026-11-23 12:00 UTC);
        assert!(matches!(
            on_due(
                &mut thread,
                &mut user,
                away_since(0),
                &prefs,
                timing(),
                1,
                noon
            ),
            DueStep::Send(_)
        ));
    }

    #[test]
    fn an_email_digest_waits_the_email_delay_covers_later_messages_and_a_read_cancels_it() {
        let delay = Duration::minutes(10);
        let mut thread = Thread::default();
        assert_eq!(
            on_message_email(
                &mut thread,
                Looking::Foreground,
                delay,
                1,
                "d0".into(),
                at(0)
            ),
            None,
            "looking: no email"
        );
        let digest =
            on_message_email(&mut thread, away_since(0), delay, 2, "d1".into(), at(0)).unwrap();
        assert_eq!(digest.due_at, at(600_000));
        assert_eq!(
            on_message_email(&mut thread, away_since(0), delay, 3, "d2".into(), at(1_000)),
            None,
            "one digest per conversation"
        );
        assert_eq!(thread.due_at(), Some(at(600_000)));
        assert_eq!(
            on_digest_due(&mut thread, 2, at(599_999)),
            DigestStep::Nothing
        );
        assert_eq!(
            on_digest_due(&mut thread, 2, at(600_000)),
            DigestStep::Send(digest)
        );
        on_message_email(
            &mut thread,
            away_since(0),
            delay,
            4,
            "d3".into(),
            at(700_000),
        );
        assert_eq!(on_read(&mut thread, 0).digest_cancelled, Some("d3".into()));
        assert_eq!(thread.digest, None);
    }

    #[test]
    fn a_digest_whose_messages_were_read_is_cancelled_when_due() {
        let mut thread = Thread::default();
        on_message_email(
            &mut thread,
            away_since(0),
            Duration::minutes(10),
            1,
            "d1".into(),
            at(0),
        );
        assert_eq!(
            on_digest_due(&mut thread, 0, at(600_000)),
            DigestStep::Cancelled {
                notification_id: "d1".into()
            }
        );
    }

    #[test]
    fn a_deferred_push_that_was_read_meanwhile_is_dropped_as_read() {
        let mut w = World::new();
        w.message(away_since(0), 1, at(0));
        assert_eq!(
            w.due(away_since(0), 0, at(5_000)),
            DueStep::Cancelled {
                notification_id: "n1".into(),
                why: Cancel::AlreadyRead
            }
        );
    }
}
