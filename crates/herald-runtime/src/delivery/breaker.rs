//! A circuit breaker per endpoint (SPEC §3.5): after `failures` consecutive counted failures it
//! opens for a cool-down, during which deliveries wait instead of hammering the endpoint; then
//! it lets exactly one probe through (half-open): a success closes it, a failure opens it
//! again. Pure: every call takes `now`.
//!
//! What counts ([`classify`]): a retryable or permanent failure whose HTTP status is in the
//! policy's `breaker_statuses`, or one without a status (a transport error or a timeout).
//! Successes reset the count. An invalid target never counts (the endpoint answered about one
//! device), and neither does a status outside the list (the push-proxy preset's 400 and 500).
//! An unsent request (the provider refused it unprocessed on a connection it was recycling) is
//! ignored altogether: it says nothing about the endpoint.

use herald_engine::push::DeliveryOutcome;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// What an outcome means to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    /// A counted failure.
    Failure,
    /// Neither: the endpoint answered, but not with a success.
    Neutral,
    /// Nothing to learn: the request never reached the endpoint's processing
    /// ([`DeliveryOutcome::Unsent`]). A half-open circuit's probe that ends so is not back:
    /// the next delivery probes instead.
    Ignored,
}

pub fn classify(outcome: &DeliveryOutcome, counted_statuses: &[u16]) -> Class {
    match outcome {
        DeliveryOutcome::Delivered { .. } => Class::Success,
        DeliveryOutcome::InvalidTarget { .. } => Class::Neutral,
        DeliveryOutcome::Unsent { .. } => Class::Ignored,
        DeliveryOutcome::Retryable { status, .. } | DeliveryOutcome::Permanent { status, .. } => {
            match status {
                None => Class::Failure,
                Some(s) if counted_statuses.contains(s) => Class::Failure,
                Some(_) => Class::Neutral,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Consecutive counted failures that open the circuit (at least 1).
    pub failures: u32,
    pub cool_down: Duration,
    /// A probe whose result has not come back after this long is presumed lost, and another
    /// may go.
    pub probe_timeout: Duration,
}

impl Settings {
    /// How long deliveries wait while the probe is out.
    fn probe_wait(&self) -> Duration {
        self.cool_down
            .min(Duration::seconds(1))
            .max(Duration::milliseconds(10))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: OffsetDateTime,
    },
    /// `probe`: when the probe went, while it is out.
    HalfOpen {
        probe: Option<OffsetDateTime>,
    },
}

/// Whether a delivery may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Go: this delivery is the half-open circuit's one probe.
    Probe,
    /// Not before this time.
    Wait(OffsetDateTime),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    state: State,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: State::Closed { failures: 0 },
        }
    }
}

