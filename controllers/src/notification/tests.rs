//! Table tests of the delivery decisions: grouping, dedup, repeat, resolved, backoff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use berth_crds::kinds::EventSpec;
use berth_crds::kinds::event::{EventType, InvolvedObject};
use berth_crds::kinds::notifier::{MinSeverity, NotifierRoute, NotifierSpec, NotifierStatus};
use chrono::{DateTime, TimeZone, Utc};

use super::decide::{Outcome, Plan, Route, Seen, after_send, backoff, classify, decide, severity};
use super::message;
use crate::notify::{NotifyError, Severity};

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
}

fn ev(uid: &str, type_: EventType, reason: &str, at: i64) -> EventSpec {
    EventSpec {
        involved_object: InvolvedObject {
            kind: "Application".into(),
            namespace: Some("shop".into()),
            name: format!("app-{uid}"),
            uid: uid.into(),
        },
        type_,
        reason: reason.into(),
        message: format!("{reason} happened"),
        source: "test".into(),
        count: 1,
        first_timestamp: t(at),
        last_timestamp: t(at),
    }
}

fn route(f: impl FnOnce(&mut NotifierRoute)) -> Route {
    let mut r = NotifierRoute {
        group_wait: "10s".into(),
        group_interval: "1m".into(),
        repeat_interval: "1h".into(),
        ..NotifierRoute::default()
    };
    f(&mut r);
    Route::of(&NotifierSpec {
        route: Some(r),
        ..NotifierSpec::default()
    })
}

fn seen(events: &[(String, EventSpec)]) -> Vec<Seen<'_>> {
    events.iter().map(|(n, spec)| Seen { name: n, spec }).collect()
}

fn named(list: Vec<EventSpec>) -> Vec<(String, EventSpec)> {
    list.into_iter()
        .map(|e| (format!("ev-{}-{}", e.involved_object.uid, e.reason), e))
        .collect()
}

/// Runs decide until it stops recording; returns the status and the final plan.
fn settle(
    r: &Route,
    mut s: NotifierStatus,
    events: &[(String, EventSpec)],
    now: i64,
) -> (NotifierStatus, Plan) {
    for _ in 0..4 {
        match decide(r, &s, &seen(events), t(0), t(now)) {
            Plan::Record(next) => s = *next,
            plan => return (s, plan),
        }
    }
    panic!("decide kept recording");
}

#[test]
fn route_selection() {
    let warn = ev("a", EventType::Warning, "BackupFailed", 1);
    let normal = ev("a", EventType::Normal, "BackupSucceeded", 1);
    let mut other_ns = warn.clone();
    other_ns.involved_object.namespace = Some("blog".into());
    let mut cluster = warn.clone();
    cluster.involved_object.namespace = None;
    let cases: Vec<(&str, Route, &EventSpec, bool)> = vec![
        ("default takes all", route(|_| {}), &normal, true),
        (
            "reason listed",
            route(|r| r.reasons = vec!["BackupFailed".into()]),
            &warn,
            true,
        ),
        (
            "reason not listed",
            route(|r| r.reasons = vec!["BuildFailed".into()]),
            &warn,
            false,
        ),
        (
            "type listed",
            route(|r| r.types = vec!["Warning".into()]),
            &warn,
            true,
        ),
        (
            "type not listed",
            route(|r| r.types = vec!["Warning".into()]),
            &normal,
            false,
        ),
        (
            "namespace listed",
            route(|r| r.namespaces = vec!["shop".into()]),
            &warn,
            true,
        ),
        (
            "namespace not listed",
            route(|r| r.namespaces = vec!["shop".into()]),
            &other_ns,
            false,
        ),
        (
            "cluster object, namespaces set",
            route(|r| r.namespaces = vec!["shop".into()]),
            &cluster,
            false,
        ),
        (
            "critical passes critical",
            route(|r| r.min_severity = MinSeverity::Critical),
            &warn,
            true,
        ),
        (
            "success below warning",
            route(|r| r.min_severity = MinSeverity::Warning),
            &normal,
            false,
        ),
    ];
    for (name, r, e, want) in cases {
        assert_eq!(r.matches(e), want, "{name}");
    }
    let spec_events = Route::of(&NotifierSpec {
        events: vec!["Warning".into()],
        ..NotifierSpec::default()
    });
    assert!(spec_events.matches(&warn) && !spec_events.matches(&normal));
}

