//! The decision log (SPEC §2.2, §3): one record per decision to tell a user something — sent
//! or not — with every step in words a support engineer understands ("why wasn't I notified?").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AppId, ConversationId, TenantId, UserId};
use crate::notify::Looking;
use crate::push::{Push, PushKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the grace delay, the coalesce window, or quiet hours.
    Pending,
    /// A proactive notification waiting for its `send_at`.
    Scheduled,
    /// Handed to the delivery core (see its deliveries for what happened next).
    Sent,
    /// Folded into another pending push (named in the reason).
    Coalesced,
    /// Not sent, by a rule (foreground, role, filter, …).
    Suppressed,
    /// Dropped before it was due (the user came back, read it, or it was cancelled).
    Cancelled,
    /// Past its TTL before it could go.
    Expired,
    /// Nothing could carry it (no device or endpoint), or every delivery of it failed.
    Failed,
    /// Some of its deliveries arrived, others failed, expired or lost their device.
    Partial,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Scheduled => "scheduled",
            Status::Sent => "sent",
            Status::Coalesced => "coalesced",
            Status::Suppressed => "suppressed",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Failed => "failed",
            Status::Partial => "partial",
        }
    }

    /// Still able to change (and to be cancelled).
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Scheduled)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub status: Status,
    pub reason: String,
}

/// What a proactive notification asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proactive {
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Channels to use (empty: every channel of the user's devices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    pub ttl_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<AppId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    pub kind: PushKind,
    /// The transcript position of the event that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    pub status: Status,
    pub reason: String,
    /// Whether the user was looking when the decision was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub looking: Option<Looking>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When a pending or scheduled notification is due.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub due_at: Option<OffsetDateTime>,
    /// What was sent (or will be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proactive: Option<Proactive>,
    pub log: Vec<LogEntry>,
}

/// How a sent notification's deliveries ended, once none is pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: usize,
    pub delivered: usize,
    /// Cancelled on purpose: superseded by a newer push with the same collapse key, or the
    /// device moved to another user. Not a failure.
    pub cancelled: usize,
}

impl NotificationRecord {
    /// Every delivery of a sent notification has ended: a notification says `sent` if each
    /// delivery arrived or was cancelled (superseded by a newer push, or its device left) with
    /// at least one arrived; `cancelled` if every one was cancelled; `partial` if some arrived
    /// and others failed; `failed` if none arrived and some failed. Answers whether the record
    /// changed.
    pub fn conclude(&mut self, ended: Tally, now: OffsetDateTime) -> bool {
        let failed = ended
            .total
            .saturating_sub(ended.delivered + ended.cancelled);
        if self.status != Status::Sent || ended.total == 0 {
            return false;
        }
        let (status, reason) = match (ended.delivered, failed) {
            (_, 0) if ended.delivered > 0 => return false,
            (0, 0) => (
                Status::Cancelled,
                format!(
                    "every delivery was cancelled: superseded by a newer push or its device left ({} of {})",
                    ended.cancelled, ended.total
                ),
            ),
            (0, _) => (
                Status::Failed,
                format!(
                    "no delivery arrived: {failed} of {} failed, expired or lost their device (see the deliveries)",
                    ended.total
                ),
            ),
            (delivered, _) => (
                Status::Partial,
                format!(
                    "delivered to {delivered} of {} targets; {failed} failed, expired or lost their device",
                    ended.total
                ),
            ),
        };
        self.note(status, reason, now);
        true
    }

