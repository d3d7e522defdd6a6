//! Table tests of [`decide`](super::decide): a small world applies the steps to the
//! observed facts, the way the API and the children's controllers would.

use std::path::PathBuf;

use berth_compose::expand::Child;
use berth_crds::kinds::service::ServiceStatus;
use berth_crds::kinds::{DestinationSpec, ServiceSpec};
use berth_crds::meta::ConditionStatus;
use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::decide::{cleanup, decide, spec_patch};
use super::observe::{ChildFacts, ChildSpec, Found, Health, Identity, Observed, owned_by};
use super::plan::{ChildKind, Cleanup, Plan, SERVICE_LABEL, ServiceReason, Step};

const STACK: &str = r#"
services:
  web:
    image: busybox
    environment:
      PASSWORD: $SERVICE_PASSWORD_WEB
      MODE: one
    depends_on:
      db:
        condition: service_healthy
  worker:
    image: busybox
    depends_on: [web]
  db:
    image: mariadb:11
    environment:
      MYSQL_ROOT_PASSWORD: $SERVICE_PASSWORD_ROOT
      MYSQL_DATABASE: app
    volumes:
      - db-data:/var/lib/mysql
"#;

fn now() -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_000, 0).single().unwrap_or_default()
}

fn observed(compose: &str) -> Observed {
    Observed {
        id: Identity {
            namespace: "default".into(),
            name: "blog".into(),
            uid: "u1".into(),
            generation: 1,
        },
        spec: ServiceSpec {
            compose: Some(compose.to_owned()),
            destination: "local".into(),
            ..ServiceSpec::default()
        },
        host_root: Some(PathBuf::from("/srv/berth")),
        target_server: Some("localhost".into()),
        ..Observed::default()
    }
}

/// Decides until a converge plan, generating values as act would (deterministically).
fn plan(o: &mut Observed) -> (Vec<Step>, ServiceStatus) {
    for _ in 0..3 {
        match decide(o, now()) {
            Plan::Generate(g) => {
                let mut spec = g.secret.spec.clone();
                if let Some(live) = o.secrets.get(g.secret.name()) {
                    spec.data = live.spec.data.clone();
                }
                for (name, _) in &g.values {
                    spec.data
                        .entry(name.clone())
                        .or_insert_with(|| format!("gen-{name}"));
                }
                o.secrets.insert(
                    g.secret.name().to_owned(),
                    Found {
                        owned: true,
                        deleting: false,
                        spec,
                    },
                );
            }
            Plan::Converge { steps, status } => return (steps, *status),
        }
    }
    panic!("decide did not settle");
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn patched<S: serde::Serialize + serde::de::DeserializeOwned>(spec: &S, patch: &Value) -> S {
    let mut v = serde_json::to_value(spec).unwrap();
    merge(&mut v, &patch["spec"]);
    serde_json::from_value(v).unwrap()
}

fn child(kind: ChildKind, obj_name: &str, owned: bool, spec: ChildSpec) -> ChildFacts {
    ChildFacts {
        kind,
        name: obj_name.to_owned(),
        found: Found {
            owned,
            deleting: false,
            spec,
        },
        health: Health::default(),
    }
}

/// Applies `steps` as the API would; the status is stored as written.
fn apply(o: &mut Observed, steps: &[Step], status: &ServiceStatus) {
    let uid = o.id.uid.clone();
    for step in steps {
        match step {
            Step::CreateSecret(s) => {
                let f = Found {
                    owned: owned_by(s.as_ref(), &uid),
                    deleting: false,
                    spec: s.spec.clone(),
                };
                o.secrets.insert(s.name().to_owned(), f);
            }
            Step::PatchSecret { name, patch } => {
                let s = o.secrets.get_mut(name).unwrap();
                s.spec = patched(&s.spec, patch);
            }
            Step::DeleteSecret { name } => drop(o.secrets.remove(name)),
            Step::CreateDestination(d) => {
                assert!(owned_by(d.as_ref(), &uid));
                o.destination = Some(Found {
                    owned: true,
                    deleting: false,
                    spec: d.spec.clone(),
                });
            }
            Step::DeleteDestination { .. } => o.destination.as_mut().unwrap().deleting = true,
            Step::EnsureDirs(_) => {}
            Step::CreateApplication(a) => {
                assert!(owned_by(a.as_ref(), &uid));
                assert_eq!(a.metadata.labels[SERVICE_LABEL], "blog");
                let spec = ChildSpec::Application(Box::new(a.spec.clone()));
                o.children
                    .push(child(ChildKind::Application, a.name(), true, spec));
            }
            Step::CreateDatabase(d) => {
                assert!(owned_by(d.as_ref(), &uid));
                let spec = ChildSpec::Database(Box::new(d.spec.clone()));
                o.children.push(child(ChildKind::Database, d.name(), true, spec));
            }
            Step::PatchChild { kind, name, patch } => {
                let c = o
                    .children
                    .iter_mut()
                    .find(|c| c.kind == *kind && c.name == *name)
                    .unwrap();
                assert!(c.found.owned, "patched {name}, which the Service does not own");
                c.found.spec = match &c.found.spec {
                    ChildSpec::Application(a) => ChildSpec::Application(Box::new(patched(a.as_ref(), patch))),
                    ChildSpec::Database(d) => ChildSpec::Database(Box::new(patched(d.as_ref(), patch))),
                };
            }
            Step::DeleteChild { kind, name } => {
                let c = o
                    .children
                    .iter_mut()
                    .find(|c| c.kind == *kind && c.name == *name)
                    .unwrap();
                assert!(c.found.owned, "deleted {name}, which the Service does not own");
                c.found.deleting = true;
            }
        }
    }
    o.status = status.clone();
}

fn foreign_app() -> ChildSpec {
    let spec = serde_json::json!({"source": {"image": "busybox"}, "destination": "default"});
    ChildSpec::Application(Box::new(serde_json::from_value(spec).unwrap()))
}

fn set_health(o: &mut Observed, name: &str, ready: bool, started: bool) {
    let c = o.children.iter_mut().find(|c| c.name == name).unwrap();
    c.health = Health {
        ready,
        started,
        reason: (!ready).then(|| "ReplicasNotReady".to_owned()),
    };
}

/// Converges `o` until every member exists and is ready.
fn settle(o: &mut Observed) {
    for _ in 0..10 {
        let (steps, status) = plan(o);
        apply(o, &steps, &status);
        let names: Vec<String> = o.children.iter().map(|c| c.name.clone()).collect();
        for n in names {
            set_health(o, &n, true, true);
        }
        o.children.retain(|c| !c.found.deleting);
        if steps.is_empty() {
            return;
        }
    }
    panic!("did not settle");
}

fn creates(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::CreateApplication(a) => Some(a.name().to_owned()),
            Step::CreateDatabase(d) => Some(d.name().to_owned()),
            _ => None,
        })
        .collect()
}

