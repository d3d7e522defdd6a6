//! Unit tests of the Proxy controller: static arguments, archives, and the table of
//! [`decide`] cases.

use std::collections::{BTreeMap, BTreeSet};

use berth_crds::{
    kinds::{
        ProxySpec,
        application::Domain,
        proxy::{Acme, ProxyCondition, ProxyReason, ProxyStatus},
    },
    meta::ConditionStatus,
};
use serde_json::json;

use super::{
    container::{File, archive, static_args},
    decide::{
        Candidate, Desired, Networks, Next, Plan, Recreate, Refusal, Report, Requeue, Slot, Step, Switch,
        decide, serving, standby, switch,
    },
    observe::{ContainerObs, Observed, TraefikObs},
    render, traefik,
};
use crate::docker::Labels;

fn spec() -> ProxySpec {
    serde_json::from_value(json!({"server": "localhost"})).unwrap()
}

#[test]
fn static_args_keep_the_api_internal_and_configure_acme() {
    let mut s = spec();
    assert!(
        static_args(&s)
            .iter()
            .all(|a| !a.contains("certificatesresolvers"))
    );
    assert!(static_args(&s).contains(&"--api.dashboard=false".to_owned()));
    s.acme = Some(Acme {
        email: "ops@example.com".into(),
        ca_server: "https://127.0.0.1:14000/dir".into(),
        ca_certificates: None,
    });
    s.dashboard = true;
    let args = static_args(&s);
    assert!(args.contains(&"--certificatesresolvers.acme.acme.email=ops@example.com".to_owned()));
    assert!(
        args.contains(&"--certificatesresolvers.acme.acme.caserver=https://127.0.0.1:14000/dir".to_owned())
    );
    assert!(args.contains(&"--certificatesresolvers.acme.acme.httpchallenge.entrypoint=web".to_owned()));
    assert!(args.contains(&"--api.dashboard=true".to_owned()));
}

#[test]
fn the_plan_writes_the_idle_slot_and_stops_once_live() {
    let m = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter().map(|(s, r)| (s.to_string(), r.to_string())).collect()
    };
    assert_eq!(
        switch(&m(&[]), "r2"),
        Switch::Write {
            write: Slot::A,
            empty: Slot::B
        }
    );
    assert_eq!(
        switch(&m(&[("a", "r1")]), "r2"),
        Switch::Write {
            write: Slot::B,
            empty: Slot::A
        }
    );
    assert_eq!(
        switch(&m(&[("b", "r1")]), "r2"),
        Switch::Write {
            write: Slot::A,
            empty: Slot::B
        }
    );
    assert_eq!(switch(&m(&[("b", "r2")]), "r2"), Switch::Live);
    // Mid-switch (both slots live, one with the wanted revision): only the older slot
    // is emptied (again); the wanted one is never rewritten.
    assert_eq!(
        switch(&m(&[("a", "r2"), ("b", "r1")]), "r2"),
        Switch::Empty { slot: Slot::B }
    );
    assert_eq!(
        switch(&m(&[("a", "r1"), ("b", "r2")]), "r2"),
        Switch::Empty { slot: Slot::A }
    );
    // Both live, neither wanted (a crash between uploads): start over in `a`.
    assert_eq!(
        switch(&m(&[("a", "r1"), ("b", "r0")]), "r2"),
        Switch::Write {
            write: Slot::A,
            empty: Slot::B
        }
    );
}

#[test]
fn archives_hold_directories_then_files() {
    let tar = archive(
        &["berth"],
        &[File {
            path: "berth/a.yml",
            content: b"x: 1\n",
        }],
    )
    .unwrap();
    let mut a = tar::Archive::new(tar.as_ref());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, vec!["berth", "berth/a.yml"]);
}

// ---- decide ----

const NET: &str = "berth-test";
/// A Destination network on the server that no routed app needs (any more).
const UNNEEDED: &str = "berth-svc-default-blog";
/// A network no Destination names: another tool's.
const FOREIGN: &str = "someone-elses";

