//! Retry delays: exponential, capped, with jitter, and never sooner than the provider asked
//! (`Retry-After`). Pure: the random draw is a parameter.

use std::time::Duration;

use herald_engine::app::DeliveryPolicy;

/// The delay before the attempt after `attempt` (1 for the first): `base * 2^(attempt-1)`
/// capped at the policy's maximum, scaled by a jitter between 50 % and 100 % (`unit` is a
/// uniform draw in `[0, 1)`), and raised to `after_ms` (the provider's `Retry-After`) if that
/// is longer.
pub fn retry_delay(
    policy: &DeliveryPolicy,
    attempt: u32,
    after_ms: Option<u64>,
    unit: f64,
) -> Duration {
    let base = policy.retry_base_delay_ms.max(1);
    let cap = policy.retry_max_delay_ms.max(base);
    let doublings = attempt.saturating_sub(1).min(63);
    let exponential = base.saturating_mul(1_u64 << doublings).min(cap);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let jittered = (exponential as f64 * (0.5 + 0.5 * unit)).round() as u64;
    let floor = after_ms.unwrap_or(0);
    Duration::from_millis(jittered.max(floor).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(base: u64, max: u64) -> DeliveryPolicy {
        DeliveryPolicy {
            retry_base_delay_ms: base,
            retry_max_delay_ms: max,
            ..DeliveryPolicy::default()
        }
    }

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    #[test]
    fn delays_double_per_attempt_up_to_the_cap() {
        let p = policy(100, 1_000);
        let top: Vec<u64> = (1..=6).map(|a| ms(retry_delay(&p, a, None, 1.0))).collect();
        assert_eq!(top, [100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let p = policy(100, 10_000);
        assert_eq!(ms(retry_delay(&p, 3, None, 0.0)), 200, "the lowest draw");
        assert_eq!(ms(retry_delay(&p, 3, None, 0.5)), 300);
        assert_eq!(ms(retry_delay(&p, 3, None, 0.999_999)), 400);
        for i in 0..100 {
            let d = ms(retry_delay(&p, 3, None, f64::from(i) / 100.0));
            assert!((200..=400).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = policy(100, 1_000);
        assert_eq!(ms(retry_delay(&p, 1, Some(2_000), 0.0)), 2_000);
        assert_eq!(
            ms(retry_delay(&p, 4, Some(10), 1.0)),
            800,
            "a shorter Retry-After does not shorten the backoff"
        );
    }

    #[test]
    fn huge_attempt_numbers_and_bad_draws_do_not_overflow() {
        let p = policy(1_000, 300_000);
        assert_eq!(ms(retry_delay(&p, u32::MAX, None, 1.0)), 300_000);
        assert_eq!(ms(retry_delay(&p, 1, None, f64::NAN)), 500);
        assert_eq!(ms(retry_delay(&p, 1, None, 7.0)), 1_000);
    }
}