impl Breaker {
    pub fn state(&self, now: OffsetDateTime) -> CircuitState {
        match self.state {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if now < until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        match self.state {
            State::Closed { failures } => failures,
            _ => 0,
        }
    }

    /// When a delivery could go, if not now; changes nothing (a look before waiting for a
    /// concurrency slot).
    pub fn blocked_until(&self, now: OffsetDateTime, s: &Settings) -> Option<OffsetDateTime> {
        match self.state {
            State::Closed { .. } => None,
            State::Open { until } => (now < until).then_some(until),
            State::HalfOpen { probe: None } => None,
            State::HalfOpen { probe: Some(at) } => {
                (now < at + s.probe_timeout).then(|| now + s.probe_wait())
            }
        }
    }

    /// Asks to send now. In half-open state the first caller gets the probe; the others wait.
    pub fn admit(&mut self, now: OffsetDateTime, s: &Settings) -> Admission {
        match self.state {
            State::Closed { .. } => Admission::Go,
            State::Open { until } if now < until => Admission::Wait(until),
            State::Open { .. } | State::HalfOpen { probe: None } => {
                self.state = State::HalfOpen { probe: Some(now) };
                Admission::Probe
            }
            State::HalfOpen { probe: Some(at) } if now >= at + s.probe_timeout => {
                self.state = State::HalfOpen { probe: Some(now) };
                Admission::Probe
            }
            State::HalfOpen { .. } => Admission::Wait(now + s.probe_wait()),
        }
    }

    /// Records an attempt's result; answers whether this opened the circuit.
    pub fn record(&mut self, now: OffsetDateTime, class: Class, s: &Settings) -> bool {
        match (self.state, class) {
            (_, Class::Success) => {
                self.state = State::Closed { failures: 0 };
                false
            }
            (State::Closed { failures }, Class::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= s.failures.max(1) {
                    self.state = State::Open {
                        until: now + s.cool_down,
                    };
                    true
                } else {
                    self.state = State::Closed { failures };
                    false
                }
            }
            (State::HalfOpen { .. }, Class::Failure) => {
                self.state = State::Open {
                    until: now + s.cool_down,
                };
                true
            }
            // The endpoint answered the probe, just not with a success: it is up.
            (State::HalfOpen { .. }, Class::Neutral) => {
                self.state = State::Closed { failures: 0 };
                false
            }
            (State::HalfOpen { .. }, Class::Ignored) => {
                self.state = State::HalfOpen { probe: None };
                false
            }
            // A late result of an attempt made before the circuit opened changes nothing.
            (State::Open { .. }, _) | (State::Closed { .. }, Class::Neutral | Class::Ignored) => {
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::milliseconds(ms)
    }

    fn settings() -> Settings {
        Settings {
            failures: 3,
            cool_down: Duration::milliseconds(300),
            probe_timeout: Duration::seconds(5),
        }
    }

    fn retryable(status: Option<u16>) -> DeliveryOutcome {
        DeliveryOutcome::Retryable {
            after_ms: None,
            reason: "x".into(),
            status,
        }
    }

    #[test]
    fn counted_statuses_and_transport_errors_are_failures() {
        let counted = [429, 503];
        assert_eq!(classify(&retryable(Some(503)), &counted), Class::Failure);
        assert_eq!(classify(&retryable(None), &counted), Class::Failure);
        assert_eq!(classify(&retryable(Some(500)), &counted), Class::Neutral);
        let rejected = DeliveryOutcome::Permanent {
            reason: "x".into(),
            status: Some(400),
        };
        assert_eq!(classify(&rejected, &counted), Class::Neutral);
        let gone = DeliveryOutcome::InvalidTarget { reason: "x".into() };
        assert_eq!(classify(&gone, &counted), Class::Neutral);
        let ok = DeliveryOutcome::Delivered { provider_id: None };
        assert_eq!(classify(&ok, &counted), Class::Success);
    }

    #[test]
    fn consecutive_failures_open_it_and_a_success_resets_the_count() {
        let s = settings();
        let mut b = Breaker::default();
        assert!(!b.record(t(0), Class::Failure, &s));
        assert!(!b.record(t(1), Class::Failure, &s));
        assert!(!b.record(t(2), Class::Success, &s));
        assert_eq!(b.consecutive_failures(), 0);
        assert!(!b.record(t(3), Class::Failure, &s));
        assert!(
            !b.record(t(4), Class::Neutral, &s),
            "neutral changes nothing"
        );
        assert!(!b.record(t(5), Class::Failure, &s));
        assert_eq!(b.admit(t(5), &s), Admission::Go);
        assert!(b.record(t(6), Class::Failure, &s), "the third opens it");
        assert_eq!(b.state(t(6)), CircuitState::Open);
        assert_eq!(b.admit(t(10), &s), Admission::Wait(t(306)));
        assert_eq!(b.blocked_until(t(10), &s), Some(t(306)));
    }

    #[test]
    fn after_the_cool_down_exactly_one_probe_goes_and_its_success_closes_it() {
        let s = settings();
        let mut b = Breaker::default();
        for i in 0..3 {
            b.record(t(i), Class::Failure, &s);
        }
        assert_eq!(b.state(t(302)), CircuitState::HalfOpen);
        assert_eq!(b.blocked_until(t(302), &s), None, "a probe may go");
        assert_eq!(b.admit(t(302), &s), Admission::Probe);
        assert!(matches!(b.admit(t(303), &s), Admission::Wait(_)));
        assert!(matches!(b.admit(t(400), &s), Admission::Wait(_)));
        assert!(b.blocked_until(t(400), &s).is_some());
        assert!(!b.record(t(450), Class::Success, &s));
        assert_eq!(b.state(t(450)), CircuitState::Closed);
        assert_eq!(b.admit(t(451), &s), Admission::Go);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let s = settings();
        let mut b = Breaker::default();
        for i in 0..3 {
            b.record(t(i), Class::Failure, &s);
        }
        assert_eq!(b.admit(t(302), &s), Admission::Probe);
        assert!(b.record(t(310), Class::Failure, &s), "re-opened");
        assert_eq!(b.admit(t(311), &s), Admission::Wait(t(610)));
        assert_eq!(b.admit(t(610), &s), Admission::Probe);
    }

    #[test]
    fn a_probe_answered_with_an_uncounted_status_closes_it() {
        let s = settings();
        let mut b = Breaker::default();
        for i in 0..3 {
            b.record(t(i), Class::Failure, &s);
        }
        assert_eq!(b.admit(t(302), &s), Admission::Probe);
        b.record(t(303), Class::Neutral, &s);
        assert_eq!(b.state(t(303)), CircuitState::Closed);
    }

    #[test]
    fn an_unsent_request_is_ignored_and_a_probe_that_ends_unsent_lets_the_next_one_probe() {
        let s = settings();
        let unsent = DeliveryOutcome::Unsent {
            reason: "the connection was recycled".into(),
        };
        assert_eq!(classify(&unsent, &[]), Class::Ignored);
        let mut b = Breaker::default();
        b.record(t(0), Class::Failure, &s);
        b.record(t(1), Class::Failure, &s);
        for i in 2..10 {
            assert!(!b.record(t(i), Class::Ignored, &s));
        }
        assert_eq!(b.consecutive_failures(), 2, "neither counted nor a success");
        assert!(b.record(t(10), Class::Failure, &s));
        assert_eq!(b.admit(t(311), &s), Admission::Probe);
        assert!(!b.record(t(312), Class::Ignored, &s));
        assert_eq!(b.state(t(312)), CircuitState::HalfOpen, "still unknown");
        assert_eq!(b.admit(t(313), &s), Admission::Probe, "the next one probes");
    }

    #[test]
    fn a_lost_probe_is_replaced_after_the_probe_timeout() {
        let s = settings();
        let mut b = Breaker::default();
        for i in 0..3 {
            b.record(t(i), Class::Failure, &s);
        }
        assert_eq!(b.admit(t(302), &s), Admission::Probe);
        assert!(matches!(b.admit(t(5_301), &s), Admission::Wait(_)));
        assert_eq!(b.admit(t(5_302), &s), Admission::Probe);
    }

    #[test]
    fn late_results_while_open_change_nothing() {
        let s = settings();
        let mut b = Breaker::default();
        for i in 0..3 {
            b.record(t(i), Class::Failure, &s);
        }
        assert!(!b.record(t(100), Class::Failure, &s), "not opened twice");
        assert_eq!(b.admit(t(100), &s), Admission::Wait(t(302)));
    }

    #[test]
    fn one_failure_opens_it_when_the_threshold_is_one() {
        let s = Settings {
            failures: 1,
            ..settings()
        };
        let mut b = Breaker::default();
        assert!(b.record(t(0), Class::Failure, &s));
    }
}
