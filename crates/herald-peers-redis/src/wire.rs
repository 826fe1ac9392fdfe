//! What goes through Redis: the key names, the bus messages, and one node's view of a user's
//! presence as a hash field.

use herald_engine::ids::{TenantId, UserId};
use herald_runtime::live::presence::{Presence, PresenceState};
use herald_runtime::live::routed::Routed;
use herald_runtime::notify::Signal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The names one cluster uses, all under its prefix (clusters sharing a Redis pick different
/// prefixes).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// The channel every node publishes to and listens on.
    pub fn bus(&self) -> String {
        format!("{}:bus", self.prefix)
    }

    /// The live nodes: a sorted set of instances scored by when their liveness runs out.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// A user's presence: a hash of instance → that node's view. Tenant ids cannot hold `:`,
    /// so the key is unambiguous.
    pub fn presence(&self, tenant: &TenantId, user: &UserId) -> String {
        format!("{}:presence:{tenant}:{user}", self.prefix)
    }
}

/// A message on the bus, tagged with the instance that sent it (which ignores its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub from: String,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Committed {
        tenant: TenantId,
        routed: Vec<Routed>,
    },
    Signal {
        signal: Signal,
    },
}

/// One node's view of a user, as its hash field holds it: `f:<ms>` (foreground since) or
/// `a:<ms>` (away since).
pub fn view(state: PresenceState, since: OffsetDateTime) -> String {
    let tag = match state {
        PresenceState::Foreground => 'f',
        PresenceState::Away => 'a',
    };
    let ms = (since.unix_timestamp_nanos() / 1_000_000) as i64;
    format!("{tag}:{ms}")
}

/// Reads a field back; `None` for anything else (a field written by another version is
/// ignored rather than trusted).
pub fn parse_view(field: &str) -> Option<Presence> {
    let (tag, ms) = field.split_once(':')?;
    let state = match tag {
        "f" => PresenceState::Foreground,
        "a" => PresenceState::Away,
        _ => return None,
    };
    let ms: i64 = ms.parse().ok()?;
    let since = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(Presence {
        state,
        since: Some(since),
        grace_until: None,
        sessions: usize::from(state == PresenceState::Foreground),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_view_reads_back_to_the_millisecond() {
        let at = datetime!(2026-12-05 10:00:00.123 UTC);
        let back = parse_view(&view(PresenceState::Away, at)).unwrap();
        assert_eq!(back.state, PresenceState::Away);
        assert_eq!(back.since, Some(at));
        let fg = parse_view(&view(PresenceState::Foreground, at)).unwrap();
        assert_eq!(fg.state, PresenceState::Foreground);
        assert_eq!(parse_view("x:1"), None);
        assert_eq!(parse_view("f:soon"), None);
    }

    #[test]
    fn a_signal_crosses_the_bus_unchanged() {
        let message = Message {
            from: "node-a/1".into(),
            body: Body::Signal {
                signal: Signal::Away {
                    tenant: TenantId::parse("acme").unwrap(),
                    user: UserId::parse("ann").unwrap(),
                    since: datetime!(2026-12-05 10:00 UTC),
                },
            },
        };
        let json = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), message);
    }
}