fn member<'a>(s: &'a ServiceStatus, name: &str) -> &'a berth_crds::kinds::service::ServiceMember {
    s.services.iter().find(|m| m.name == name).unwrap()
}

fn ready(s: &ServiceStatus) -> (ConditionStatus, String) {
    let c = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    (c.status, c.reason.clone())
}

#[test]
fn start_order_waits_for_each_dependency_as_asked() {
    let mut o = observed(STACK);
    let (steps, status) = plan(&mut o);
    // The Destination and the generated Secret come first, then the login Secret, then
    // the only member without dependencies.
    assert!(
        matches!(&steps[0], Step::CreateDestination(d) if d.name() == "svc-default-blog"
        && d.spec == DestinationSpec { server: "localhost".into(), network: "berth-svc-default-blog".into() })
    );
    assert!(matches!(&steps[1], Step::PatchSecret { name, .. } if name == "blog-generated"));
    assert!(matches!(&steps[2], Step::CreateSecret(s) if s.name() == "blog-db-login"));
    assert_eq!(creates(&steps), ["blog-db"]);
    assert_eq!(
        member(&status, "web").reason.as_deref(),
        Some("Waiting: db (service_healthy)")
    );
    assert_eq!(
        member(&status, "worker").reason.as_deref(),
        Some("Waiting: web (service_started)")
    );
    assert_eq!(
        member(&status, "db").reason.as_deref(),
        Some("Creating: Database \"blog-db\"")
    );
    assert_eq!(status.members.as_deref(), Some("0/3"));
    assert_eq!(
        ready(&status),
        (ConditionStatus::False, ServiceReason::MembersNotReady.to_string())
    );
    apply(&mut o, &steps, &status);

    let table: &[(&str, bool, bool, &[&str])] = &[
        ("db created, not started: web waits", false, false, &[]),
        ("db runs but is not healthy: web still waits", false, true, &[]),
        ("db healthy: web is created", true, true, &["blog-web"]),
    ];
    for (what, db_ready, db_started, want) in table {
        set_health(&mut o, "blog-db", *db_ready, *db_started);
        let (steps, status) = plan(&mut o);
        assert_eq!(creates(&steps), *want, "{what}");
        apply(&mut o, &steps, &status);
    }
    let (steps, status) = plan(&mut o);
    assert!(creates(&steps).is_empty(), "worker waits for web to start");
    assert_eq!(
        member(&status, "worker").reason.as_deref(),
        Some("Waiting: web (service_started)")
    );
    set_health(&mut o, "blog-web", false, true);
    let (steps, _) = plan(&mut o);
    assert_eq!(
        creates(&steps),
        ["blog-worker"],
        "service_started: a running web is enough"
    );
}

