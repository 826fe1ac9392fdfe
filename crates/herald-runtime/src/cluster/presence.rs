//! One user's presence over several nodes: looking if any node says so.

use crate::live::presence::{Presence, PresenceState};

/// The cluster's view from two nodes' views: foreground if either is (since the earlier
/// foreground start), else away since the later of the two (the cluster's last session went
/// then). Sessions add up; a reconnect grace is the longer one.
pub fn merge(a: Presence, b: Presence) -> Presence {
    use PresenceState::{Away, Foreground};
    let since = match (a.state, b.state) {
        (Foreground, Foreground) => a.since.min(b.since).or(a.since).or(b.since),
        (Foreground, Away) => a.since,
        (Away, Foreground) => b.since,
        (Away, Away) => a.since.max(b.since),
    };
    let state = if a.state == Foreground || b.state == Foreground {
        Foreground
    } else {
        Away
    };
    Presence {
        state,
        since,
        grace_until: a.grace_until.max(b.grace_until),
        sessions: a.sessions + b.sessions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn at(state: PresenceState, since: Option<time::OffsetDateTime>) -> Presence {
        Presence {
            state,
            since,
            grace_until: None,
            sessions: usize::from(state == PresenceState::Foreground),
        }
    }

    #[test]
    fn a_user_looking_on_any_node_is_looking() {
        let t1 = datetime!(2026-01-01 10:00 UTC);
        let t2 = datetime!(2026-01-01 10:05 UTC);
        let merged = merge(
            at(PresenceState::Away, Some(t2)),
            at(PresenceState::Foreground, Some(t1)),
        );
        assert_eq!(merged.state, PresenceState::Foreground);
        assert_eq!(merged.since, Some(t1));
        assert_eq!(merged.sessions, 1);
    }

    #[test]
    fn away_everywhere_is_away_since_the_last_node_saw_them_go() {
        let t1 = datetime!(2026-01-01 10:00 UTC);
        let t2 = datetime!(2026-01-01 10:05 UTC);
        let merged = merge(
            at(PresenceState::Away, Some(t1)),
            at(PresenceState::Away, Some(t2)),
        );
        assert_eq!(merged.state, PresenceState::Away);
        assert_eq!(merged.since, Some(t2));
        let unknown = merge(
            at(PresenceState::Away, None),
            at(PresenceState::Away, Some(t1)),
        );
        assert_eq!(
            unknown.since,
            Some(t1),
            "a node that never saw them adds nothing"
        );
    }

    #[test]
    fn foreground_on_two_nodes_is_since_the_earlier() {
        let t1 = datetime!(2026-01-01 10:00 UTC);
        let t2 = datetime!(2026-01-01 10:05 UTC);
        let merged = merge(
            at(PresenceState::Foreground, Some(t2)),
            at(PresenceState::Foreground, Some(t1)),
        );
        assert_eq!(merged.since, Some(t1));
        assert_eq!(merged.sessions, 2);
    }
}
