//! The decide step as a table: each case is what Docker and the previous status say, and
//! the plan (steps, requeue, phase, conditions, containers) both rounds must produce.
//!
//! The cases run both rounds on the same observation, as if act had changed nothing:
//! what a round decides from a given state is all that is checked here.

use std::time::Duration;

use berth_crds::{
    kinds::{
        ApplicationSpec,
        application::{AppCondition, AppContainer, AppReason, ApplicationPhase, ApplicationStatus},
    },
    meta::ConditionStatus,
};
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::{
    application::observe::{Observed, OldContainer, Replica, ReplicaState},
    docker::{Health, Labels, Owner},
};

const HASH: &str = "aaaaaaaaaaaa";
const UID: &str = "u1";
const ALIAS: &str = "web.ns";
const NET: &str = "net";
const TIMING: Timing = Timing {
    min_ready: Duration::from_secs(2),
    progress_deadline: Duration::from_secs(60),
};

/// The decision time; every other time is given in milliseconds before it.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn ago(ms: i64) -> DateTime<Utc> {
    now() - chrono::Duration::milliseconds(ms)
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

fn template(health_check: bool) -> ContainerSpec {
    let hc = if health_check {
        r#","healthCheck":{"command":["true"]}"#
    } else {
        ""
    };
    let spec: ApplicationSpec = serde_json::from_str(&format!(
        r#"{{"source":{{"image":"img:1"}},"destination":"default"{hc}}}"#
    ))
    .unwrap();
    let owner = Owner {
        kind: "Application".into(),
        namespace: "ns".into(),
        name: "web".into(),
        uid: UID.into(),
    };
    let scope = Labels::new();
    let none = |_: &str, _: &str| None;
    let inputs = plan::Inputs {
        owner: &owner,
        scope: &scope,
        network: NET,
        secret: &none,
        host_root: None,
        built_image: None,
    };
    plan::template(&spec, &inputs).unwrap()
}

/// What Docker says of one desired replica.
#[derive(Clone, Copy)]
enum Rep {
    /// No container of that name.
    Missing,
    /// Running since `started` ms ago, with that health, with or without the service alias.
    Up {
        started: i64,
        health: Option<Health>,
        alias: bool,
    },
    /// Exited `finished` ms ago after running for `ran` ms.
    Exited { finished: i64, ran: i64 },
    /// Created, never started.
    Created,
    /// A container of that name with another config (running or not).
    OtherConfig { running: bool },
    /// A container of that name owned by another UID (an app deleted and made again).
    OtherUid,
}

const READY: Rep = Rep::Up {
    started: 60_000,
    health: None,
    alias: true,
};

fn state(spec: &ContainerSpec, rep: Rep) -> Option<ReplicaState> {
    let base = ReplicaState {
        config_hash: Some(spec.config_hash()),
        uid: Some(UID.into()),
        aliases: vec![spec.name.clone()],
        image: "img:1".into(),
        image_id: "sha256:1".into(),
        ..ReplicaState::default()
    };
    Some(match rep {
        Rep::Missing => return None,
        Rep::Up {
            started,
            health,
            alias,
        } => ReplicaState {
            running: true,
            health,
            started_at: Some(ago(started)),
            aliases: if alias {
                vec![spec.name.clone(), ALIAS.into()]
            } else {
                base.aliases.clone()
            },
            ..base
        },
        Rep::Exited { finished, ran } => ReplicaState {
            exit_code: Some(1),
            started_at: Some(ago(finished + ran)),
            finished_at: Some(ago(finished)),
            ..base
        },
        Rep::Created => ReplicaState {
            created: true,
            ..base
        },
        Rep::OtherConfig { running } => ReplicaState {
            running,
            started_at: Some(ago(60_000)),
            config_hash: Some("other".into()),
            ..base
        },
        Rep::OtherUid => ReplicaState {
            finished_at: Some(ago(60_000)),
            uid: Some("u0".into()),
            ..base
        },
    })
}

/// The previous rollout, as the old `Progressing` condition tells it.
#[derive(Clone, Copy)]
enum Rollout {
    /// No condition about this config.
    None,
    /// `Progressing=True` for this config since `ms` ago.
    Since(i64),
    /// This config's rollout already failed (`HealthCheckFailed`).
    Failed,
}

