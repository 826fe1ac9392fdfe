//! Calls (SPEC §3.3 rule 5): a ringing call pushes at once (no grace delay), unless the app
//! joins calls automatically; when the call stops ringing, everyone who got the incoming-call
//! push gets a silent revoked-call push; a caller who hung up or a call nobody took also leaves
//! a visible missed call — but never for a callee who declined.
//!
//! A decline ends the ringing for the decliner only: with other callees still ringing, the
//! decliner's ringing is revoked and the call goes on for the others (the last decline ends it).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::event::{CallKind, CallRinging};
use crate::ids::{AppId, ConversationId, UserId};

/// How long a call rings when the event does not say.
pub const DEFAULT_RING_TIMEOUT: Duration = Duration::seconds(45);

pub fn ring_timeout(ringing: &CallRinging) -> Duration {
    ringing.ring_timeout_s.map_or(DEFAULT_RING_TIMEOUT, |s| {
        Duration::seconds(i64::from(s.clamp(1, 600)))
    })
}

/// A call as the engine remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallState {
    pub conversation_id: ConversationId,
    pub caller: UserId,
    pub callees: Vec<UserId>,
    /// Who got the incoming-call push, per app: exactly they get the revocation.
    pub rang: Vec<(UserId, AppId)>,
    /// Set once the call stopped ringing; later call events change nothing.
    pub over: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub ring_until: OffsetDateTime,
    /// For the missed-call text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    /// Callees who declined while others still rang: already revoked, never a missed call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declined: Vec<UserId>,
}

/// What the end of ringing means for each party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// Silent revocations: (user, app) pairs that got the ringing push.
    pub revoke: Vec<(UserId, AppId)>,
    /// Visible missed-call pushes (and +1 missed call) for these users.
    pub missed: Vec<UserId>,
}

/// The call stopped ringing with `kind` (`by` whoever the event names). `None` when that
/// changes nothing (it already stopped, or the callee had declined already). Revocations go
/// to every (user, app) that rang — the decliner's and answerer's other devices must stop
/// ringing too.
///
/// A decline by one of several callees ends the ringing for that callee only: their ringing
/// is revoked, nobody misses anything, and the call rings on for the others (the last
/// callee's decline ends it). Missed calls (cancelled, timed out) go to every callee who did
/// not decline.
pub fn on_end(state: &mut CallState, kind: CallKind, by: Option<&UserId>) -> Option<CallEnd> {
    if state.over {
        return None;
    }
    if kind == CallKind::Declined
        && let Some(by) = by
        && *by != state.caller
        && state.callees.contains(by)
    {
        if state.declined.contains(by) {
            return None;
        }
        state.declined.push(by.clone());
        if !ringing_callees(state).is_empty() {
            let (revoke, rest) = state.rang.drain(..).partition(|(user, _)| user == by);
            state.rang = rest;
            return Some(CallEnd {
                revoke,
                missed: vec![],
            });
        }
    }
    state.over = true;
    let missed = match kind {
        CallKind::Cancelled | CallKind::Timeout => ringing_callees(state),
        CallKind::Declined | CallKind::Answered | CallKind::Ended => vec![],
    };
    Some(CallEnd {
        revoke: state.rang.clone(),
        missed,
    })
}

/// The callees the call still rings for: all but the caller and who declined.
fn ringing_callees(state: &CallState) -> Vec<UserId> {
    let mut out: Vec<UserId> = vec![];
    for u in &state.callees {
        if *u != state.caller && !state.declined.contains(u) && !out.contains(u) {
            out.push(u.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn app() -> AppId {
        AppId::parse("app").unwrap()
    }

    fn ringing() -> CallState {
        CallState {
            conversation_id: ConversationId::parse("c").unwrap(),
            caller: user("agent"),
            callees: vec![user("v1"), user("v2")],
            rang: vec![(user("v1"), app())],
            over: false,
            ring_until: datetime!(2026-11-23 10:00:45 UTC),
            caller_name: None,
            declined: vec![],
        }
    }

    #[test]
    fn a_cancelled_call_revokes_who_rang_and_leaves_a_missed_call_for_every_callee() {
        let mut call = ringing();
        let end = on_end(&mut call, CallKind::Cancelled, None).unwrap();
        assert_eq!(end.revoke, vec![(user("v1"), app())]);
        assert_eq!(end.missed, vec![user("v1"), user("v2")]);
    }

    #[test]
    fn a_timed_out_call_is_missed_too() {
        assert_eq!(
            on_end(&mut ringing(), CallKind::Timeout, None)
                .unwrap()
                .missed
                .len(),
            2
        );
    }

    #[test]
    fn a_declined_call_is_revoked_but_never_a_missed_call() {
        let end = on_end(&mut ringing(), CallKind::Declined, Some(&user("v1"))).unwrap();
        assert_eq!(end.revoke.len(), 1);
        assert!(end.missed.is_empty());
    }

    #[test]
    fn an_answered_call_is_revoked_without_a_missed_call_and_only_once() {
        let mut call = ringing();
        let end = on_end(&mut call, CallKind::Answered, None).unwrap();
        assert!(end.missed.is_empty());
        assert_eq!(
            on_end(&mut call, CallKind::Ended, None),
            None,
            "a later end changes nothing"
        );
    }

    #[test]
    fn the_ring_timeout_comes_from_the_event_or_a_default() {
        let mut r: CallRinging = serde_json::from_value(serde_json::json!({"call_id": "k", "caller": {"id": "a", "role": "agent"}, "callees": ["v"]})).unwrap();
        assert_eq!(ring_timeout(&r), DEFAULT_RING_TIMEOUT);
        r.ring_timeout_s = Some(20);
        assert_eq!(ring_timeout(&r), Duration::seconds(20));
    }
}