    /// A new record with its first decision.
    #[expect(
        clippy::too_many_arguments,
        reason = "a record's identity has this many parts"
    )]
    pub fn new(
        id: String,
        tenant_id: TenantId,
        user_id: UserId,
        app_id: Option<AppId>,
        conversation_id: Option<ConversationId>,
        kind: PushKind,
        position: Option<u64>,
        looking: Option<Looking>,
        status: Status,
        reason: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        let reason = reason.into();
        NotificationRecord {
            id,
            tenant_id,
            user_id,
            app_id,
            conversation_id,
            kind,
            position,
            status,
            reason: reason.clone(),
            looking,
            created_at: now,
            updated_at: now,
            due_at: None,
            push: None,
            proactive: None,
            log: vec![LogEntry {
                at: now,
                status,
                reason,
            }],
        }
    }

    /// Records a further decision about the same notification.
    pub fn note(&mut self, status: Status, reason: impl Into<String>, now: OffsetDateTime) {
        let reason = reason.into();
        self.status = status;
        self.reason = reason.clone();
        self.updated_at = now;
        if !status.is_open() {
            self.due_at = None;
        }
        self.log.push(LogEntry {
            at: now,
            status,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn every_step_is_kept_in_order_with_its_reason() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut r = NotificationRecord::new(
            "n1".into(),
            TenantId::parse("t").unwrap(),
            UserId::parse("u").unwrap(),
            None,
            None,
            PushKind::NewMessage,
            Some(3),
            Some(Looking::Away { since: None }),
            Status::Pending,
            "waiting for the grace delay",
            t0,
        );
        r.due_at = Some(t0 + time::Duration::seconds(5));
        r.note(
            Status::Sent,
            "sent to 2 devices",
            t0 + time::Duration::seconds(5),
        );
        assert_eq!(r.status, Status::Sent);
        assert_eq!(r.due_at, None);
        let steps: Vec<Status> = r.log.iter().map(|e| e.status).collect();
        assert_eq!(steps, [Status::Pending, Status::Sent]);
    }

    fn sent(at: OffsetDateTime) -> NotificationRecord {
        NotificationRecord::new(
            "n1".into(),
            TenantId::parse("t").unwrap(),
            UserId::parse("u").unwrap(),
            None,
            None,
            PushKind::NewMessage,
            Some(3),
            None,
            Status::Sent,
            "handed to the delivery core for 2 target(s)",
            at,
        )
    }

    #[test]
    fn a_sent_notification_whose_deliveries_all_failed_says_failed() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut r = sent(t0);
        assert!(r.conclude(tally(2, 0, 0), t0));
        assert_eq!(r.status, Status::Failed);
        assert!(r.reason.contains("2 of 2 failed"), "{}", r.reason);
    }

    #[test]
    fn a_sent_notification_with_some_deliveries_arrived_says_partial() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut r = sent(t0);
        assert!(r.conclude(tally(2, 1, 0), t0));
        assert_eq!(r.status, Status::Partial);
        assert_eq!(r.log.len(), 2, "the hand-over stays in the log");
    }

    #[test]
    fn a_sent_notification_delivered_everywhere_stays_sent() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut r = sent(t0);
        assert!(!r.conclude(tally(2, 2, 0), t0));
        assert_eq!(r.status, Status::Sent);
        let mut cancelled = sent(t0);
        cancelled.note(Status::Cancelled, "read", t0);
        assert!(
            !cancelled.conclude(tally(1, 0, 0), t0),
            "only sent records conclude"
        );
    }

    fn tally(total: usize, delivered: usize, cancelled: usize) -> Tally {
        Tally {
            total,
            delivered,
            cancelled,
        }
    }

    #[test]
    fn a_sent_notification_whose_other_deliveries_were_superseded_stays_sent() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut r = sent(t0);
        assert!(!r.conclude(tally(3, 1, 2), t0));
        assert_eq!(r.status, Status::Sent);
    }

    #[test]
    fn a_sent_notification_whose_every_delivery_was_superseded_says_cancelled() {
        let t0 = datetime!(2026-11-23 10:00 UTC);
        let mut r = sent(t0);
        assert!(r.conclude(tally(1, 0, 1), t0));
        assert_eq!(r.status, Status::Cancelled);
        let mut mixed = sent(t0);
        assert!(mixed.conclude(tally(2, 0, 1), t0));
        assert_eq!(
            mixed.status,
            Status::Failed,
            "a failure is not hidden by a cancellation"
        );
    }
}
