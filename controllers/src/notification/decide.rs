//! The pure half of delivery: which Events a route selects, how they are grouped,
//! deduplicated, repeated and resolved, what comes next, and what a send's outcome does to
//! the queue.
//!
//! # Guarantees
//! - [`decide`] returns [`Plan::Record`] whenever the queue or the log must change, before
//!   any [`Plan::Send`]: nothing is sent that is not recorded first.
//! - Deterministic: the same input gives the same plan (events are taken in
//!   `lastTimestamp`, name order).
//!
//! # Caveats
//! - Recovery is paired by reason through [`RECOVERIES`] only; a recovery arriving while its
//!   problem is still queued (not yet sent) goes out as an ordinary event.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_crds::kinds::EventSpec;
use berth_crds::kinds::event::EventType;
use berth_crds::kinds::notifier::{
    LogEntry, MAX_LOG_ENTRIES, MAX_PENDING_ALERTS, MinSeverity, NotifierRoute, NotifierSpec, NotifierStatus,
    PendingAlert, PendingGroup,
};
use berth_crds::rules::parse_duration;
use chrono::{DateTime, SubsecRound, Utc};

use crate::notify::{NotifyError, Severity};

/// Problem reason → the reason that says it is over. A recovery event about the same
/// object (uid) after the problem was sent produces a "resolved" message.
pub const RECOVERIES: &[(&str, &str)] = &[
    ("Unhealthy", "Recovered"),
    ("HealthCheckFailed", "RolloutComplete"),
    ("BuildFailed", "RolloutComplete"),
    ("ImagePullFailed", "Pulled"),
    ("BackupFailed", "BackupSucceeded"),
    ("RestoreFailed", "RestoreSucceeded"),
    ("ServerUnreachable", "ServerReachable"),
    ("DiskUsageHigh", "DiskUsageNormal"),
    ("DockerCleanupFailed", "DockerCleanupDone"),
    ("FetchFailed", "Synced"),
    ("ValidationFailed", "Synced"),
    ("ApplyFailed", "Synced"),
];

/// The first retry delay; each further attempt doubles it up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest delay between attempts (also a misconfigured channel's retry period).
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A route with its durations parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `spec.events`: reasons or types; all when empty.
    pub events: Vec<String>,
    /// `spec.route`.
    pub route: NotifierRoute,
    /// `groupWait`.
    pub group_wait: Duration,
    /// `groupInterval`.
    pub group_interval: Duration,
    /// `repeatInterval`.
    pub repeat: Duration,
}

impl Route {
    /// The route of `spec` (defaults for what is absent or unparsable).
    pub fn of(spec: &NotifierSpec) -> Self {
        let route = spec.route.clone().unwrap_or_default();
        let d = |s: &str, default: u64| parse_duration(s).unwrap_or(Duration::from_secs(default));
        Self {
            events: spec.events.clone(),
            group_wait: d(&route.group_wait, 30),
            group_interval: d(&route.group_interval, 300),
            repeat: d(&route.repeat_interval, 4 * 3600),
            route,
        }
    }

    /// Whether the route selects `ev`.
    pub fn matches(&self, ev: &EventSpec) -> bool {
        let type_ = type_name(ev.type_);
        let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        (self.events.is_empty() || self.events.iter().any(|e| *e == ev.reason || e == type_))
            && listed(&self.route.reasons, &ev.reason)
            && listed(&self.route.types, type_)
            && (self.route.namespaces.is_empty()
                || ev
                    .involved_object
                    .namespace
                    .as_ref()
                    .is_some_and(|ns| self.route.namespaces.contains(ns)))
            && rank(severity(ev.type_, &ev.reason)) >= self.route.min_severity
    }
}

/// `Normal` or `Warning`.
pub fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// An event's severity: a Warning is critical when its reason is a failure (`…Failed`,
/// `Unhealthy`, `…Unreachable`, `CrashLoop…`, `RestartLimit…`), else a warning; a Normal
/// event is a success when it ends a problem or succeeded, else information.
pub fn severity(t: EventType, reason: &str) -> Severity {
    match t {
        EventType::Warning
            if reason.ends_with("Failed")
                || reason.ends_with("Unreachable")
                || reason.starts_with("CrashLoop")
                || reason.starts_with("RestartLimit")
                || reason == "Unhealthy" =>
        {
            Severity::Critical
        }
        EventType::Warning => Severity::Warning,
        EventType::Normal
            if reason.ends_with("Succeeded") || RECOVERIES.iter().any(|(_, r)| *r == reason) =>
        {
            Severity::Success
        }
        EventType::Normal => Severity::Info,
    }
}

fn rank(s: Severity) -> MinSeverity {
    match s {
        Severity::Success | Severity::Info => MinSeverity::Info,
        Severity::Warning => MinSeverity::Warning,
        Severity::Critical => MinSeverity::Critical,
    }
}