/// Wanted: one app with a routed domain and one refused domain (an issue), on `NET`. The
/// server's Destinations name `NET`, `UNNEEDED` and (oddly) the proxy's own network.
fn desired() -> Desired {
    let domain = |host: &str| Domain {
        host: host.into(),
        https: false,
        ..Domain::default()
    };
    let app = render::App {
        namespace: "default".into(),
        name: "web".into(),
        domains: vec![domain("app.example.com"), domain("Bad.example.com")],
        auth: vec![render::Auth::None, render::Auth::None],
        default_port: Some(8080),
        containers: vec!["web-1".into()],
    };
    Desired::new(
        "localhost",
        "uid-1",
        &spec(),
        &Labels::new(),
        &[app],
        Networks {
            wanted: BTreeSet::from([NET.to_owned()]),
            berth: BTreeSet::from([NET.to_owned(), UNNEEDED.to_owned(), "bridge".to_owned()]),
        },
    )
    .unwrap()
}

/// The status before: an older revision with its own backends.
fn old() -> ProxyStatus {
    ProxyStatus {
        observed_generation: Some(1),
        routes: Some(7),
        revision: Some("r-old".into()),
        errors: vec!["old error".into()],
        backends: BTreeMap::from([("old/app".to_owned(), vec!["old-1".to_owned()])]),
        ..ProxyStatus::default()
    }
}

/// An up-to-date running container on the bridge and `NET`.
fn current(d: &Desired) -> ContainerObs {
    ContainerObs {
        name: d.container.name.clone(),
        id: "c1".into(),
        image: d.container.image.clone(),
        config_hash: Some(d.config_hash.clone()),
        running: true,
        networks: BTreeSet::from(["bridge".to_owned(), NET.to_owned()]),
    }
}

fn live(markers: &[(&str, &str)], errors: &[&str]) -> TraefikObs {
    TraefikObs::Live(traefik::Live {
        markers: markers
            .iter()
            .map(|(s, r)| (s.to_string(), r.to_string()))
            .collect(),
        routers: BTreeMap::new(),
        errors: errors.iter().map(|e| e.to_string()).collect(),
    })
}

/// What a case expects after the steps.
#[derive(Debug)]
enum Want {
    ObserveAgain,
    Fail(Refusal),
    Report {
        requeue: Requeue,
        running: ConditionStatus,
        ready: (ConditionStatus, ProxyReason),
        /// `status.revision`.
        revision: Option<String>,
        /// Whether routes, backends and errors are the new revision's (else the old ones).
        reported: bool,
    },
}

struct Case {
    name: &'static str,
    container: Option<ContainerObs>,
    traefik: TraefikObs,
    after_container_steps: bool,
    steps: Vec<Step>,
    want: Want,
}

fn check(d: &Desired, case: Case) {
    let observed = Observed {
        container: case.container,
        traefik: case.traefik,
        after_container_steps: case.after_container_steps,
    };
    let old = old();
    let plan: Plan = decide(d, &observed, &old, 3);
    let name = case.name;
    assert_eq!(plan.steps, case.steps, "{name}: steps");
    match (&plan.next, case.want) {
        (Next::ObserveAgain, Want::ObserveAgain) => {}
        (Next::Fail(got), Want::Fail(want)) => assert_eq!(got, &want, "{name}: refusal"),
        (
            Next::Report { report, requeue },
            Want::Report {
                requeue: want_requeue,
                running,
                ready,
                revision,
                reported,
            },
        ) => {
            assert_eq!(*requeue, want_requeue, "{name}: requeue");
            let s = &report.status;
            assert_eq!(s.observed_generation, Some(3), "{name}: generation");
            assert_eq!(s.container_id.as_deref(), Some("c1"), "{name}: container id");
            assert_eq!(s.revision, revision, "{name}: revision");
            let r = report.condition(ProxyCondition::Running).unwrap();
            assert_eq!(
                (r.status, r.reason),
                (running, ProxyReason::Container),
                "{name}: running"
            );
            let c = report.condition(ProxyCondition::Ready).unwrap();
            assert_eq!((c.status, c.reason), ready, "{name}: ready");
            if reported {
                assert_eq!(s.backends, d.rendered.backends, "{name}: backends");
                assert_eq!(s.routes, Some(d.rendered.routes), "{name}: routes");
                assert_ne!(s.errors, old.errors, "{name}: errors");
            } else {
                assert_eq!(s.backends, old.backends, "{name}: backends kept");
                assert_eq!(s.routes, old.routes, "{name}: routes kept");
                assert_eq!(s.errors, old.errors, "{name}: errors kept");
            }
        }
        (got, want) => panic!("{name}: next is {got:?}, wanted {want:?}"),
    }
}