struct Case {
    name: &'static str,
    health_check: bool,
    replicas: Vec<Rep>,
    /// Old containers: running or not.
    olds: Vec<bool>,
    proxy_serves: bool,
    /// The restart counts in the previous status, by replica.
    restarts: Vec<u32>,
    rollout: Rollout,
    expect: Expect,
}

struct Expect {
    /// Both rounds' steps, summarized (see [`describe`]).
    steps: Vec<&'static str>,
    requeue: Option<Duration>,
    /// The last status written.
    phase: ApplicationPhase,
    /// `Type=Status/Reason` of Ready, Progressing and Degraded, when set.
    conditions: Vec<&'static str>,
    /// `<replica or old name> <ready|-> r<restarts>` of the last status written.
    containers: Vec<&'static str>,
}

fn short(name: &str) -> &str {
    name.strip_prefix(&format!("ns-web-{HASH}-")).unwrap_or(name)
}

fn describe(step: &Step) -> String {
    match step {
        Step::Replace { spec } | Step::Create { spec } => {
            let verb = if matches!(step, Step::Replace { .. }) {
                "replace"
            } else {
                "create"
            };
            let alias = spec
                .network
                .as_ref()
                .is_some_and(|n| n.unhashed_aliases == [ALIAS.to_string()]);
            format!(
                "{verb} {}{}",
                short(&spec.name),
                if alias { " +alias" } else { "" }
            )
        }
        Step::Start {
            container, restarts, ..
        } => format!("start {} r{restarts}", short(container)),
        Step::WaitBackoff { container, delay } => {
            format!("wait {} {}ms", short(container), delay.as_millis())
        }
        Step::AddAlias {
            container,
            network,
            aliases,
        } => {
            assert_eq!(network, NET);
            assert_eq!(aliases, &[ALIAS.to_string(), container.clone()]);
            format!("alias {}", short(container))
        }
        Step::WriteStatus { logs: None, .. } => "write".into(),
        Step::WriteStatus { logs: Some(l), .. } => {
            let into: Vec<_> = l.into.iter().map(|c| c.as_str()).collect();
            format!("write logs of {} into {}", short(&l.container), into.join("+"))
        }
        Step::AwaitProxy => "await proxy".into(),
        Step::RemoveOld { id, name } => {
            assert_eq!(id, &format!("id-{name}"));
            format!("remove {name}")
        }
        Step::Warn { reason, .. } => format!("warn {reason}"),
    }
}

fn old_status(case: &Case, replicas: &[Replica]) -> ApplicationStatus {
    let mut old = ApplicationStatus {
        containers: replicas
            .iter()
            .zip(&case.restarts)
            .map(|(r, n)| AppContainer {
                name: r.spec.name.clone(),
                restarts: *n,
                ..AppContainer::default()
            })
            .collect(),
        ..ApplicationStatus::default()
    };
    let rollout = format!("rollout of config {HASH}");
    let (status, reason, since) = match case.rollout {
        Rollout::None => return old,
        Rollout::Since(ms) => (ConditionStatus::True, AppReason::RollingUpdate, ms),
        Rollout::Failed => (ConditionStatus::False, AppReason::HealthCheckFailed, 90_000),
    };
    let (c, r) = (AppCondition::Progressing, reason.as_str());
    set(&mut old, c, status, r, &format!("{rollout}: ..."), 1, ago(since));
    old
}