#[test]
fn severities() {
    let cases = [
        (EventType::Warning, "BuildFailed", Severity::Critical),
        (EventType::Warning, "Unhealthy", Severity::Critical),
        (EventType::Warning, "DiskPressure", Severity::Warning),
        (EventType::Normal, "Recovered", Severity::Success),
        (EventType::Normal, "BackupSucceeded", Severity::Success),
        (EventType::Normal, "Created", Severity::Info),
    ];
    for (ty, reason, want) in cases {
        assert_eq!(severity(ty, reason), want, "{reason}");
    }
}

#[test]
fn fifty_failures_in_the_window_make_one_group() {
    let r = route(|_| {});
    let events = named(
        (0..50)
            .map(|i| ev(&format!("u{i}"), EventType::Warning, "BuildFailed", i % 5))
            .collect(),
    );
    let (s, plan) = settle(&r, NotifierStatus::default(), &events, 5);
    assert_eq!(s.pending.len(), 1, "{:?}", s.pending);
    assert_eq!(s.pending[0].alerts.len(), 50);
    assert_eq!(plan, Plan::Wait(Duration::from_secs(10)));
    // Due after groupWait: one send.
    let (_, plan) = settle(&r, s.clone(), &events, 15);
    assert_eq!(plan, Plan::Send(0));
    let m = message::build(&s.pending[0]);
    assert!(m.title.contains("50 objects"), "{}", m.title);
    assert!(m.body.contains("and 30 more"), "{}", m.body);
    assert!(
        m.body.contains("berth describe application/app-u0 -n shop"),
        "{}",
        m.body
    );
}

#[test]
fn different_keys_make_different_groups() {
    let r = route(|_| {});
    let events = named(vec![
        ev("a", EventType::Warning, "BuildFailed", 1),
        ev("b", EventType::Warning, "BackupFailed", 1),
    ]);
    let (s, _) = settle(&r, NotifierStatus::default(), &events, 1);
    assert_eq!(s.pending.len(), 2);
}

#[test]
fn delivered_alerts_are_not_sent_again_until_the_repeat_interval() {
    let r = route(|_| {});
    let mut events = named(vec![ev("a", EventType::Warning, "BuildFailed", 1)]);
    let (s, _) = settle(&r, NotifierStatus::default(), &events, 1);
    let s = after_send(&s, 0, &Ok(()), t(12));
    assert!(s.pending.is_empty() && s.log.len() == 1);
    assert_eq!(s.last_sent_at, Some(t(12)));
    // The same event, unchanged: deduplicated.
    assert_eq!(settle(&r, s.clone(), &events, 20).1, Plan::Idle);
    // It happens again (count 2) within the repeat interval: still quiet.
    events[0].1.count = 2;
    events[0].1.last_timestamp = t(30);
    assert_eq!(settle(&r, s.clone(), &events, 40).1, Plan::Idle);
    // After the repeat interval: queued again.
    let (s2, _) = settle(&r, s.clone(), &events, 12 + 3600);
    assert_eq!(s2.pending.len(), 1);
    assert_eq!(s2.pending[0].alerts[0].count, 2);
    // Not happening again: never repeated, however long.
    events[0].1.last_timestamp = t(1);
    assert_eq!(settle(&r, s, &events, 9000).1, Plan::Idle);
}

#[test]
fn a_recovery_after_a_sent_problem_is_a_resolved_message() {
    let r = route(|_| {});
    let problem = ev("a", EventType::Warning, "Unhealthy", 1);
    let mut events = named(vec![problem]);
    let (s, _) = settle(&r, NotifierStatus::default(), &events, 1);
    let s = after_send(&s, 0, &Ok(()), t(12));
    events.extend(named(vec![ev("a", EventType::Normal, "Recovered", 20)]));
    let (s, plan) = settle(&r, s, &events, 20);
    assert_eq!(plan, Plan::Wait(Duration::from_secs(10)), "{s:?}");
    assert_eq!(s.pending.len(), 1);
    let alert = &s.pending[0].alerts[0];
    assert!(alert.resolved && alert.reason == "Unhealthy" && alert.id.starts_with("resolved-"));
    assert!(s.log[0].resolved);
    let m = message::build(&s.pending[0]);
    assert!(m.resolved && m.headline().starts_with("[RESOLVED]"), "{m:?}");
    // Sent: nothing more; a second recovery resolves nothing.
    let s = after_send(&s, 0, &Ok(()), t(80));
    assert_eq!(settle(&r, s, &events, 90).1, Plan::Idle);
}