#[test]
fn decide_table() {
    let d = desired();
    let rev = d.revision.clone();
    let cur = current(&d);
    let upload = |slot| Step::UploadSlot {
        slot,
        revision: rev.clone(),
    };
    let pending = |requeue, revision: Option<&str>| Want::Report {
        requeue,
        running: ConditionStatus::True,
        ready: (ConditionStatus::False, ProxyReason::ConfigPending),
        revision: revision.map(str::to_owned),
        reported: false,
    };
    let settled_again = || Want::Report {
        requeue: Requeue::Resync,
        running: ConditionStatus::True,
        ready: (ConditionStatus::True, ProxyReason::ConfigLive),
        revision: Some(rev.clone()),
        reported: true,
    };
    let settled = settled_again();
    let cases = vec![
        Case {
            name: "container missing: create and start, then look again",
            container: None,
            traefik: TraefikObs::NoAddress,
            after_container_steps: false,
            steps: vec![Step::CreateContainer, Step::StartContainer],
            want: Want::ObserveAgain,
        },
        Case {
            name: "container exited: start it, then look again",
            container: Some(ContainerObs {
                running: false,
                ..cur.clone()
            }),
            traefik: TraefikObs::NoAddress,
            after_container_steps: false,
            steps: vec![Step::StartContainer],
            want: Want::ObserveAgain,
        },
        Case {
            name: "wrong image: recreate, naming both images",
            container: Some(ContainerObs {
                image: "traefik:v2.0".into(),
                config_hash: Some("stale".into()),
                ..cur.clone()
            }),
            traefik: live(&[("a", &rev)], &[]),
            after_container_steps: false,
            steps: vec![
                Step::RecreateContainer {
                    why: Recreate::Image {
                        from: "traefik:v2.0".into(),
                        to: d.container.image.clone(),
                    },
                },
                Step::StartContainer,
            ],
            want: Want::ObserveAgain,
        },
        Case {
            name: "ports (same image, other hash): recreate for the configuration",
            container: Some(ContainerObs {
                config_hash: Some("other-ports".into()),
                ..cur.clone()
            }),
            traefik: live(&[("a", &rev)], &[]),
            after_container_steps: false,
            steps: vec![
                Step::RecreateContainer {
                    why: Recreate::Config,
                },
                Step::StartContainer,
            ],
            want: Want::ObserveAgain,
        },
        Case {
            name: "stopped with a stale hash: recreate, not just start",
            container: Some(ContainerObs {
                config_hash: None,
                running: false,
                ..cur.clone()
            }),
            traefik: TraefikObs::NoAddress,
            after_container_steps: false,
            steps: vec![
                Step::RecreateContainer {
                    why: Recreate::Config,
                },
                Step::StartContainer,
            ],
            want: Want::ObserveAgain,
        },
        Case {
            name: "after container steps a stale container is taken as it is",
            container: Some(ContainerObs {
                config_hash: Some("stale".into()),
                running: false,
                ..cur.clone()
            }),
            traefik: TraefikObs::Unreachable("connection refused".into()),
            after_container_steps: true,
            steps: vec![],
            want: Want::Report {
                requeue: Requeue::TraefikApi,
                running: ConditionStatus::False,
                ready: (ConditionStatus::False, ProxyReason::ConfigPending),
                revision: Some("r-old".into()),
                reported: false,
            },
        },
        Case {
            name: "container vanished after being started: fail",
            container: None,
            traefik: TraefikObs::NoAddress,
            after_container_steps: true,
            steps: vec![],
            want: Want::Fail(Refusal::Vanished(d.container.name.clone())),
        },
        Case {
            name: "running but no address: connect networks, then fail",
            container: Some(ContainerObs {
                networks: BTreeSet::new(),
                ..cur.clone()
            }),
            traefik: TraefikObs::NoAddress,
            after_container_steps: false,
            steps: vec![Step::ConnectNetwork(NET.into())],
            want: Want::Fail(Refusal::NoAddress(d.container.name.clone())),
        },
        Case {
            name: "traefik api down: keep the old revision and report pending",
            container: Some(cur.clone()),
            traefik: TraefikObs::Unreachable("connection refused".into()),
            after_container_steps: false,
            steps: vec![],
            want: pending(Requeue::TraefikApi, Some("r-old")),
        },
        Case {
            name: "nothing live: upload to a, empty b",
            container: Some(cur.clone()),
            traefik: live(&[], &[]),
            after_container_steps: false,
            steps: vec![upload(Slot::A), Step::EmptySlot(Slot::B)],
            want: pending(Requeue::AwaitLive, Some("r-old")),
        },
        Case {
            name: "live in a at the wanted revision: nothing to do, backends reported",
            container: Some(cur.clone()),
            traefik: live(&[("a", &rev)], &[]),
            after_container_steps: false,
            steps: vec![],
            want: settled,
        },
        Case {
            name: "live in b at the wanted revision: nothing to do",
            container: Some(cur.clone()),
            traefik: live(&[("b", &rev)], &[]),
            after_container_steps: false,
            steps: vec![],
            want: Want::Report {
                requeue: Requeue::Resync,
                running: ConditionStatus::True,
                ready: (ConditionStatus::True, ProxyReason::ConfigLive),
                revision: Some(rev.clone()),
                reported: true,
            },
        },
        Case {
            name: "a live at an older revision: upload to b, empty a",
            container: Some(cur.clone()),
            traefik: live(&[("a", "r1")], &[]),
            after_container_steps: false,
            steps: vec![upload(Slot::B), Step::EmptySlot(Slot::A)],
            want: pending(Requeue::AwaitLive, Some("r1")),
        },
        Case {
            name: "b live at an older revision: upload to a, empty b",
            container: Some(cur.clone()),
            traefik: live(&[("b", "r1")], &[]),
            after_container_steps: false,
            steps: vec![upload(Slot::A), Step::EmptySlot(Slot::B)],
            want: pending(Requeue::AwaitLive, Some("r1")),
        },
        Case {
            name: "mid-switch, b new and a old: only empty a, backends not yet",
            container: Some(cur.clone()),
            traefik: live(&[("a", "r1"), ("b", &rev)], &[]),
            after_container_steps: false,
            steps: vec![Step::EmptySlot(Slot::A)],
            want: pending(Requeue::AwaitLive, Some("r-old")),
        },
        Case {
            name: "mid-switch, a new and b old: only empty b",
            container: Some(cur.clone()),
            traefik: live(&[("a", &rev), ("b", "r1")], &[]),
            after_container_steps: false,
            steps: vec![Step::EmptySlot(Slot::B)],
            want: pending(Requeue::AwaitLive, Some("r-old")),
        },
        Case {
            name: "both live, neither wanted: start over in a",
            container: Some(cur.clone()),
            traefik: live(&[("a", "r1"), ("b", "r0")], &[]),
            after_container_steps: false,
            steps: vec![upload(Slot::A), Step::EmptySlot(Slot::B)],
            want: pending(Requeue::AwaitLive, Some("r-old")),
        },
        Case {
            name: "live with traefik errors: reported, Ready=False ConfigErrors",
            container: Some(cur.clone()),
            traefik: live(&[("a", &rev)], &["router x: bad rule"]),
            after_container_steps: false,
            steps: vec![],
            want: Want::Report {
                requeue: Requeue::Resync,
                running: ConditionStatus::True,
                ready: (ConditionStatus::False, ProxyReason::ConfigErrors),
                revision: Some(rev.clone()),
                reported: true,
            },
        },
        Case {
            name: "a destination network is missing: connect it, then settle",
            container: Some(ContainerObs {
                networks: BTreeSet::from(["bridge".to_owned()]),
                ..cur.clone()
            }),
            traefik: live(&[("a", &rev)], &[]),
            after_container_steps: false,
            steps: vec![Step::ConnectNetwork(NET.into())],
            want: Want::Report {
                requeue: Requeue::Resync,
                running: ConditionStatus::True,
                ready: (ConditionStatus::True, ProxyReason::ConfigLive),
                revision: Some(rev.clone()),
                reported: true,
            },
        },
        Case {
            name: "network missing and nothing live: connect before uploading",
            container: Some(ContainerObs {
                networks: BTreeSet::from(["bridge".to_owned()]),
                ..cur.clone()
            }),
            traefik: live(&[], &[]),
            after_container_steps: false,
            steps: vec![
                Step::ConnectNetwork(NET.into()),
                upload(Slot::A),
                Step::EmptySlot(Slot::B),
            ],
            want: pending(Requeue::AwaitLive, Some("r-old")),
        },
        Case {
            name: "on a destination network no longer needed: disconnect it, keep the needed one",
            container: Some(ContainerObs {
                networks: BTreeSet::from(["bridge".to_owned(), NET.to_owned(), UNNEEDED.to_owned()]),
                ..cur.clone()
            }),
            traefik: live(&[("a", &rev)], &[]),
            after_container_steps: false,
            steps: vec![Step::DisconnectNetwork(UNNEEDED.into())],
            want: settled_again(),
        },
        Case {
            name: "moved: connect the new network, disconnect the old, then upload",
            container: Some(ContainerObs {
                networks: BTreeSet::from(["bridge".to_owned(), UNNEEDED.to_owned()]),
                ..cur.clone()
            }),
            traefik: live(&[("a", "r1")], &[]),
            after_container_steps: false,
            steps: vec![
                Step::ConnectNetwork(NET.into()),
                Step::DisconnectNetwork(UNNEEDED.into()),
                upload(Slot::B),
                Step::EmptySlot(Slot::A),
            ],
            want: pending(Requeue::AwaitLive, Some("r1")),
        },
        Case {
            name: "a still-needed network is not disconnected",
            container: Some(cur.clone()),
            traefik: live(&[("b", &rev)], &[]),
            after_container_steps: false,
            steps: vec![],
            want: settled_again(),
        },
        Case {
            name: "a foreign network (no Destination names it) is left alone",
            container: Some(ContainerObs {
                networks: BTreeSet::from(["bridge".to_owned(), NET.to_owned(), FOREIGN.to_owned()]),
                ..cur.clone()
            }),
            traefik: live(&[("a", &rev)], &[]),
            after_container_steps: false,
            steps: vec![],
            want: settled_again(),
        },
        Case {
            name: "the proxy's own network is left alone, even when a Destination names it",
            container: Some(ContainerObs {
                networks: BTreeSet::from(["bridge".to_owned()]),
                ..cur.clone()
            }),
            traefik: live(&[("a", &rev)], &[]),
            after_container_steps: false,
            steps: vec![Step::ConnectNetwork(NET.into())],
            want: settled_again(),
        },
        Case {
            name: "no address: networks are still put right before failing",
            container: Some(ContainerObs {
                networks: BTreeSet::from([UNNEEDED.to_owned()]),
                ..cur.clone()
            }),
            traefik: TraefikObs::NoAddress,
            after_container_steps: false,
            steps: vec![
                Step::ConnectNetwork(NET.into()),
                Step::DisconnectNetwork(UNNEEDED.into()),
            ],
            want: Want::Fail(Refusal::NoAddress(d.container.name.clone())),
        },
        Case {
            name: "just started and running: go on to the routes",
            container: Some(cur.clone()),
            traefik: live(&[], &[]),
            after_container_steps: true,
            steps: vec![upload(Slot::A), Step::EmptySlot(Slot::B)],
            want: pending(Requeue::AwaitLive, Some("r-old")),
        },
    ];
    assert!(cases.len() >= 15);
    for case in cases {
        check(&d, case);
    }
}

