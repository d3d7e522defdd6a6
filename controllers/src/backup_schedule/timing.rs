//! When a BackupSchedule runs: cron expressions in a time zone, missed runs and the
//! starting deadline, as pure functions of the schedule, the last run and the clock.
//!
//! # Guarantees
//! - [`decide`] returns at most one run: the latest scheduled time not yet run, so a berth
//!   that was down for N periods runs once, not N times; a run older than
//!   `startingDeadlineSeconds` is skipped.
//! - Times are computed in the schedule's IANA time zone (daylight saving included) and
//!   returned in UTC.
//!
//! # Caveats
//! - Times are whole seconds; cron has minute resolution anyway.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};

/// A schedule that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The cron expression does not parse.
    #[error("spec.schedule: {0}")]
    Schedule(String),
    /// The time zone is unknown.
    #[error("spec.timeZone: {0:?} is not an IANA time zone")]
    TimeZone(String),
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The scheduled time to run now, if any.
    pub run: Option<DateTime<Utc>>,
    /// Whether a missed run was skipped for being past its starting deadline.
    pub skipped_late: bool,
    /// The next scheduled time after now.
    pub next: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Parses a five-field expression (or `@daily`...) read in time zone `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Self, Error> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr.trim())
            .map_err(|e| Error::Schedule(e.to_string().to_lowercase()))?;
        let tz: Tz = tz.parse().map_err(|_| Error::TimeZone(tz.to_owned()))?;
        Ok(Self { cron, tz })
    }

    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last scheduled time at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Decides whether to run now. `since` is the last scheduled time that ran (or the
    /// schedule's creation time): only times strictly after it are due.
    pub fn decide(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        starting_deadline: Option<Duration>,
    ) -> Decision {
        let next = self.next_after(now);
        let latest = self.latest_at_or_before(now).filter(|t| *t > since);
        match latest {
            Some(t) if starting_deadline.is_some_and(|d| now - t > d) => Decision {
                run: None,
                skipped_late: true,
                next,
            },
            run => Decision {
                run,
                skipped_late: false,
                next,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_minute_runs_the_minute_that_just_passed_once() {
        let s = Schedule::parse("* * * * *", "UTC").unwrap();
        let since = at("2026-01-01T10:00:00Z");
        let d = s.decide(since, at("2026-01-01T10:00:30Z"), None);
        assert_eq!(d.run, None);
        assert_eq!(d.next, Some(at("2026-01-01T10:01:00Z")));
        let d = s.decide(since, at("2026-01-01T10:01:00Z"), None);
        assert_eq!(d.run, Some(at("2026-01-01T10:01:00Z")));
        // Once it ran, the same minute is not due again.
        let d = s.decide(at("2026-01-01T10:01:00Z"), at("2026-01-01T10:01:10Z"), None);
        assert_eq!(d.run, None);
    }

    #[test]
    fn downtime_runs_once_and_respects_the_starting_deadline() {
        let s = Schedule::parse("*/5 * * * *", "UTC").unwrap();
        let since = at("2026-01-01T00:00:00Z");
        // Down for 3 hours: 36 runs missed, one is due — the latest.
        let now = at("2026-01-01T03:02:00Z");
        let d = s.decide(since, now, None);
        assert_eq!(d.run, Some(at("2026-01-01T03:00:00Z")));
        assert!(!d.skipped_late);
        // Within a 200 s deadline: runs; past a 60 s deadline: skipped, next still known.
        let d = s.decide(since, now, Some(Duration::seconds(200)));
        assert_eq!(d.run, Some(at("2026-01-01T03:00:00Z")));
        let d = s.decide(since, now, Some(Duration::seconds(60)));
        assert_eq!(d.run, None);
        assert!(d.skipped_late);
        assert_eq!(d.next, Some(at("2026-01-01T03:05:00Z")));
    }

    #[test]
    fn time_zone_and_daylight_saving_are_honoured() {
        let s = Schedule::parse("0 3 * * *", "Europe/Berlin").unwrap();
        // Winter: 03:00 CET is 02:00 UTC; summer: 03:00 CEST is 01:00 UTC.
        assert_eq!(
            s.next_after(at("2026-01-10T00:00:00Z")),
            Some(at("2026-01-10T02:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-07-10T00:00:00Z")),
            Some(at("2026-07-10T01:00:00Z"))
        );
        let tokyo = Schedule::parse("@daily", "Asia/Tokyo").unwrap();
        assert_eq!(
            tokyo.next_after(Utc.with_ymd_and_hms(2026, 3, 1, 16, 0, 0).unwrap()),
            Some(at("2026-03-02T15:00:00Z"))
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        assert!(
            Schedule::parse("61 * * * *", "UTC")
                .unwrap_err()
                .to_string()
                .starts_with("spec.schedule")
        );
        assert!(
            Schedule::parse("* * * * *", "Mars/Olympus")
                .unwrap_err()
                .to_string()
                .starts_with("spec.timeZone")
        );
    }
}