#[test]
fn without_send_resolved_a_recovery_only_marks_the_log() {
    let r = route(|r| r.send_resolved = false);
    let mut events = named(vec![ev("a", EventType::Warning, "BackupFailed", 1)]);
    let (s, _) = settle(&r, NotifierStatus::default(), &events, 1);
    let s = after_send(&s, 0, &Ok(()), t(12));
    events.extend(named(vec![ev("a", EventType::Normal, "BackupSucceeded", 20)]));
    let (s, plan) = settle(&r, s, &events, 20);
    assert_eq!(plan, Plan::Idle);
    assert!(s.log[0].resolved);
}

#[test]
fn events_from_before_the_notifier_are_ignored() {
    let r = route(|_| {});
    let events = named(vec![ev("a", EventType::Warning, "BuildFailed", -5)]);
    assert_eq!(settle(&r, NotifierStatus::default(), &events, 1).1, Plan::Idle);
}

#[test]
fn backoff_and_classification() {
    let retry = |after| {
        Err(NotifyError::Retry {
            after,
            reason: "503".into(),
        })
    };
    let cases: Vec<(&str, Result<(), NotifyError>, u32, Outcome)> = vec![
        ("ok", Ok(()), 0, Outcome::Delivered),
        (
            "first retry",
            retry(None),
            0,
            Outcome::RetryAfter(Duration::from_secs(1)),
        ),
        (
            "third retry",
            retry(None),
            2,
            Outcome::RetryAfter(Duration::from_secs(4)),
        ),
        (
            "capped",
            retry(None),
            30,
            Outcome::RetryAfter(Duration::from_secs(300)),
        ),
        (
            "retry-after honoured",
            retry(Some(Duration::from_secs(7))),
            0,
            Outcome::RetryAfter(Duration::from_secs(7)),
        ),
        (
            "backoff beats a short retry-after",
            retry(Some(Duration::from_secs(1))),
            3,
            Outcome::RetryAfter(Duration::from_secs(8)),
        ),
        (
            "permanent",
            Err(NotifyError::Permanent { reason: "400".into() }),
            0,
            Outcome::GiveUp,
        ),
        (
            "config retried slowly",
            Err(NotifyError::Config {
                reason: "secret".into(),
            }),
            0,
            Outcome::RetryAfter(Duration::from_secs(300)),
        ),
    ];
    for (name, result, attempts, want) in cases {
        assert_eq!(classify(&result, attempts), want, "{name}");
    }
    assert_eq!(backoff(1, None), Duration::from_secs(1));
    assert_eq!(backoff(u32::MAX, None), Duration::from_secs(300));
}

#[test]
fn retries_keep_the_group_and_a_refusal_drops_it() {
    let r = route(|_| {});
    let events = named(vec![ev("a", EventType::Warning, "BuildFailed", 1)]);
    let (s, _) = settle(&r, NotifierStatus::default(), &events, 1);
    let id = s.pending[0].id.clone();
    let failed = after_send(
        &s,
        0,
        &Err(NotifyError::Retry {
            after: None,
            reason: "503".into(),
        }),
        t(12),
    );
    assert_eq!(failed.pending.len(), 1);
    assert_eq!(failed.pending[0].attempts, 1);
    assert_eq!(failed.pending[0].id, id, "the message id survives retries");
    assert_eq!(failed.pending[0].next_attempt_at, t(13));
    assert_eq!(failed.failures, 1);
    assert!(failed.pending[0].last_error.as_deref().unwrap().contains("503"));
    // While retrying, the event is not queued twice.
    assert_eq!(
        settle(&r, failed.clone(), &events, 12).1,
        Plan::Wait(Duration::from_secs(1))
    );
    let refused = after_send(
        &failed,
        0,
        &Err(NotifyError::Permanent { reason: "400".into() }),
        t(13),
    );
    assert!(refused.pending.is_empty());
    assert_eq!(refused.failures, 2);
    assert_eq!(
        settle(&r, refused, &events, 14).1,
        Plan::Idle,
        "refused: not re-sent"
    );
    let delivered = after_send(&failed, 0, &Ok(()), t(13));
    assert_eq!(delivered.failures, 0);
}

#[test]
fn a_recovery_in_the_second_of_the_send_still_resolves() {
    let r = route(|_| {});
    let mut events = named(vec![ev("a", EventType::Warning, "Unhealthy", 1)]);
    let (s, _) = settle(&r, NotifierStatus::default(), &events, 1);
    let sent = t(12) + chrono::Duration::milliseconds(700);
    let s = after_send(&s, 0, &Ok(()), sent);
    // Event timestamps are whole seconds: this recovery happened after the send.
    events.extend(named(vec![ev("a", EventType::Normal, "Recovered", 12)]));
    let (s, _) = settle(&r, s, &events, 13);
    assert!(s.pending.first().is_some_and(|g| g.alerts[0].resolved), "{s:?}");
}