#[test]
fn a_live_report_lists_render_issues_then_traefik_errors_with_messages() {
    let d = desired();
    assert_eq!(d.rendered.issues.len(), 1, "the fixture has one refused domain");
    let observed = Observed {
        container: Some(current(&d)),
        traefik: live(&[("b", &d.revision)], &["router x: bad rule"]),
        after_container_steps: false,
    };
    let plan = decide(&d, &observed, &old(), 3);
    let report = plan.report().unwrap();
    assert_eq!(
        report.status.errors,
        vec![
            "default/web: spec.domains[1].host: \"Bad.example.com\" is not a plain DNS name".to_owned(),
            "router x: bad rule".to_owned(),
        ]
    );
    assert_eq!(report.status.backends["default/web"], vec!["web-1"]);
    let ready = report.condition(ProxyCondition::Ready).unwrap();
    assert_eq!(ready.message, format!("1 routes live at revision {}", d.revision));

    let observed = Observed {
        traefik: live(&[("a", "r1")], &[]),
        ..observed
    };
    let plan = decide(&d, &observed, &old(), 3);
    let ready = plan.report().unwrap().condition(ProxyCondition::Ready).unwrap();
    assert_eq!(
        ready.message,
        format!("waiting for traefik to load revision {}", d.revision)
    );
}