#[test]
fn a_settled_service_makes_no_writes_and_is_ready() {
    let mut o = observed(STACK);
    settle(&mut o);
    let (steps, status) = plan(&mut o);
    assert_eq!(steps, []);
    assert_eq!(
        status, o.status,
        "the status is unchanged: no status write either"
    );
    assert_eq!(status.members.as_deref(), Some("3/3"));
    assert_eq!(
        ready(&status),
        (ConditionStatus::True, ServiceReason::MembersReady.to_string())
    );
    assert_eq!(status.observed_generation, Some(1));
    let names: Vec<&str> = status.services.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["web", "worker", "db"], "compose order");
    assert_eq!(member(&status, "db").kind, "Database");
    assert_eq!(member(&status, "web").object, "blog-web");
}

#[test]
fn generated_values_are_made_once_and_kept_across_edits() {
    let mut o = observed(STACK);
    let Plan::Generate(g) = decide(&o, now()) else {
        panic!("a first decision generates values");
    };
    let names: Vec<&str> = g.values.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["SERVICE_PASSWORD_WEB", "SERVICE_PASSWORD_ROOT"]);
    assert!(owned_by(g.secret.as_ref(), "u1"));
    settle(&mut o);
    let data = o.secrets["blog-generated"].spec.data.clone();
    assert_eq!(data["SERVICE_PASSWORD_WEB"], "gen-SERVICE_PASSWORD_WEB");
    assert_eq!(data["web.PASSWORD"], "gen-SERVICE_PASSWORD_WEB", "derived entry");
    assert_eq!(
        o.secrets["blog-db-login"].spec.data["password"],
        "gen-SERVICE_PASSWORD_ROOT"
    );

    // An edit that no longer uses a value: its derived entry goes, the value stays.
    o.spec.compose = Some(STACK.replace("PASSWORD: $SERVICE_PASSWORD_WEB", "PASSWORD: plain"));
    o.id.generation = 2;
    let (steps, _) = plan(&mut o);
    let patch = steps
        .iter()
        .find_map(|s| match s {
            Step::PatchSecret { name, patch } if name == "blog-generated" => Some(patch.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        patch,
        serde_json::json!({"spec": {"data": {"web.PASSWORD": null}}})
    );
    let stored = o.status.clone();
    apply(&mut o, &steps, &stored);
    assert_eq!(
        o.secrets["blog-generated"].spec.data["SERVICE_PASSWORD_WEB"],
        "gen-SERVICE_PASSWORD_WEB"
    );
    // Used again: the same value comes back, nothing is generated.
    o.spec.compose = Some(STACK.to_owned());
    assert!(matches!(decide(&o, now()), Plan::Converge { .. }));
}

#[test]
fn a_changed_member_alone_is_patched_with_what_changed() {
    let mut o = observed(STACK);
    settle(&mut o);
    o.spec.compose = Some(STACK.replace("MODE: one", "MODE: two"));
    o.id.generation = 2;
    let (steps, status) = plan(&mut o);
    assert_eq!(steps.len(), 1, "{steps:?}");
    let Step::PatchChild { kind, name, patch } = &steps[0] else {
        panic!("{steps:?}");
    };
    assert_eq!((*kind, name.as_str()), (ChildKind::Application, "blog-web"));
    let keys: Vec<&String> = patch["spec"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["env"], "only the changed field is sent");
    assert!(
        member(&status, "web")
            .reason
            .as_deref()
            .unwrap()
            .starts_with("Updating")
    );
    assert!(member(&status, "db").ready && member(&status, "worker").ready);
    apply(&mut o, &steps, &status);
    let (steps, _) = plan(&mut o);
    assert_eq!(steps, [], "patched to the wanted spec: nothing more");
}

#[test]
fn a_removed_member_is_deleted_and_nothing_else_is_touched() {
    let mut o = observed(STACK);
    settle(&mut o);
    let without_worker = STACK.replace("  worker:\n    image: busybox\n    depends_on: [web]\n", "");
    o.spec.compose = Some(without_worker);
    let (steps, status) = plan(&mut o);
    assert_eq!(
        steps,
        [Step::DeleteChild {
            kind: ChildKind::Application,
            name: "blog-worker".into()
        }]
    );
    assert_eq!(status.members.as_deref(), Some("2/2"));
}

#[test]
fn a_member_whose_kind_changed_is_replaced() {
    let mut o = observed(STACK);
    settle(&mut o);
    // An entrypoint makes the mariadb member an Application.
    o.spec.compose = Some(STACK.replace(
        "    image: mariadb:11\n",
        "    image: mariadb:11\n    entrypoint: [\"/bin/sh\"]\n",
    ));
    let (steps, _) = plan(&mut o);
    assert!(steps.contains(&Step::DeleteChild {
        kind: ChildKind::Database,
        name: "blog-db".into()
    }));
    assert!(steps.contains(&Step::DeleteSecret {
        name: "blog-db-login".into()
    }));
    assert!(creates(&steps).is_empty(), "created once the Database is gone");
    settle(&mut o);
    assert_eq!(
        o.child(ChildKind::Application, "blog-db").map(|c| c.found.owned),
        Some(true)
    );
    assert!(o.child(ChildKind::Database, "blog-db").is_none());
}

#[test]
fn excluded_members_do_not_hold_readiness() {
    let compose = "services:\n  a:\n    image: busybox\n    exclude_from_hc: true\n  b:\n    image: busybox\n    restart: \"no\"\n  c:\n    image: busybox\n";
    let mut o = observed(compose);
    settle(&mut o);
    set_health(&mut o, "blog-a", false, false);
    set_health(&mut o, "blog-b", false, false);
    let (_, status) = plan(&mut o);
    assert_eq!(status.members.as_deref(), Some("1/1"));
    assert_eq!(ready(&status).0, ConditionStatus::True);
    assert!(member(&status, "a").excluded && !member(&status, "a").ready);
    set_health(&mut o, "blog-c", false, true);
    let (_, status) = plan(&mut o);
    assert_eq!(
        (status.members.as_deref(), ready(&status).0),
        (Some("0/1"), ConditionStatus::False)
    );
    assert_eq!(
        member(&status, "c").reason.as_deref(),
        Some("ReplicasNotReady"),
        "the child's reason"
    );
}

/// A case of [`blocked_services_change_no_child`]: what, the change, the reason, a word of
/// the message.
type Blocked = (&'static str, fn(&mut Observed), ServiceReason, &'static str);

#[test]
fn blocked_services_change_no_child() {
    let mut settled = observed(STACK);
    settle(&mut settled);
    let before = settled.status.clone();
    let cases: &[Blocked] = &[
        (
            "a refused compose key",
            |o| {
                o.spec.compose = Some(STACK.replace(
                    "    image: busybox\n",
                    "    image: busybox\n    privileged: true\n",
                ))
            },
            ServiceReason::InvalidCompose,
            "privileged",
        ),
        (
            "yaml that does not parse",
            |o| o.spec.compose = Some("services: [".into()),
            ServiceReason::InvalidCompose,
            "spec.compose",
        ),
        (
            "no such destination",
            |o| o.target_server = None,
            ServiceReason::DestinationNotFound,
            "spec.destination",
        ),
        (
            "the destination moved to another server",
            |o| o.target_server = Some("other".into()),
            ServiceReason::DestinationMismatch,
            "other",
        ),
        (
            "the generated secret is someone else's",
            |o| o.secrets.get_mut("blog-generated").unwrap().owned = false,
            ServiceReason::SecretConflict,
            "blog-generated",
        ),
    ];
    for (what, change, reason, text) in cases {
        let mut o = settled.clone();
        change(&mut o);
        o.id.generation = 2;
        let (steps, status) = plan(&mut o);
        assert_eq!(steps, [], "{what}");
        let c = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (c.status, c.reason.as_str()),
            (ConditionStatus::False, reason.as_str()),
            "{what}"
        );
        assert!(c.message.contains(text), "{what}: {}", c.message);
        assert_eq!(
            status.services, before.services,
            "{what}: members are kept as they were"
        );
        assert_eq!(status.observed_generation, Some(2), "{what}");
    }
}