/// The problem reasons `recovery` ends.
pub fn problems_ended_by(recovery: &str) -> impl Iterator<Item = &'static str> + '_ {
    RECOVERIES
        .iter()
        .filter(move |(_, r)| *r == recovery)
        .map(|(p, _)| *p)
}

/// One Event as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The Event's name: the alert's stable id.
    pub name: &'a str,
    /// The Event.
    pub spec: &'a EventSpec,
}

/// What to do next for one Notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Write this status first (new alerts queued, resolutions or pruning in the log).
    Record(Box<NotifierStatus>),
    /// Send `status.pending[index]` now.
    Send(usize),
    /// Nothing due: look again after this long.
    Wait(Duration),
    /// Nothing queued.
    Idle,
}

/// Decides the next step for a Notifier with `status`, created at `since`, seeing `events`.
pub fn decide(
    route: &Route,
    status: &NotifierStatus,
    events: &[Seen<'_>],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Plan {
    let next = collect(route, status, events, since, now);
    if &next != status {
        return Plan::Record(Box::new(next));
    }
    if let Some(i) = status.pending.iter().position(|g| g.next_attempt_at <= now) {
        return Plan::Send(i);
    }
    match status.pending.iter().map(|g| g.next_attempt_at).min() {
        Some(t) => Plan::Wait((t - now).to_std().unwrap_or(Duration::ZERO)),
        None => Plan::Idle,
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The group key: reason, severity and whether resolved.
pub fn group_key(reason: &str, severity: Severity, resolved: bool) -> String {
    let tail = if resolved { "/resolved" } else { "" };
    format!("{reason}/{}{tail}", severity.as_str())
}

/// The status with every new alert queued, resolutions marked and the log pruned.
fn collect(
    route: &Route,
    status: &NotifierStatus,
    events: &[Seen<'_>],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> NotifierStatus {
    let mut next = status.clone();
    let mut sorted: Vec<&Seen<'_>> = events.iter().filter(|e| e.spec.last_timestamp >= since).collect();
    sorted.sort_by(|a, b| (a.spec.last_timestamp, a.name).cmp(&(b.spec.last_timestamp, b.name)));
    for ev in sorted {
        let spec = ev.spec;
        let mut resolved_any = false;
        for problem in problems_ended_by(&spec.reason) {
            for i in 0..next.log.len() {
                let entry = &next.log[i];
                if entry.resolved
                    || entry.uid != spec.involved_object.uid
                    || entry.reason != problem
                    // Events' timestamps are whole seconds: a recovery in the second
                    // of the send counts.
                    || entry.sent_at.trunc_subsecs(0) > spec.last_timestamp
                {
                    continue;
                }
                resolved_any = true;
                let entry = entry.clone();
                next.log[i].resolved = true;
                if route.route.send_resolved {
                    let alert = PendingAlert {
                        id: format!("resolved-{}", entry.id),
                        resolved: true,
                        reason: problem.to_owned(),
                        ..alert_of(ev)
                    };
                    let sev = Severity::Success;
                    enqueue(&mut next, route, alert, &group_key(problem, sev, true), sev, now);
                }
            }
        }
        if resolved_any {
            // Logged as handled, so that it is not also sent as an ordinary event.
            next.log.retain(|l| l.id != ev.name);
            next.log.push(LogEntry {
                id: ev.name.to_owned(),
                key: String::new(),
                uid: spec.involved_object.uid.clone(),
                reason: spec.reason.clone(),
                last_timestamp: spec.last_timestamp,
                sent_at: now,
                resolved: true,
            });
            continue;
        }
        if !route.matches(spec) {
            continue;
        }
        let queued = next
            .pending
            .iter()
            .any(|g| g.alerts.iter().any(|a| a.id == ev.name));
        if queued {
            continue;
        }
        if let Some(entry) = next.log.iter().find(|l| l.id == ev.name) {
            let newer = spec.last_timestamp > entry.last_timestamp;
            let repeat_due = entry.resolved || now >= entry.sent_at + chrono(route.repeat);
            if !newer || !repeat_due {
                continue;
            }
        }
        let sev = severity(spec.type_, &spec.reason);
        enqueue(
            &mut next,
            route,
            alert_of(ev),
            &group_key(&spec.reason, sev, false),
            sev,
            now,
        );
    }
    prune_log(&mut next.log, route, events, now);
    next
}

fn alert_of(ev: &Seen<'_>) -> PendingAlert {
    let o = &ev.spec.involved_object;
    PendingAlert {
        id: ev.name.to_owned(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone(),
        name: o.name.clone(),
        uid: o.uid.clone(),
        reason: ev.spec.reason.clone(),
        message: ev.spec.message.clone(),
        count: ev.spec.count,
        last_timestamp: ev.spec.last_timestamp,
        resolved: false,
    }
}

/// Adds `alert` to the open group of `key` (one not yet attempted, still within its wait),
/// or opens one; over [`MAX_PENDING_ALERTS`] it only counts as dropped.
fn enqueue(
    status: &mut NotifierStatus,
    route: &Route,
    alert: PendingAlert,
    key: &str,
    severity: Severity,
    now: DateTime<Utc>,
) {
    let total: usize = status.pending.iter().map(|g| g.alerts.len()).sum();
    let open = status
        .pending
        .iter_mut()
        .find(|g| g.key == key && g.attempts == 0 && g.next_attempt_at > now);
    if let Some(group) = open {
        if total >= MAX_PENDING_ALERTS {
            group.dropped += 1;
        } else {
            group.alerts.push(alert);
        }
        return;
    }
    if total >= MAX_PENDING_ALERTS {
        if let Some(last) = status.pending.last_mut() {
            last.dropped += 1;
        }
        return;
    }
    let last_sent = status
        .log
        .iter()
        .filter(|l| l.key == key)
        .map(|l| l.sent_at)
        .max();
    let mut due = now + chrono(route.group_wait);
    if let Some(t) = last_sent {
        due = due.max(t + chrono(route.group_interval));
    }
    status.pending.push(PendingGroup {
        id: group_id(key, &alert.id, now),
        key: key.to_owned(),
        severity: severity.as_str().to_owned(),
        alerts: vec![alert],
        dropped: 0,
        opened_at: now,
        next_attempt_at: due,
        attempts: 0,
        last_error: None,
    });
}

/// A stable message id: FNV-1a of the key, the first alert and the opening time.
fn group_id(key: &str, first: &str, opened: DateTime<Utc>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let opened = opened.to_rfc3339();
    for part in [key, first, opened.as_str()] {
        for b in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("msg_{hash:016x}")
}

/// Drops log entries whose event is gone and whose repeat interval (at least an hour) has
/// passed, then the oldest beyond [`MAX_LOG_ENTRIES`].
fn prune_log(log: &mut Vec<LogEntry>, route: &Route, events: &[Seen<'_>], now: DateTime<Utc>) {
    let names: BTreeSet<&str> = events.iter().map(|e| e.name).collect();
    let keep_for = chrono(route.repeat.max(Duration::from_secs(3600)));
    log.retain(|l| names.contains(l.id.as_str()) || now < l.sent_at + keep_for);
    if log.len() > MAX_LOG_ENTRIES {
        log.sort_by_key(|l| l.sent_at);
        let excess = log.len() - MAX_LOG_ENTRIES;
        log.drain(..excess);
    }
}

/// The delay before attempt `attempts + 1` after a failure: exponential from
/// [`FIRST_BACKOFF`], capped at [`MAX_BACKOFF`], never before the receiver's `after`.
pub fn backoff(attempts: u32, after: Option<Duration>) -> Duration {
    let exp = FIRST_BACKOFF
        .checked_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    exp.max(after.unwrap_or_default().min(MAX_RETRY_AFTER))
}

/// How a send's outcome is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered: logged and dequeued.
    Delivered,
    /// Transient (or the channel is misconfigured): kept, retried after the delay.
    RetryAfter(Duration),
    /// Refused: logged (so not re-sent) and dequeued.
    GiveUp,
}

/// The classification of a send's result after `attempts` earlier attempts.
pub fn classify(result: &Result<(), NotifyError>, attempts: u32) -> Outcome {
    match result {
        Ok(()) => Outcome::Delivered,
        Err(NotifyError::Retry { after, .. }) => Outcome::RetryAfter(backoff(attempts + 1, *after)),
        Err(NotifyError::Config { .. }) => Outcome::RetryAfter(MAX_BACKOFF),
        Err(NotifyError::Permanent { .. }) => Outcome::GiveUp,
    }
}

/// The status after sending `pending[index]` with `result` at `now` (Notifier counters and
/// `Ready` are [`crate::notify::status::record_delivery`]'s).
pub fn after_send(
    status: &NotifierStatus,
    index: usize,
    result: &Result<(), NotifyError>,
    now: DateTime<Utc>,
) -> NotifierStatus {
    let mut next = status.clone();
    let Some(group) = next.pending.get(index).cloned() else {
        return next;
    };
    match classify(result, group.attempts) {
        Outcome::RetryAfter(delay) => {
            next.failures += 1;
            if let Some(g) = next.pending.get_mut(index) {
                g.attempts += 1;
                g.next_attempt_at = now + chrono(delay);
                g.last_error = result.as_ref().err().map(ToString::to_string);
            }
        }
        outcome => {
            if outcome == Outcome::Delivered {
                next.last_sent_at = Some(now);
                next.failures = 0;
            } else {
                next.failures += 1;
            }
            next.pending.remove(index);
            for a in group.alerts.iter().filter(|a| !a.resolved) {
                next.log.retain(|l| l.id != a.id);
                next.log.push(LogEntry {
                    id: a.id.clone(),
                    key: group.key.clone(),
                    uid: a.uid.clone(),
                    reason: a.reason.clone(),
                    last_timestamp: a.last_timestamp,
                    sent_at: now,
                    resolved: false,
                });
            }
        }
    }
    next
}
