//! `RecordingChannel`: a `Channel` test double that records every delivery it is asked to make
//! and answers with scripted outcomes.
//!
//! ```ignore
//! let channel = RecordingChannel::new();
//! channel.script("tok-1", vec![RecordingChannel::unavailable(None), RecordingChannel::delivered()]);
//! let hub = TestHub::builder().channel("fcm", channel.clone()).start().await;
//! let seen = channel.wait_for(2).await;
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use herald_engine::app::AppConfig;
use herald_engine::delivery::Channel;
use herald_engine::push::{Delivery, DeliveryOutcome, Target};
use tokio::sync::watch;

#[derive(Default)]
struct State {
    seen: Vec<Delivery>,
    default: Option<DeliveryOutcome>,
    scripts: HashMap<String, VecDeque<DeliveryOutcome>>,
    endpoint_key: Option<String>,
    in_flight: usize,
    max_in_flight: usize,
}

/// Records deliveries; answers `Delivered` unless told otherwise. Cheap to clone (shared).
#[derive(Clone)]
pub struct RecordingChannel {
    state: Arc<Mutex<State>>,
    /// Bumped on every recorded delivery, so `wait_for` can sleep until one arrives.
    recorded: Arc<watch::Sender<usize>>,
    /// `true` while calls hang.
    hanging: Arc<watch::Sender<bool>>,
}

impl Default for RecordingChannel {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            recorded: Arc::new(watch::channel(0).0),
            hanging: Arc::new(watch::channel(false).0),
        }
    }
}

impl RecordingChannel {
    pub fn new() -> Arc<RecordingChannel> {
        Arc::new(RecordingChannel::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every delivery asked for so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().seen.clone()
    }

    /// Waits (up to `PATIENCE`) until at least `n` deliveries were asked for; panics otherwise.
    pub async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let mut recorded = self.recorded.subscribe();
        let reached = tokio::time::timeout(crate::PATIENCE, recorded.wait_for(|&count| count >= n));
        match reached.await {
            Ok(Ok(_)) => self.deliveries(),
            _ => panic!(
                "expected {n} deliveries, the channel saw {}",
                self.deliveries().len()
            ),
        }
    }

    pub fn clear(&self) {
        self.lock().seen.clear();
        self.recorded.send_replace(0);
    }

    /// The outcome of every delivery without a scripted one (default: delivered).
    pub fn answer(&self, outcome: DeliveryOutcome) {
        self.lock().default = Some(outcome);
    }

    /// Outcomes for the next deliveries to the device with `token`, in order; after them the
    /// default answers.
    pub fn script(&self, token: &str, outcomes: Vec<DeliveryOutcome>) {
        self.lock()
            .scripts
            .entry(token.to_string())
            .or_default()
            .extend(outcomes);
    }

    /// Every call (recorded first) waits until [`release`](Self::release).
    pub fn hang(&self) {
        self.hanging.send_replace(true);
    }

    /// Lets hanging calls answer, and later calls answer at once.
    pub fn release(&self) {
        self.hanging.send_replace(false);
    }

    /// The endpoint key of every delivery (default: `recording:<app id>`).
    pub fn set_endpoint_key(&self, key: &str) {
        self.lock().endpoint_key = Some(key.to_string());
    }

    /// Calls in progress now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// The most calls that were ever in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    pub fn delivered() -> DeliveryOutcome {
        DeliveryOutcome::Delivered { provider_id: None }
    }

    /// A retryable failure with an HTTP status (e.g. 503), and optionally `Retry-After`.
    pub fn failing(status: u16, after_ms: Option<u64>) -> DeliveryOutcome {
        DeliveryOutcome::Retryable {
            after_ms,
            reason: format!("{status} from the recording channel"),
            status: Some(status),
        }
    }

    pub fn invalid(reason: &str) -> DeliveryOutcome {
        DeliveryOutcome::InvalidTarget {
            reason: reason.to_string(),
        }
    }

    pub fn rejected(status: u16) -> DeliveryOutcome {
        DeliveryOutcome::Permanent {
            reason: format!("{status} from the recording channel"),
            status: Some(status),
        }
    }
}

fn token(delivery: &Delivery) -> Option<&str> {
    match &delivery.target {
        Target::Device { device } => Some(&device.token),
        Target::Email { address } => Some(address),
        Target::Webhook { .. } => None,
    }
}

impl RecordingChannel {
    async fn attempt(&self, delivery: &Delivery) -> DeliveryOutcome {
        let outcome = {
            let mut state = self.lock();
            state.seen.push(delivery.clone());
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            let scripted = token(delivery)
                .and_then(|t| state.scripts.get_mut(t))
                .and_then(VecDeque::pop_front);
            scripted
                .or_else(|| state.default.clone())
                .unwrap_or_else(RecordingChannel::delivered)
        };
        self.recorded.send_modify(|count| *count += 1);
        // Decrements even if the caller gives up on this call (a timeout drops the future).
        struct Done<'a>(&'a RecordingChannel);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.lock().in_flight -= 1;
            }
        }
        let _done = Done(self);
        let mut hanging = self.hanging.subscribe();
        let _ = hanging.wait_for(|h| !h).await;
        outcome
    }
}

/// Written out as `#[async_trait]` would expand it (the testkit does not depend on the macro
/// crate).
impl Channel for RecordingChannel {
    fn deliver<'s, 'd, 'a, 'f>(
        &'s self,
        delivery: &'d Delivery,
        _app: &'a AppConfig,
    ) -> Pin<Box<dyn Future<Output = DeliveryOutcome> + Send + 'f>>
    where
        's: 'f,
        'd: 'f,
        'a: 'f,
    {
        Box::pin(self.attempt(delivery))
    }

    fn endpoint_key(&self, delivery: &Delivery, _app: &AppConfig) -> String {
        self.lock()
            .endpoint_key
            .clone()
            .unwrap_or_else(|| format!("recording:{}", delivery.app_id))
    }
}