#[test]
fn objects_the_service_does_not_own_are_left_alone() {
    let mut o = observed("services:\n  web:\n    image: busybox\n");
    let spec = foreign_app();
    o.children
        .push(child(ChildKind::Application, "blog-web", false, spec.clone()));
    o.children
        .push(child(ChildKind::Application, "blog-old", false, spec));
    let (steps, status) = plan(&mut o);
    assert!(
        steps.iter().all(|s| !matches!(
            s,
            Step::CreateApplication(_) | Step::PatchChild { .. } | Step::DeleteChild { .. }
        )),
        "{steps:?}"
    );
    assert!(
        member(&status, "web")
            .reason
            .as_deref()
            .unwrap()
            .starts_with("Conflict: a Application")
    );
}

#[test]
fn relative_binds_get_their_directories_before_the_child() {
    let compose = "services:\n  web:\n    image: nginx\n    volumes:\n      - ./conf:/etc/nginx/conf.d\n      - ./site/index.html:/usr/share/nginx/html/index.html\n      - /var/log/x:/logs\n";
    let mut o = observed(compose);
    let (steps, _) = plan(&mut o);
    let at = steps
        .iter()
        .position(|s| matches!(s, Step::CreateApplication(_)))
        .unwrap();
    let root = PathBuf::from("/srv/berth/services/default/blog");
    assert_eq!(
        steps[at - 1],
        Step::EnsureDirs(vec![root.join("conf"), root.join("site")])
    );
}

