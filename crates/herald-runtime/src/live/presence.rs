//! Per-user presence: is anyone looking? Pure state, driven by explicit timestamps so it can be
//! tested without waiting.
//!
//! A user is **foreground** while at least one session is foreground, or while a foreground
//! session that dropped abnormally is inside its reconnect grace. Otherwise the user is
//! **away**, since the moment the last foreground session went: a `background` frame, a clean
//! close, or — after an abnormal drop — the drop itself, once the grace has run out without a
//! reconnect. Missed heartbeats count as dead, not as a drop: the user fails open at once, away
//! since the session was last heard from.

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::live::protocol::SessionState;

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client closed the socket, or the server shut it.
    Clean,
    /// The connection broke (reset, protocol error): the reconnect grace applies.
    Dropped,
    /// The client stopped sending heartbeats: treated as gone at once, and as gone since it
    /// was last heard from.
    Dead { last_heard: OffsetDateTime },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Foreground,
    Away,
}

/// What the notification engine asks: is the user looking, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Presence {
    pub state: PresenceState,
    /// When the current state began; `None` when the user has not been seen since start.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// While a dropped foreground session may still reconnect: when that chance ends.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub grace_until: Option<OffsetDateTime>,
    pub sessions: usize,
}

#[derive(Debug, Default)]
pub struct UserPresence {
    sessions: HashMap<u64, SessionState>,
    foreground_since: Option<OffsetDateTime>,
    away_since: Option<OffsetDateTime>,
    /// An abnormal drop of a foreground session: (when it dropped, grace end).
    grace: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl UserPresence {
    fn any_foreground(&self) -> bool {
        self.sessions
            .values()
            .any(|s| *s == SessionState::Foreground)
    }

    /// Settles an expired grace into an away period that began at the drop.
    fn settle(&mut self, now: OffsetDateTime) {
        if let Some((dropped_at, until)) = self.grace
            && now >= until
        {
            self.grace = None;
            if !self.any_foreground() {
                self.foreground_since = None;
                self.away_since = Some(dropped_at);
            }
        }
    }

    fn became_foreground(&mut self, now: OffsetDateTime) {
        if self.foreground_since.is_none() {
            self.foreground_since = Some(now);
        }
        self.away_since = None;
        self.grace = None;
    }

    fn maybe_away(&mut self, now: OffsetDateTime) {
        if !self.any_foreground() && self.grace.is_none() && self.foreground_since.is_some() {
            self.foreground_since = None;
            self.away_since = Some(now);
        }
    }

    pub fn connect(&mut self, session: u64, state: SessionState, now: OffsetDateTime) {
        self.settle(now);
        self.sessions.insert(session, state);
        if state == SessionState::Foreground {
            self.became_foreground(now);
        } else if self.away_since.is_none() && self.foreground_since.is_none() {
            self.away_since = Some(now);
        }
    }

    pub fn set_state(&mut self, session: u64, state: SessionState, now: OffsetDateTime) {
        self.settle(now);
        if let Some(s) = self.sessions.get_mut(&session) {
            *s = state;
        }
        match state {
            SessionState::Foreground => self.became_foreground(now),
            SessionState::Background => self.maybe_away(now),
        }
    }

    pub fn disconnect(
        &mut self,
        session: u64,
        ending: Ending,
        grace: time::Duration,
        now: OffsetDateTime,
    ) {
        self.settle(now);
        let Some(state) = self.sessions.remove(&session) else {
            return;
        };
        let went = match ending {
            Ending::Dead { last_heard } => last_heard.min(now),
            Ending::Clean | Ending::Dropped => now,
        };
        if state == SessionState::Foreground
            && ending == Ending::Dropped
            && !self.any_foreground()
            && !grace.is_zero()
        {
            self.grace = Some((now, now + grace));
            return;
        }
        self.maybe_away(went);
        if self.away_since.is_none() && self.foreground_since.is_none() {
            self.away_since = Some(went);
        }
    }

    pub fn view(&mut self, now: OffsetDateTime) -> Presence {
        self.settle(now);
        let foreground = self.any_foreground() || self.grace.is_some();
        Presence {
            state: if foreground {
                PresenceState::Foreground
            } else {
                PresenceState::Away
            },
            since: if foreground {
                self.foreground_since
            } else {
                self.away_since
            },
            grace_until: self.grace.map(|(_, until)| until),
            sessions: self.sessions.len(),
        }
    }

    /// Nothing left worth remembering: no sessions, no grace, away for longer than `keep`.
    pub fn forgettable(&mut self, now: OffsetDateTime, keep: time::Duration) -> bool {
        self.settle(now);
        self.sessions.is_empty()
            && self.grace.is_none()
            && self.away_since.is_none_or(|since| now - since > keep)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);
    const GRACE: Duration = Duration::seconds(10);

    fn s(n: i64) -> OffsetDateTime {
        T0 + Duration::seconds(n)
    }

    #[test]
    fn a_foreground_session_makes_the_user_foreground() {
        let mut p = UserPresence::default();
        p.connect(1, SessionState::Foreground, s(0));
        assert_eq!(p.view(s(1)).state, PresenceState::Foreground);
        assert_eq!(p.view(s(1)).since, Some(s(0)));
    }

    #[test]
    fn only_background_sessions_mean_away() {
        let mut p = UserPresence::default();
        p.connect(1, SessionState::Foreground, s(0));
        p.set_state(1, SessionState::Background, s(5));
        assert_eq!(
            p.view(s(6)),
            Presence {
                state: PresenceState::Away,
                since: Some(s(5)),
                grace_until: None,
                sessions: 1
            }
        );
    }

    #[test]
    fn a_dropped_connection_stays_present_for_the_reconnect_grace() {
        let mut p = UserPresence::default();
        p.connect(1, SessionState::Foreground, s(0));
        p.disconnect(1, Ending::Dropped, GRACE, s(20));
        assert_eq!(p.view(s(25)).state, PresenceState::Foreground);
        assert_eq!(p.view(s(25)).grace_until, Some(s(30)));
        // No reconnect: away since the drop, not since the end of the grace.
        assert_eq!(
            p.view(s(31)),
            Presence {
                state: PresenceState::Away,
                since: Some(s(20)),
                grace_until: None,
                sessions: 0
            }
        );
    }

    #[test]
    fn a_quick_reconnect_keeps_the_user_continuously_present() {
        let mut p = UserPresence::default();
        p.connect(1, SessionState::Foreground, s(0));
        p.disconnect(1, Ending::Dropped, GRACE, s(20));
        p.connect(2, SessionState::Foreground, s(24));
        let view = p.view(s(40));
        assert_eq!(view.state, PresenceState::Foreground);
        assert_eq!(view.since, Some(s(0)));
    }

    #[test]
    fn missed_heartbeats_fail_open_at_once_away_since_last_heard() {
        let mut p = UserPresence::default();
        p.connect(1, SessionState::Foreground, s(0));
        let dead = Ending::Dead { last_heard: s(5) };
        p.disconnect(1, dead, GRACE, s(60));
        assert_eq!(p.view(s(60)).state, PresenceState::Away);
        assert_eq!(p.view(s(60)).since, Some(s(5)));
    }

    #[test]
    fn a_clean_close_is_away_at_once_but_another_foreground_session_keeps_presence() {
        let mut p = UserPresence::default();
        p.connect(1, SessionState::Foreground, s(0));
        p.connect(2, SessionState::Foreground, s(1));
        p.disconnect(1, Ending::Clean, GRACE, s(2));
        assert_eq!(p.view(s(3)).state, PresenceState::Foreground);
        p.disconnect(2, Ending::Clean, GRACE, s(4));
        assert_eq!(
            p.view(s(4)),
            Presence {
                state: PresenceState::Away,
                since: Some(s(4)),
                grace_until: None,
                sessions: 0
            }
        );
    }
}