#[test]
fn the_desired_container_follows_the_spec() {
    let d = desired();
    let mut s = spec();
    s.http_port = 8081;
    let other = Desired::new("localhost", "uid-1", &s, &Labels::new(), &[], Networks::default()).unwrap();
    assert_ne!(d.config_hash, other.config_hash, "ports are in the hash");
    assert_eq!(d.container.name, "berth-proxy-localhost");
    assert_ne!(d.revision, other.revision, "routes are in the revision");
}

// ---- one Proxy per server ----

#[test]
fn the_oldest_proxy_serves_the_server_ties_broken_by_name() {
    use chrono::{TimeZone, Utc};
    let at = |secs: i64| Some(Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap());
    let c = |name, created| Candidate { name, created };
    let cases: Vec<(&str, Vec<Candidate<'_>>, Option<&str>)> = vec![
        ("no proxy: none serves", vec![], None),
        ("one proxy serves", vec![c("px", at(5))], Some("px")),
        (
            "the oldest serves, whatever the cache order",
            vec![c("localhost", at(9)), c("px", at(5)), c("zz", at(7))],
            Some("px"),
        ),
        (
            "created in the same second: the first name serves",
            vec![c("px-b", at(5)), c("px-a", at(5))],
            Some("px-a"),
        ),
    ];
    for (name, candidates, want) in cases {
        let mut reversed = candidates.clone();
        reversed.reverse();
        assert_eq!(serving(candidates), want, "{name}");
        assert_eq!(serving(reversed), want, "{name} (reversed)");
    }
}

