use time::macros::datetime;

use super::*;
use crate::notify::Looking;
use crate::notify::quiet::{Preferences, QuietHours};

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

    /// The timer fires; the user has read through position `read`.
    fn due(&mut self, looking: Looking, read: u64, now: OffsetDateTime) -> DueStep {
        on_due(
            &mut self.thread,
            &mut self.user,
            looking,
            &no_prefs(),
            timing(),
            read,
            now,
        )
    }
}

#[test]
fn a_foreground_user_gets_no_push() {
    let mut w = World::new();
    assert_eq!(
        w.message(Looking::Foreground, 1, at(0)),
        MessageStep::Foreground {
            notification_id: "n1".into()
        }
    );
    assert_eq!(w.thread.pending, None);
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
        w.due(away_since(0), 0, at(5_000)),
        DueStep::Nothing,
        "not yet due"
    );
    let DueStep::Send(send) = w.due(away_since(0), 0, at(5_100)) else {
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
    assert_eq!(w.due(Looking::Foreground, 0, at(6_000)), DueStep::Nothing);
    // A timer that fires while the user is looking also sends nothing.
    w.message(away_since(7_000), 2, at(7_000));
    assert_eq!(
        w.due(Looking::Foreground, 0, at(12_000)),
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
        w.due(away_since(0), 0, at(5_000)),
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
    let DueStep::Send(send) = w.due(away_since(0), 0, at(8_000)) else {
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
    w.due(away_since(0), 0, at(5_000));
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
        w.due(away_since(0), 0, late),
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
    w.due(away_since(0), 0, at(15_000));
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
        0,
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
            0,
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
        w.due(away_since(0), 1, at(5_000)),
        DueStep::Cancelled {
            notification_id: "n1".into(),
            why: Cancel::AlreadyRead
        }
    );
}

#[test]
fn a_notice_waiting_with_nothing_unread_still_goes_until_it_is_read() {
    // A notice counts for no unread count: only the read position says it was seen.
    let mut w = World::new();
    w.message(away_since(0), 4, at(0));
    assert!(matches!(
        w.due(away_since(0), 3, at(5_000)),
        DueStep::Send(_)
    ));
    w.message(away_since(0), 5, at(6_000));
    assert!(matches!(
        w.due(away_since(0), 5, at(9_000)),
        DueStep::Cancelled {
            why: Cancel::AlreadyRead,
            ..
        }
    ));
}