fn run(case: &Case) -> Vec<String> {
    let template = template(case.health_check);
    let replicas: Vec<Replica> = (0..case.replicas.len() as u32)
        .map(|i| {
            let spec = plan::replica(&template, HASH, i);
            Replica {
                state: state(&spec, case.replicas[i as usize]),
                spec,
                index: i,
            }
        })
        .collect();
    let olds: Vec<OldContainer> = case
        .olds
        .iter()
        .enumerate()
        .map(|(i, running)| OldContainer {
            id: format!("id-old-{i}"),
            name: format!("old-{i}"),
            replica: i as u32,
            config_hash: "bbbbbbbbbbbb".into(),
            running: *running,
        })
        .collect();
    let old = old_status(case, &replicas);
    let anything_runs = olds.iter().any(|o| o.running)
        || replicas
            .iter()
            .any(|r| r.state.as_ref().is_some_and(|s| s.running));
    let observed = Observed {
        replicas,
        olds,
        anything_runs,
        proxy_serves: case.proxy_serves,
    };
    let aliases = [ALIAS.to_string()];
    let first = super::replicas(&observed, UID, &aliases, &old, TIMING, now());
    let after = act_on(&observed, &first, case.health_check);
    let next = base_status(&app_spec(), &old, 1);
    let plan = rollout(
        &after,
        RolloutInputs {
            replicas: &first,
            old: &old,
            next: &next,
            hash: HASH,
            aliases: &aliases,
            network: NET,
            generation: 1,
            git: None,
            timing: TIMING,
            now: now(),
        },
    );
    let mut problems = Vec::new();
    let e = &case.expect;
    let steps: Vec<String> = first.steps.iter().chain(&plan.steps).map(describe).collect();
    if steps != e.steps {
        problems.push(format!("steps: {steps:?}, expected {:?}", e.steps));
    }
    if plan.requeue != e.requeue {
        problems.push(format!("requeue: {:?}, expected {:?}", plan.requeue, e.requeue));
    }
    let written = plan.steps.iter().rev().find_map(|s| match s {
        Step::WriteStatus { status, .. } => Some(status),
        _ => None,
    });
    let Some(status) = written else {
        problems.push("no status written".into());
        return problems;
    };
    if status.phase != Some(e.phase) {
        problems.push(format!("phase: {:?}, expected {:?}", status.phase, e.phase));
    }
    let conditions: Vec<String> = [
        AppCondition::Ready,
        AppCondition::Progressing,
        AppCondition::Degraded,
    ]
    .iter()
    .filter_map(|t| status.conditions.iter().find(|c| c.type_ == *t))
    .map(|c| format!("{}={:?}/{}", c.type_, c.status, c.reason))
    .collect();
    if conditions != e.conditions {
        problems.push(format!("conditions: {conditions:?}, expected {:?}", e.conditions));
    }
    let containers: Vec<String> = status
        .containers
        .iter()
        .map(|c| {
            let ready = if c.ready { "ready" } else { "-" };
            format!("{} {ready} r{}", short(&c.name), c.restarts)
        })
        .collect();
    if containers != e.containers {
        problems.push(format!("containers: {containers:?}, expected {:?}", e.containers));
    }
    problems
}

/// What Docker says after act ran the first round: created and started containers run
/// from `now` (health `starting` under a health check), with the aliases they were given.
fn act_on(observed: &Observed, first: &ReplicaPlan, health_check: bool) -> Observed {
    let mut after = observed.clone();
    for step in &first.steps {
        let (name, alias) = match step {
            Step::Replace { spec } | Step::Create { spec } => (
                &spec.name,
                spec.network
                    .as_ref()
                    .is_some_and(|n| n.unhashed_aliases.iter().any(|a| a == ALIAS)),
            ),
            Step::Start { container, .. } => (container, false),
            _ => continue,
        };
        let r = after.replicas.iter_mut().find(|r| &r.spec.name == name).unwrap();
        let health = health_check.then_some(Health::Starting);
        r.state = state(
            &r.spec,
            Rep::Up {
                started: 0,
                health,
                alias,
            },
        );
    }
    after
}