/// The status `report` becomes when written at `now` (as act writes it).
fn written(report: &Report, now: chrono::DateTime<chrono::Utc>) -> ProxyStatus {
    let mut status = report.status.clone();
    for c in &report.conditions {
        crate::status::set_condition(
            &mut status.conditions,
            c.type_.as_str(),
            c.status,
            c.reason.as_str(),
            &c.message,
            3,
            now,
        );
    }
    status
}

#[test]
fn a_standby_proxy_runs_nothing_and_says_who_serves() {
    let d = desired();
    let cases = vec![
        ("no container: nothing to do", None, vec![]),
        (
            "a container of its own (it served before): removed",
            Some(current(&d)),
            vec![Step::RemoveContainer],
        ),
        (
            "a stopped one too",
            Some(ContainerObs {
                running: false,
                ..current(&d)
            }),
            vec![Step::RemoveContainer],
        ),
    ];
    for (name, container, steps) in cases {
        let plan = standby("px", "localhost", container.as_ref(), &old(), 3);
        assert_eq!(plan.steps, steps, "{name}: steps");
        let Next::Report { report, requeue } = &plan.next else {
            panic!("{name}: next is {:?}", plan.next);
        };
        assert_eq!(*requeue, Requeue::Resync, "{name}: requeue");
        assert_eq!(
            report.status,
            ProxyStatus {
                observed_generation: Some(3),
                ..ProxyStatus::default()
            },
            "{name}: no container, routes, revision or backends (the old ones dropped)"
        );
        for type_ in [ProxyCondition::Running, ProxyCondition::Ready] {
            let c = report.condition(type_).unwrap();
            assert_eq!(
                (c.status, c.reason),
                (ConditionStatus::False, ProxyReason::ServerHasProxy),
                "{name}: {type_}"
            );
            assert!(
                c.message.contains("\"px\" serves server \"localhost\""),
                "{name}: {}",
                c.message
            );
        }
    }
}

/// A reconcile that finds the world as it left it writes the status it wrote: no write, so
/// no watch event of its own to run it again at once (the hot loop a moving status makes).
#[test]
fn an_unchanged_world_rewrites_no_status() {
    use chrono::{TimeZone, Utc};
    let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    let later = t0 + chrono::Duration::seconds(45);
    // Standing by.
    let first = written(standby("px", "localhost", None, &old(), 3).report().unwrap(), t0);
    let again = written(
        standby("px", "localhost", None, &first, 3).report().unwrap(),
        later,
    );
    assert_eq!(again, first, "standby");
    // Serving, settled.
    let d = desired();
    let observed = Observed {
        container: Some(current(&d)),
        traefik: live(&[("a", &d.revision)], &[]),
        after_container_steps: false,
    };
    let first = written(decide(&d, &observed, &old(), 3).report().unwrap(), t0);
    let again = written(decide(&d, &observed, &first, 3).report().unwrap(), later);
    assert_eq!(again, first, "settled");
    // Waiting for Traefik's API.
    let observed = Observed {
        traefik: TraefikObs::Unreachable("connection refused".into()),
        ..observed
    };
    let first = written(decide(&d, &observed, &old(), 3).report().unwrap(), t0);
    let again = written(decide(&d, &observed, &first, 3).report().unwrap(), later);
    assert_eq!(again, first, "api unreachable");
}
