//! The delivery queue port: durable deliveries claimed by workers under a lease, and settled
//! after each attempt. A delivery whose worker dies is claimed again when its lease runs out,
//! so delivery is at-least-once; channels de-duplicate where they can (stable `apns-id`,
//! `webhook-id`, collapse keys).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::TenantId;
use crate::push::{Delivery, DeliveryOutcome};
use crate::store::StoreError;

/// One attempt, as kept in the delivery's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub duration_ms: u64,
    #[serde(flatten)]
    pub outcome: DeliveryOutcome,
}

/// How a claimed delivery ends up after a worker handled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Delivered(Attempt),
    /// Failed transiently; pending again from `next_at`.
    Retry {
        attempt: Attempt,
        next_at: OffsetDateTime,
    },
    /// Not attempted (circuit open, bulkhead full): pending again from `next_at`, no attempt
    /// counted.
    Postpone {
        next_at: OffsetDateTime,
        reason: String,
    },
    /// Failed for good.
    Failed(Attempt),
    /// The target is gone: the delivery fails and, for a device, the device is removed with
    /// the reason kept in the delivery's history.
    InvalidTarget(Attempt),
    /// Its push expired before it could be delivered: recorded, never sent late.
    Expired {
        reason: String,
    },
    /// Retries are off for this app (or exhausted): failed after this attempt.
    GaveUp(Attempt),
    /// Not attempted and never will be (status `cancelled`, `reason` as its note): e.g. a newer
    /// push with the same collapse key already went to the same target, so this older one
    /// would only replace it there.
    Cancelled {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
    InvalidTarget,
    Expired,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::InvalidTarget => "invalid_target",
            DeliveryStatus::Expired => "expired",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        use DeliveryStatus::*;
        [
            Pending,
            Delivered,
            Failed,
            InvalidTarget,
            Expired,
            Cancelled,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// A delivery as the API shows it: where it went, its state and every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    /// Why it is waiting, failed or expired, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_attempt_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Leases up to `limit` pending deliveries that are due at `now` and not leased, until
    /// `now + lease`. `attempt` in each is the number of the attempt about to be made.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Records the result of a claimed delivery and releases its lease.
    async fn settle_delivery(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        settlement: Settlement,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// When the earliest pending delivery becomes claimable (due, and its lease free).
    async fn next_delivery_at(&self) -> Result<Option<OffsetDateTime>, StoreError>;

    /// The deliveries of a notification, for the API.
    async fn deliveries_of(
        &self,
        tenant: &TenantId,
        notification_id: &str,
    ) -> Result<Vec<DeliveryView>, StoreError>;
}

/// A way to reach a target: APNs, FCM, Web Push, webhooks, the customer's backend, or a test
/// double. Implementations classify every failure into a [`DeliveryOutcome`]; they never retry
/// themselves (the delivery core owns retries, breakers and bulkheads).
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// Makes one attempt. `app` is the app's configuration with its secrets.
    async fn deliver(&self, delivery: &Delivery, app: &crate::app::AppConfig) -> DeliveryOutcome;

    /// What a circuit breaker and a concurrency limit are scoped to: the remote endpoint and
    /// the credential used for it (e.g. `apns:https://api.push.apple.com:TEAMID`).
    fn endpoint_key(&self, delivery: &Delivery, app: &crate::app::AppConfig) -> String;
}