fn app_spec() -> ApplicationSpec {
    serde_json::from_str(r#"{"source":{"image":"img:1"},"destination":"default"}"#).unwrap()
}

fn case(name: &'static str, replicas: Vec<Rep>, expect: Expect) -> Case {
    Case {
        name,
        health_check: false,
        restarts: vec![0; replicas.len()],
        replicas,
        olds: Vec::new(),
        proxy_serves: true,
        rollout: Rollout::None,
        expect,
    }
}

fn expect(
    steps: &[&'static str],
    requeue: Option<Duration>,
    phase: ApplicationPhase,
    conditions: &[&'static str],
    containers: &[&'static str],
) -> Expect {
    Expect {
        steps: steps.to_vec(),
        requeue,
        phase,
        conditions: conditions.to_vec(),
        containers: containers.to_vec(),
    }
}

use ApplicationPhase::{Degraded, Progressing, Running, Stopped};

const CONVERGED: &[&str] = &[
    "Ready=True/ReplicasReady",
    "Progressing=False/RolloutComplete",
    "Degraded=False/Healthy",
];
const ROLLING_UNSERVED: &[&str] = &[
    "Ready=False/ReplicasNotReady",
    "Progressing=True/RollingUpdate",
    "Degraded=False/Healthy",
];
const ROLLING_SERVED: &[&str] = &[
    "Ready=True/PreviousVersionServing",
    "Progressing=True/RollingUpdate",
    "Degraded=False/Healthy",
];
const DEADLINE_SERVED: &[&str] = &[
    "Ready=True/PreviousVersionServing",
    "Progressing=False/HealthCheckFailed",
    "Degraded=True/HealthCheckFailed",
];
const CRASHING: &[&str] = &[
    "Ready=False/ReplicasNotReady",
    "Progressing=True/RollingUpdate",
    "Degraded=True/CrashLoopBackOff",
];

fn cases() -> Vec<Case> {
    let up = |started, health, alias| Rep::Up {
        started,
        health,
        alias,
    };
    vec![
        // Rollout steps.
        case(
            "a first deploy creates every replica with the alias",
            vec![Rep::Missing, Rep::Missing],
            expect(
                &["create 0 +alias", "create 1 +alias", "write"],
                ms(2000),
                Progressing,
                ROLLING_UNSERVED,
                &["0 - r0", "1 - r0"],
            ),
        ),
        Case {
            olds: vec![true],
            ..case(
                "a new config creates new replicas beside the old, which keep serving",
                vec![Rep::Missing],
                expect(
                    &["create 0", "write"],
                    ms(2000),
                    Progressing,
                    ROLLING_SERVED,
                    &["0 - r0", "old-0 ready r0"],
                ),
            )
        },
        Case {
            olds: vec![true, true],
            rollout: Rollout::Since(3000),
            ..case(
                "old containers serve until every new replica is ready",
                vec![READY, up(500, None, false)],
                expect(
                    &["write"],
                    ms(1550),
                    Progressing,
                    ROLLING_SERVED,
                    &["0 ready r0", "1 - r0", "old-0 ready r0", "old-1 ready r0"],
                ),
            )
        },
        Case {
            olds: vec![true],
            proxy_serves: false,
            rollout: Rollout::Since(3000),
            ..case(
                "all new ready: routing switches first, and waits for the proxy",
                vec![up(60_000, None, false)],
                expect(
                    &["alias 0", "write", "await proxy"],
                    ms(250),
                    Running,
                    CONVERGED,
                    &["0 ready r0", "old-0 - r0"],
                ),
            )
        },
        Case {
            olds: vec![true, false],
            rollout: Rollout::Since(3000),
            ..case(
                "once the proxy routes to the new replicas the old ones are removed",
                vec![READY],
                expect(
                    &["write", "remove old-0", "remove old-1", "write"],
                    None,
                    Running,
                    CONVERGED,
                    &["0 ready r0"],
                ),
            )
        },
        case(
            "a converged app only writes its status",
            vec![READY, READY],
            expect(
                &["write"],
                None,
                Running,
                CONVERGED,
                &["0 ready r0", "1 ready r0"],
            ),
        ),
        Case {
            proxy_serves: false,
            ..case(
                "ready but not routed yet is not Ready",
                vec![READY],
                expect(
                    &["write"],
                    ms(250),
                    Running,
                    &[
                        "Ready=False/RouteNotLive",
                        "Progressing=False/RolloutComplete",
                        "Degraded=False/Healthy",
                    ],
                    &["0 ready r0"],
                ),
            )
        },
        Case {
            olds: vec![true],
            ..case(
                "scaled to zero: the old containers go and the app is stopped",
                vec![],
                expect(&["write", "remove old-0", "write"], None, Stopped, CONVERGED, &[]),
            )
        },
        // Replica replacement.
        case(
            "a container of another config under a replica's name is replaced",
            vec![Rep::OtherConfig { running: true }],
            expect(
                &["replace 0", "write"],
                ms(2000),
                Progressing,
                ROLLING_UNSERVED,
                &["0 - r0"],
            ),
        ),
        case(
            "a stopped container of another owner is replaced, with the alias",
            vec![Rep::OtherUid],
            expect(
                &["replace 0 +alias", "write"],
                ms(2000),
                Progressing,
                ROLLING_UNSERVED,
                &["0 - r0"],
            ),
        ),
        case(
            "a removed replica is created again, without the alias while another serves",
            vec![READY, Rep::Missing],
            expect(
                &["create 1", "write"],
                ms(2000),
                Progressing,
                ROLLING_SERVED,
                &["0 ready r0", "1 - r0"],
            ),
        ),
        Case {
            olds: vec![false],
            ..case(
                "the alias is given at creation when only stopped containers exist",
                vec![Rep::Missing],
                expect(
                    &["create 0 +alias", "write"],
                    ms(2000),
                    Progressing,
                    ROLLING_UNSERVED,
                    &["0 - r0", "old-0 - r0"],
                ),
            )
        },
        // Crash backoff.
        case(
            "a container that exited for the first time is started at once",
            vec![Rep::Exited {
                finished: 100,
                ran: 500,
            }],
            expect(
                &["start 0 r0", "write"],
                ms(2000),
                Progressing,
                ROLLING_UNSERVED,
                &["0 - r1"],
            ),
        ),
        Case {
            restarts: vec![1],
            ..case(
                "a second quick exit waits out backoff(1)",
                vec![Rep::Exited {
                    finished: 400,
                    ran: 500,
                }],
                expect(
                    &["wait 0 600ms", "write"],
                    ms(600),
                    Progressing,
                    ROLLING_UNSERVED,
                    &["0 - r1"],
                ),
            )
        },
        Case {
            restarts: vec![2],
            ..case(
                "after backoff(2) it starts again and is a crash loop",
                vec![Rep::Exited {
                    finished: 2500,
                    ran: 500,
                }],
                expect(
                    &["start 0 r2", "write logs of 0 into Degraded"],
                    ms(2000),
                    Degraded,
                    CRASHING,
                    &["0 - r3"],
                ),
            )
        },
        Case {
            restarts: vec![1],
            ..case(
                "the second restart makes a crash loop",
                vec![Rep::Exited {
                    finished: 1000,
                    ran: 500,
                }],
                expect(
                    &["start 0 r1", "write logs of 0 into Degraded"],
                    ms(2000),
                    Degraded,
                    CRASHING,
                    &["0 - r2"],
                ),
            )
        },
        Case {
            restarts: vec![3],
            ..case(
                "waiting in a crash loop is still a crash loop",
                vec![Rep::Exited {
                    finished: 1000,
                    ran: 500,
                }],
                expect(
                    &["wait 0 3000ms", "write logs of 0 into Degraded"],
                    ms(3000),
                    Degraded,
                    CRASHING,
                    &["0 - r3"],
                ),
            )
        },
        Case {
            restarts: vec![5],
            ..case(
                "a run of min_ready resets the count: started at once",
                vec![Rep::Exited {
                    finished: 100,
                    ran: 2000,
                }],
                expect(
                    &["start 0 r0", "write"],
                    ms(2000),
                    Progressing,
                    ROLLING_UNSERVED,
                    &["0 - r1"],
                ),
            )
        },
        Case {
            restarts: vec![4],
            ..case(
                "a created container is started without counting a restart",
                vec![Rep::Created],
                expect(
                    &["start 0 r4", "write logs of 0 into Degraded"],
                    ms(2000),
                    Degraded,
                    CRASHING,
                    &["0 - r4"],
                ),
            )
        },
        Case {
            restarts: vec![3],
            ..case(
                "a running replica keeps its count and is no crash loop",
                vec![READY],
                expect(&["write"], None, Running, CONVERGED, &["0 ready r3"]),
            )
        },
        // Readiness.
        Case {
            health_check: true,
            ..case(
                "with a health check, healthy is ready at once",
                vec![up(100, Some(Health::Healthy), true)],
                expect(&["write"], None, Running, CONVERGED, &["0 ready r0"]),
            )
        },
        Case {
            health_check: true,
            ..case(
                "with a health check, starting is not ready: look again in a second",
                vec![up(60_000, Some(Health::Starting), false)],
                expect(&["write"], ms(1000), Progressing, ROLLING_UNSERVED, &["0 - r0"]),
            )
        },
        Case {
            health_check: true,
            ..case(
                "with a health check, unhealthy is never ready however long it runs",
                vec![up(600_000, Some(Health::Unhealthy), true)],
                expect(&["write"], ms(1000), Progressing, ROLLING_UNSERVED, &["0 - r0"]),
            )
        },
        case(
            "without a health check, ready after min_ready of run time",
            vec![up(1500, None, false)],
            expect(&["write"], ms(550), Progressing, ROLLING_UNSERVED, &["0 - r0"]),
        ),
        case(
            "without a health check, min_ready reached: ready, and the alias is added",
            vec![up(2000, None, false)],
            expect(&["alias 0", "write"], None, Running, CONVERGED, &["0 ready r0"]),
        ),
        // Progress deadline.
        Case {
            olds: vec![true],
            health_check: true,
            rollout: Rollout::Since(61_000),
            ..case(
                "past the deadline the rollout fails and the previous version serves",
                vec![up(61_000, Some(Health::Unhealthy), false)],
                expect(
                    &[
                        "warn HealthCheckFailed",
                        "write logs of 0 into Progressing+Degraded",
                    ],
                    ms(1000),
                    Degraded,
                    DEADLINE_SERVED,
                    &["0 - r0", "old-0 ready r0"],
                ),
            )
        },
        Case {
            olds: vec![true],
            rollout: Rollout::Failed,
            ..case(
                "a failed rollout is not warned about twice",
                vec![Rep::Exited {
                    finished: 100,
                    ran: 100,
                }],
                expect(
                    &["start 0 r0", "write logs of 0 into Progressing+Degraded"],
                    ms(2000),
                    Degraded,
                    DEADLINE_SERVED,
                    &["0 - r1", "old-0 ready r0"],
                ),
            )
        },
        Case {
            rollout: Rollout::Since(61_000),
            ..case(
                "past the deadline with nothing serving, Ready says HealthCheckFailed",
                vec![Rep::Missing],
                expect(
                    &[
                        "create 0 +alias",
                        "warn HealthCheckFailed",
                        "write logs of 0 into Progressing+Degraded",
                    ],
                    ms(2000),
                    Degraded,
                    &[
                        "Ready=False/HealthCheckFailed",
                        "Progressing=False/HealthCheckFailed",
                        "Degraded=True/HealthCheckFailed",
                    ],
                    &["0 - r0"],
                ),
            )
        },
        Case {
            olds: vec![true],
            health_check: true,
            rollout: Rollout::Since(50_000),
            ..case(
                "before the deadline the rollout goes on, and comes back at the deadline",
                vec![up(50_000, Some(Health::Unhealthy), false)],
                expect(
                    &["write"],
                    ms(1000),
                    Progressing,
                    ROLLING_SERVED,
                    &["0 - r0", "old-0 ready r0"],
                ),
            )
        },
        Case {
            rollout: Rollout::Since(59_950),
            ..case(
                "just before the deadline it comes back no sooner than in 100ms",
                vec![Rep::Exited {
                    finished: 100,
                    ran: 3000,
                }],
                expect(
                    &["start 0 r0", "write"],
                    ms(100),
                    Progressing,
                    ROLLING_UNSERVED,
                    &["0 - r1"],
                ),
            )
        },
        Case {
            restarts: vec![2],
            rollout: Rollout::Since(61_000),
            ..case(
                "a crash loop past the deadline is reported as a crash loop",
                vec![Rep::Exited {
                    finished: 2500,
                    ran: 500,
                }],
                expect(
                    &["start 0 r2", "write logs of 0 into Degraded"],
                    ms(100),
                    Degraded,
                    CRASHING,
                    &["0 - r3"],
                ),
            )
        },
    ]
}

#[test]
fn the_decide_table() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let mut failed = Vec::new();
    for case in &cases {
        let problems = run(case);
        if problems.is_empty() {
            println!("ok: {}", case.name);
        } else {
            failed.push(format!("{}:\n  {}", case.name, problems.join("\n  ")));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

#[test]
fn every_case_has_its_own_name() {
    let cases = cases();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len());
}

#[test]
fn a_blocked_app_keeps_its_containers_and_fails() {
    let old = ApplicationStatus {
        containers: vec![AppContainer {
            name: "c".into(),
            ..AppContainer::default()
        }],
        ..ApplicationStatus::default()
    };
    let mut next = base_status(&app_spec(), &old, 3);
    blocked(
        &mut next,
        &old,
        AppReason::SecretNotFound,
        "spec.env[0]",
        3,
        now(),
    );
    assert_eq!(next.phase, Some(ApplicationPhase::Failed));
    assert_eq!(next.containers, old.containers);
    let ready = next
        .conditions
        .iter()
        .find(|c| c.type_ == AppCondition::Ready)
        .unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str(), ready.last_transition_time),
        (ConditionStatus::False, "SecretNotFound", now())
    );
}

#[test]
fn the_phase_reads_as_a_plain_string() {
    let status = ApplicationStatus {
        phase: Some(ApplicationPhase::Degraded),
        ..ApplicationStatus::default()
    };
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["phase"], "Degraded");
    let back: ApplicationStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, status);
}

#[test]
fn network_aliases_are_ready_gated_like_the_service_alias() {
    let template = template(false);
    let spec = plan::replica(&template, HASH, 0);
    let aliases = [ALIAS.to_string(), "db".to_string()];
    let observed = |rep: Rep, anything_runs: bool| Observed {
        replicas: vec![Replica {
            state: state(&spec, rep),
            spec: spec.clone(),
            index: 0,
        }],
        olds: Vec::new(),
        anything_runs,
        proxy_serves: true,
    };
    let old = ApplicationStatus::default();
    let next = base_status(&app_spec(), &old, 1);
    let add_alias = |o: &Observed| {
        let first = super::replicas(o, UID, &aliases, &old, TIMING, now());
        let inputs = RolloutInputs {
            replicas: &first,
            old: &old,
            next: &next,
            hash: HASH,
            aliases: &aliases,
            network: NET,
            generation: 1,
            git: None,
            timing: TIMING,
            now: now(),
        };
        rollout(o, inputs).steps.into_iter().find_map(|s| match s {
            Step::AddAlias { aliases, .. } => Some(aliases),
            _ => None,
        })
    };
    // Ready with the service alias but not the extra one: re-attached with all of them.
    assert_eq!(
        add_alias(&observed(READY, true)),
        Some(vec![ALIAS.to_string(), "db".to_string(), spec.name.clone()])
    );
    // Not ready yet: no alias at all.
    let starting = Rep::Up {
        started: 100,
        health: None,
        alias: false,
    };
    assert_eq!(add_alias(&observed(starting, true)), None);
    // Nothing of the app runs: a new container gets them all at creation.
    let first = super::replicas(&observed(Rep::Missing, false), UID, &aliases, &old, TIMING, now());
    assert!(matches!(
        &first.steps[..],
        [Step::Create { spec }] if spec.network.as_ref().is_some_and(|n| n.unhashed_aliases == aliases)
    ));
}

/// An app waiting for its route decided again, with nothing changed but the clock, writes
/// the status it already has: no write, so no watch event of its own (each one would run
/// the app again at once, and every Proxy of its server with it).
#[test]
fn waiting_for_the_route_rewrites_nothing() {
    let template = template(false);
    let spec = plan::replica(&template, HASH, 0);
    let observed = Observed {
        replicas: vec![Replica {
            state: state(&spec, READY),
            spec,
            index: 0,
        }],
        olds: Vec::new(),
        anything_runs: true,
        proxy_serves: false,
    };
    let aliases = [ALIAS.to_string()];
    let decide_at = |old: &ApplicationStatus, at: DateTime<Utc>| {
        let first = super::replicas(&observed, UID, &aliases, old, TIMING, at);
        let next = base_status(&app_spec(), old, 1);
        let plan = rollout(
            &observed,
            RolloutInputs {
                replicas: &first,
                old,
                next: &next,
                hash: HASH,
                aliases: &aliases,
                network: NET,
                generation: 1,
                git: None,
                timing: TIMING,
                now: at,
            },
        );
        plan.steps
            .into_iter()
            .find_map(|s| match s {
                Step::WriteStatus { status, .. } => Some(*status),
                _ => None,
            })
            .unwrap()
    };
    let first = decide_at(&ApplicationStatus::default(), now());
    let ready = first
        .conditions
        .iter()
        .find(|c| c.type_ == AppCondition::Ready)
        .unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str()),
        (ConditionStatus::False, AppReason::RouteNotLive.as_str())
    );
    // A quarter of a second later (the route poll), and much later: the same status.
    for later in [250, 1_500, 60_000] {
        let again = decide_at(&first, now() + chrono::Duration::milliseconds(later));
        assert_eq!(again, first, "{later} ms later");
    }
}
