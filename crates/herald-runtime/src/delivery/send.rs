//! The guarded synchronous send: one attempt now, for a caller that waits for the answer
//! (`herald push test`, the Matrix push gateway). It goes through the worker's own admission
//! ([`super::admission`]): refused while the endpoint is disabled or its circuit is open, or
//! when no bulkhead or endpoint slot comes free within the caller's budget; the attempt runs
//! under the attempt timeout (or what is left of the budget, if less) and its outcome feeds the
//! endpoint's breaker and health as a delivery's does. Nothing is stored and nothing is
//! retried: settling the outcome is the caller's.

use std::time::Duration as StdDuration;

use herald_engine::app::AppConfig;
use herald_engine::delivery::Channel;
use herald_engine::push::{Delivery, DeliveryOutcome};
use tokio::time::Instant;

use super::DeliveryCore;
use super::admission::{Patience, Refused};

impl DeliveryCore {
    /// Sends `delivery` through `channel` now, guarded like the worker's deliveries, within
    /// `budget` (waiting for slots and the attempt together). A budget that runs out while
    /// the provider has not answered is a retryable outcome that does not count against the
    /// endpoint.
    pub async fn send_now(
        &self,
        channel: &dyn Channel,
        delivery: &Delivery,
        app: &AppConfig,
        budget: StdDuration,
    ) -> Result<DeliveryOutcome, Refused> {
        let deadline = Instant::now() + budget;
        let key = channel.endpoint_key(delivery, app);
        let patience = Patience::until(deadline);
        let admitted = self.admit(delivery, key, &app.delivery, patience).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = left.min(StdDuration::from_millis(self.settings.attempt_timeout_ms));
        let (attempt, _) = self
            .attempt(admitted, channel, delivery, app, timeout)
            .await;
        Ok(attempt.outcome)
    }
}

#[cfg(test)]
#[path = "send_tests.rs"]
mod tests;