#[test]
fn status_lists_urls_and_notices() {
    let compose = "services:\n  web:\n    image: nginx\n    environment:\n      - SERVICE_URL_WEB_80\n  db:\n    image: mariadb:11\n    environment:\n      MYSQL_ROOT_PASSWORD: x\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n";
    let mut o = observed(compose);
    let (_, status) = plan(&mut o);
    assert_eq!(
        status.url.as_deref(),
        Some("http://web-blog-default.127.0.0.1.sslip.io")
    );
    assert_eq!(
        member(&status, "web").urls,
        ["http://web-blog-default.127.0.0.1.sslip.io"]
    );
    assert!(
        status
            .notices
            .iter()
            .any(|n| n.starts_with("services.db.healthcheck: ")),
        "{:?}",
        status.notices
    );
}

#[test]
fn the_finalizer_deletes_children_then_the_destination() {
    let mut o = observed(STACK);
    assert_eq!(
        cleanup(&o),
        Cleanup::Done(Vec::new()),
        "apply never ran: nothing to do"
    );
    settle(&mut o);
    let foreign = foreign_app();
    o.children
        .push(child(ChildKind::Application, "blog-foreign", false, foreign));
    let Cleanup::Pending(steps) = cleanup(&o) else {
        panic!("children exist");
    };
    let mut deleted: Vec<&str> = steps
        .iter()
        .map(|s| match s {
            Step::DeleteChild { name, .. } => name.as_str(),
            other => panic!("{other:?} before the children are gone"),
        })
        .collect();
    deleted.sort_unstable();
    assert_eq!(
        deleted,
        ["blog-db", "blog-web", "blog-worker"],
        "never the foreign one"
    );
    let stored = o.status.clone();
    apply(&mut o, &steps, &stored);
    assert_eq!(
        cleanup(&o),
        Cleanup::Pending(Vec::new()),
        "children are still going"
    );
    o.children.retain(|c| !c.found.owned);
    assert_eq!(
        cleanup(&o),
        Cleanup::Done(vec![Step::DeleteDestination {
            name: "svc-default-blog".into()
        }]),
        "the children are gone: the Destination goes last"
    );
    o.destination.as_mut().unwrap().deleting = true;
    assert_eq!(cleanup(&o), Cleanup::Done(Vec::new()), "deleting already");
    o.destination.as_mut().unwrap().owned = false;
    o.destination.as_mut().unwrap().deleting = false;
    assert_eq!(cleanup(&o), Cleanup::Done(Vec::new()), "not ours: left alone");
}

#[test]
fn spec_patch_is_none_for_equal_specs() {
    let mut o = observed("services:\n  web:\n    image: busybox\n");
    let (steps, _) = plan(&mut o);
    let Some(Step::CreateApplication(a)) = steps.iter().find(|s| matches!(s, Step::CreateApplication(_)))
    else {
        panic!("{steps:?}");
    };
    let live = ChildSpec::Application(Box::new(a.spec.clone()));
    assert_eq!(
        spec_patch(&live, &Child::Application(Box::new(a.spec.clone()))),
        None
    );
}
