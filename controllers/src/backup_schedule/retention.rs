//! Which backups a storage's retention rules expire: keep-last-N, max age, max total size,
//! as a pure function.
//!
//! # Guarantees
//! - A backup is expired once any rule says so; an empty [`Retention`] keeps everything.
//! - `maxTotalSize` deletes the oldest backups while the total exceeds the limit, but never
//!   the newest one (a single large backup is kept rather than leaving none).
//!
//! # Caveats
//! - Only successful backups are candidates; failed ones are bounded separately by the
//!   schedule (see [`super::FAILED_HISTORY`]).

use berth_crds::{kinds::backup_schedule::Retention, rules};
use chrono::{DateTime, Utc};

/// One successful backup in one storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The Backup's name.
    pub name: String,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// Its size in bytes.
    pub size: u64,
}

/// The names of the `candidates` that `retention` expires at `now`.
pub fn expired(candidates: &[Candidate], retention: &Retention, now: DateTime<Utc>) -> Vec<String> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.name.cmp(&a.name)));
    let max_age = retention.max_age.as_deref().and_then(rules::parse_duration);
    let max_total = retention
        .max_total_size
        .as_deref()
        .and_then(rules::parse_quantity);
    let mut total = 0u64;
    let mut out = Vec::new();
    for (i, c) in sorted.iter().enumerate() {
        total = total.saturating_add(c.size);
        let by_count = retention.keep_last.is_some_and(|n| i >= n as usize);
        let by_age =
            max_age.is_some_and(|age| chrono::Duration::from_std(age).is_ok_and(|age| now - c.time > age));
        let by_size = i > 0 && max_total.is_some_and(|max| total > max);
        if by_count || by_age || by_size {
            out.push(c.name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn candidates(now: DateTime<Utc>) -> Vec<Candidate> {
        (0..5)
            .map(|i| Candidate {
                name: format!("b{i}"),
                time: now - Duration::hours(24 * i),
                size: 100,
            })
            .collect()
    }

    #[test]
    fn keep_last_keeps_the_newest() {
        let now = Utc::now();
        let r = Retention {
            keep_last: Some(2),
            ..Default::default()
        };
        assert_eq!(expired(&candidates(now), &r, now), vec!["b2", "b3", "b4"]);
        assert!(expired(&candidates(now), &Retention::default(), now).is_empty());
    }

    #[test]
    fn max_age_and_max_total_size_combine() {
        let now = Utc::now();
        let r = Retention {
            max_age: Some("50h".into()),
            ..Default::default()
        };
        assert_eq!(expired(&candidates(now), &r, now), vec!["b3", "b4"]);
        let r = Retention {
            max_total_size: Some("250".into()),
            ..Default::default()
        };
        assert_eq!(expired(&candidates(now), &r, now), vec!["b2", "b3", "b4"]);
        // The newest survives even when it alone is over the limit.
        let r = Retention {
            max_total_size: Some("50".into()),
            keep_last: Some(4),
            ..Default::default()
        };
        assert_eq!(expired(&candidates(now), &r, now), vec!["b1", "b2", "b3", "b4"]);
    }
}
