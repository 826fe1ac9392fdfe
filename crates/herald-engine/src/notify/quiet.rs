//! Pause and quiet hours (SPEC §3.2 rule 4): a push that falls inside them is deferred to
//! their end, not dropped. Quiet hours are local times in the user's time zone, so "22:00 to
//! 07:00 in Europe/Paris" follows daylight saving.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::validate::{self, Invalid};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM`; before `start` means the next morning.
    pub end: String,
    /// IANA time zone, e.g. `Europe/Paris`.
    pub time_zone: String,
}

/// `PUT /v1/users/{uid}/preferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// No pushes until then.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub pause_until: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Where emails go (else the participant record's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Language of notification texts (else the device's, else the app's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Why and until when a push waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    Paused,
    QuietHours,
}

impl HoldReason {
    pub fn describe(self) -> &'static str {
        match self {
            HoldReason::Paused => "the user paused notifications",
            HoldReason::QuietHours => "the user is inside their quiet hours",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub until: OffsetDateTime,
    pub reason: HoldReason,
}

fn parse_time(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
}

impl Preferences {
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(q) = &self.quiet_hours {
            parse_time(&q.start)
                .ok_or_else(|| Invalid::new("quiet_hours.start", "must be HH:MM"))?;
            parse_time(&q.end).ok_or_else(|| Invalid::new("quiet_hours.end", "must be HH:MM"))?;
            if q.start == q.end {
                return Err(Invalid::new("quiet_hours.end", "must differ from start"));
            }
            TimeZone::get(&q.time_zone)
                .map_err(|_| Invalid::new("quiet_hours.time_zone", "is not an IANA time zone"))?;
        }
        if let Some(email) = &self.email
            && (!email.contains('@') || email.len() > 320 || email.contains(char::is_whitespace))
        {
            return Err(Invalid::new("email", "must be an email address"));
        }
        if let Some(locale) = &self.locale {
            crate::device::validate_locale(locale).map_err(|e| e.within("locale"))?;
            validate::text("locale", locale, 35)?;
        }
        Ok(())
    }

    /// Whether a push at `now` must wait, and until when. Pause and quiet hours chain: a pause
    /// ending inside quiet hours waits for their end too.
    pub fn hold(&self, now: OffsetDateTime) -> Option<Hold> {
        let mut hold: Option<Hold> = None;
        let mut at = now;
        for _ in 0..3 {
            let next = match (
                self.pause_until.filter(|p| *p > at),
                self.quiet_hours.as_ref().and_then(|q| quiet_end(q, at)),
            ) {
                (Some(p), _) => Hold {
                    until: p,
                    reason: HoldReason::Paused,
                },
                (None, Some(q)) => Hold {
                    until: q,
                    reason: HoldReason::QuietHours,
                },
                (None, None) => break,
            };
            at = next.until;
            hold = Some(Hold {
                until: next.until,
                reason: hold.map_or(next.reason, |h| h.reason),
            });
        }
        hold
    }
}

/// When the quiet period containing `at` ends, if `at` is inside one.
fn quiet_end(q: &QuietHours, at: OffsetDateTime) -> Option<OffsetDateTime> {
    let (start, end) = (parse_time(&q.start)?, parse_time(&q.end)?);
    let tz = TimeZone::get(&q.time_zone).ok()?;
    let ts = jiff::Timestamp::from_nanosecond(at.unix_timestamp_nanos()).ok()?;
    let local = ts.to_zoned_datetime(tz.clone());
    let t = local.time();
    let date = local.date();
    let end_date = if start < end {
        if t >= start && t < end {
            date
        } else {
            return None;
        }
    } else if t >= start {
        date.tomorrow().ok()?
    } else if t < end {
        date
    } else {
        return None;
    };
    let end_at = end_date.to_datetime(end).to_zoned_datetime(tz).ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(end_at.timestamp().as_nanosecond()).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn quiet(start: &str, end: &str, tz: &str) -> Preferences {
        Preferences {
            quiet_hours: Some(QuietHours {
                start: start.into(),
                end: end.into(),
                time_zone: tz.into(),
            }),
            ..Preferences::default()
        }
    }

    #[test]
    fn inside_overnight_quiet_hours_a_push_waits_for_the_morning() {
        let prefs = quiet("22:00", "07:00", "Europe/Paris");
        // 23:30 in Paris (UTC+1 in November) → 07:00 Paris the next day = 06:00 UTC.
        let hold = prefs.hold(datetime!(2026-11-23 22:30 UTC)).unwrap();
        assert_eq!(
            hold,
            Hold {
                until: datetime!(2026-11-24 06:00 UTC),
                reason: HoldReason::QuietHours
            }
        );
        // 03:00 Paris → 07:00 the same day.
        assert_eq!(
            prefs.hold(datetime!(2026-11-24 02:00 UTC)).unwrap().until,
            datetime!(2026-11-24 06:00 UTC)
        );
    }

    #[test]
    fn outside_quiet_hours_nothing_waits() {
        let prefs = quiet("22:00", "07:00", "Europe/Paris");
        assert_eq!(prefs.hold(datetime!(2026-11-23 12:00 UTC)), None);
        let daytime = quiet("12:00", "14:00", "UTC");
        assert_eq!(daytime.hold(datetime!(2026-11-23 11:59 UTC)), None);
        assert_eq!(
            daytime.hold(datetime!(2026-11-23 12:30 UTC)).unwrap().until,
            datetime!(2026-11-23 14:00 UTC)
        );
    }

    #[test]
    fn quiet_hours_follow_daylight_saving() {
        let prefs = quiet("22:00", "07:00", "Europe/Paris");
        // In July Paris is UTC+2: 07:00 local is 05:00 UTC.
        assert_eq!(
            prefs.hold(datetime!(2026-07-01 23:00 UTC)).unwrap().until,
            datetime!(2026-07-02 05:00 UTC)
        );
    }

    #[test]
    fn a_pause_holds_until_it_ends_and_chains_into_quiet_hours() {
        let mut prefs = quiet("22:00", "07:00", "UTC");
        prefs.pause_until = Some(datetime!(2026-11-23 23:00 UTC));
        let hold = prefs.hold(datetime!(2026-11-23 20:00 UTC)).unwrap();
        assert_eq!(
            hold,
            Hold {
                until: datetime!(2026-11-24 07:00 UTC),
                reason: HoldReason::Paused
            }
        );
        prefs.quiet_hours = None;
        assert_eq!(
            prefs.hold(datetime!(2026-11-23 23:00 UTC)),
            None,
            "a pause ends at its time"
        );
    }

    #[test]
    fn bad_preferences_name_their_field() {
        assert_eq!(
            quiet("25:00", "07:00", "UTC").validate().unwrap_err().path,
            "quiet_hours.start"
        );
        assert_eq!(
            quiet("22:00", "07:00", "Mars/Olympus")
                .validate()
                .unwrap_err()
                .path,
            "quiet_hours.time_zone"
        );
    }
}
