//! End-to-end tests of the `berth` CLI: a real `berth serve` process per test and real CLI
//! processes against it, each test on both store backends (embedded and etcd).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::server::{Backend, BerthServer, OutputExt};
use serde_json::Value;

/// Instantiates each test body twice: on the embedded store and on a private etcd.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Embedded).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let etcd = super::common::etcd::start().await;
                    super::$name(super::Backend::Etcd(etcd.endpoints())).await;
                    drop(etcd);
                }
            )*
        }
    };
}

on_both_backends!(
    apply_get_update_delete_round_trip,
    second_apply_is_unchanged_and_keeps_the_resource_version,
    field_removed_from_the_manifest_disappears,
    apply_orders_documents_by_dependency,
    one_invalid_document_applies_nothing,
    invalid_manifests_are_rejected_and_nothing_is_stored,
    get_watch_prints_added_modified_deleted_in_order,
    wait_for_ready_returns_once_status_says_so,
    wait_for_delete_returns_once_the_object_is_gone,
    diff_exits_1_with_changes_and_0_without,
    delete_by_manifest_waits_until_gone,
    prune_deletes_applied_objects_missing_from_the_manifests,
    usage_errors_exit_with_2,
    version_shows_client_and_server,
);

/// A short random suffix so that names never collide.
fn uniq(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..6])
}

/// These tests drive the CLI, and some write Applications' status by hand or count their
/// revisions: the Application controller (tested in tests/apps.rs) must not act on them.
const NO_APP_CONTROLLER: &[&str] = &["--disable-controllers", "application"];

fn project(name: &str) -> String {
    format!("apiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: {name}\nspec: {{}}\n")
}

/// An Application with `extra` appended to its spec (indented by four spaces per line).
fn app(name: &str, ns: &str, extra: &str) -> String {
    format!(
        "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  source:\n    image: busybox:stable\n  destination: local\n{extra}"
    )
}

fn docs(parts: &[String]) -> String {
    parts.join("---\n")
}

/// Writes a manifest into the server's scratch directory and returns its path.
fn manifest(s: &BerthServer, file: &str, text: &str) -> String {
    let p = s.dir().join(file);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn get_json(s: &BerthServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&s.run(&all).ok()).unwrap()
}

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

/// Lines of a child's stdout, read on a thread, taken with a deadline.
struct Lines {
    child: Child,
    rx: mpsc::Receiver<String>,
}

impl Lines {
    fn spawn(s: &BerthServer, args: &[&str]) -> Self {
        let mut child = s
            .cli()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, rx }
    }

    /// The next line, within 20 seconds.
    fn next(&self) -> String {
        match self.rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => l,
            Err(e) => panic!("no output line within 20 s ({e})"),
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child to exit and collects its output, failing after `limit`.
fn finish(child: Child, limit: Duration) -> std::process::Output {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(e) => panic!("process still running after {limit:?} ({e})"),
    }
}

async fn apply_get_update_delete_round_trip(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let file = manifest(
        &s,
        "m.yaml",
        &docs(&[project(&p), app("web", &ns, "  replicas: 2\n")]),
    );
    let out = s.run(&["apply", "-f", &file]).ok();
    assert_eq!(out, format!("project/{p} created\napplication/web created\n"));

    let yaml = s.run(&["get", "app", "web", "-n", &ns, "-o", "yaml"]).ok();
    let obj: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(obj["spec"]["replicas"], 2);
    assert_eq!(obj["metadata"]["namespace"], ns.as_str());
    assert_eq!(
        s.run(&["get", "applications", "-n", &ns, "-o", "name"]).ok(),
        "application/web\n"
    );
    let table = s.run(&["get", "apps", "-n", &ns]).ok();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header[..2], ["NAME", "REPLICAS"]);
    assert!(header.contains(&"READY") && header.contains(&"URL") && header.contains(&"AGE"));
    assert_eq!(
        lines
            .next()
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>(),
        ["web", "2"]
    );
    let all = s.run(&["get", "application", "-A"]).ok();
    assert!(all.starts_with("NAMESPACE"), "{all}");
    assert!(all.contains(&ns), "{all}");

    let file2 = manifest(
        &s,
        "m2.yaml",
        &docs(&[project(&p), app("web", &ns, "  replicas: 3\n")]),
    );
    let out = s.run(&["apply", "-f", &file2]).ok();
    assert_eq!(
        out,
        format!("project/{p} unchanged\napplication/web configured\n")
    );
    assert_eq!(
        get_json(&s, &["get", "app/web", "-n", &ns])["spec"]["replicas"],
        3
    );

    let out = s.run(&["delete", "app", "web", "-n", &ns]).ok();
    assert_eq!(out, "application/web deleted\n");
    let gone = s.run(&["get", "app", "web", "-n", &ns]);
    assert_eq!(code(&gone), Some(1));
    assert!(
        gone.err().contains("applications \"web\" not found"),
        "{}",
        gone.err()
    );
    assert!(!gone.err().contains("Api("), "no debug dumps: {}", gone.err());
}

async fn second_apply_is_unchanged_and_keeps_the_resource_version(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let secret = format!(
        "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: {ns}\nspec:\n  data:\n    token: hunter2\n"
    );
    let file = manifest(
        &s,
        "m.yaml",
        &docs(&[
            project(&p),
            secret,
            app("web", &ns, "  ports:\n    - containerPort: 8080\n"),
        ]),
    );
    s.run(&["apply", "-f", &file]).ok();
    let before = get_json(&s, &["get", "app", "web", "-n", &ns]);
    let secret_before = get_json(&s, &["get", "secret", "creds", "-n", &ns]);
    let out = s.run(&["apply", "-f", &file]).ok();
    assert_eq!(
        out,
        format!("project/{p} unchanged\nsecret/creds unchanged\napplication/web unchanged\n")
    );
    let after = get_json(&s, &["get", "app", "web", "-n", &ns]);
    assert_eq!(
        before["metadata"]["resourceVersion"],
        after["metadata"]["resourceVersion"]
    );
    assert_eq!(before, after);
    let secret_after = get_json(&s, &["get", "secret", "creds", "-n", &ns]);
    assert_eq!(
        secret_before["metadata"]["resourceVersion"],
        secret_after["metadata"]["resourceVersion"]
    );
    // Secret values stay hidden unless asked for, also in the last-applied annotation.
    assert!(!secret_after.to_string().contains("hunter2"), "{secret_after}");
    let shown = get_json(&s, &["get", "secret", "creds", "-n", &ns, "--show-secrets"]);
    assert_eq!(shown["spec"]["data"]["token"], "hunter2");
}

async fn field_removed_from_the_manifest_disappears(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let with = app("web", &ns, "  command: [\"httpd\", \"-f\"]\n  replicas: 3\n")
        .replace("  namespace:", "  labels:\n    tier: front\n  namespace:");
    let file = manifest(&s, "m.yaml", &docs(&[project(&p), with]));
    s.run(&["apply", "-f", &file]).ok();
    let obj = get_json(&s, &["get", "app", "web", "-n", &ns]);
    assert_eq!(obj["spec"]["command"][0], "httpd");
    assert_eq!(obj["metadata"]["labels"]["tier"], "front");

    let file = manifest(&s, "m.yaml", &docs(&[project(&p), app("web", &ns, "")]));
    assert_eq!(
        s.run(&["apply", "-f", &file]).ok(),
        format!("project/{p} unchanged\napplication/web configured\n")
    );
    let obj = get_json(&s, &["get", "app", "web", "-n", &ns]);
    assert!(obj["spec"].get("command").is_none(), "{obj}");
    assert_eq!(obj["spec"]["replicas"], 1, "back to the default: {obj}");
    assert!(obj["metadata"].get("labels").is_none(), "{obj}");
}

async fn apply_orders_documents_by_dependency(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let staging = format!("{p}-staging");
    let env = format!(
        "apiVersion: berth.dev/v1\nkind: Environment\nmetadata:\n  name: {staging}\nspec:\n  project: {p}\n"
    );
    // Workloads first, their Environment next, the Project last: apply reorders them.
    let file = manifest(
        &s,
        "m.yaml",
        &docs(&[
            app("web", &format!("{p}-production"), ""),
            app("api", &staging, ""),
            env,
            project(&p),
        ]),
    );
    let out = s.run(&["apply", "-f", &file]).ok();
    assert_eq!(
        out,
        format!(
            "project/{p} created\nenvironment/{staging} created\napplication/web created\napplication/api created\n"
        )
    );
    assert_eq!(
        s.run(&["get", "app", "-n", &staging, "-o", "name"]).ok(),
        "application/api\n"
    );
}

async fn one_invalid_document_applies_nothing(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let file = manifest(
        &s,
        "bad.yaml",
        &docs(&[
            project(&p),
            app("good", &ns, ""),
            app("bad", &ns, "  replicas: many\n"),
        ]),
    );
    let out = s.run(&["apply", "-f", &file]);
    assert_eq!(code(&out), Some(1), "{}", out.err());
    let err = out.err();
    assert!(
        err.contains(&format!("{file}, document 3 (Application bad)")),
        "{err}"
    );
    assert!(err.contains("spec.replicas"), "{err}");
    assert_eq!(s.run(&["get", "projects", "-o", "name"]).ok(), "");

    // A problem only the server sees (an Environment nobody creates) stops everything too.
    let file = manifest(
        &s,
        "bad2.yaml",
        &docs(&[project(&p), app("web", "nowhere-production", "")]),
    );
    let out = s.run(&["apply", "-f", &file]);
    assert_eq!(code(&out), Some(1), "{}", out.err());
    assert!(
        out.err().contains("document 2 (Application web)"),
        "{}",
        out.err()
    );
    assert!(
        out.err()
            .contains("environments \"nowhere-production\" not found"),
        "{}",
        out.err()
    );
    assert_eq!(s.run(&["get", "projects", "-o", "name"]).ok(), "");
}

async fn invalid_manifests_are_rejected_and_nothing_is_stored(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let valid = project(&p);
    let cases = [
        (
            "bad YAML",
            format!("{valid}---\nkind: [unclosed\n"),
            "document 2: invalid YAML",
        ),
        (
            "unknown kind",
            format!("{valid}---\napiVersion: berth.dev/v1\nkind: Pod\nmetadata:\n  name: x\nspec: {{}}\n"),
            "kind: Unsupported value: \"Pod\"",
        ),
        (
            "unknown field",
            docs(&[valid.clone(), app("web", &ns, "  bogus: 1\n")]),
            "spec",
        ),
        (
            "bad name",
            docs(&[valid.clone(), app("Bad_Name", &ns, "")]),
            "metadata.name",
        ),
        (
            "wrong type",
            docs(&[valid.clone(), app("web", &ns, "  replicas: [1]\n")]),
            "spec.replicas",
        ),
        (
            "missing required field",
            docs(&[
                valid.clone(),
                app("web", &ns, "").replace("  destination: local\n", ""),
            ]),
            "spec",
        ),
    ];
    for (what, text, needle) in cases {
        let file = manifest(&s, "case.yaml", &text);
        let out = s.run(&["apply", "-f", &file]);
        assert_eq!(code(&out), Some(1), "{what}: {}", out.err());
        let err = out.err();
        assert!(err.contains("case.yaml, document 2"), "{what}: {err}");
        assert!(err.contains(needle), "{what}: {err}");
        assert!(err.contains("nothing was applied"), "{what}: {err}");
        assert_eq!(s.run(&["get", "projects", "-o", "name"]).ok(), "", "{what}");
    }
    // The unknown field and the missing field are named precisely.
    let file = manifest(
        &s,
        "f.yaml",
        &docs(&[valid.clone(), app("web", &ns, "  bogus: 1\n")]),
    );
    assert!(s.run(&["apply", "-f", &file]).err().contains("bogus"));
    let file = manifest(
        &s,
        "g.yaml",
        &docs(&[valid, app("web", &ns, "").replace("  destination: local\n", "")]),
    );
    assert!(s.run(&["apply", "-f", &file]).err().contains("destination"));
}

async fn get_watch_prints_added_modified_deleted_in_order(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    s.run_stdin(&["apply", "-f", "-"], &project(&p)).ok();
    let watch = Lines::spawn(
        &s,
        &[
            "get",
            "apps",
            "-w",
            "-n",
            &ns,
            "-o",
            "name",
            "--output-watch-events",
        ],
    );
    s.run_stdin(&["apply", "-f", "-"], &app("web", &ns, "")).ok();
    assert_eq!(watch.next(), "ADDED application/web");
    s.run_stdin(&["apply", "-f", "-"], &app("web", &ns, "  replicas: 2\n"))
        .ok();
    assert_eq!(watch.next(), "MODIFIED application/web");
    s.run(&["delete", "app", "web", "-n", &ns]).ok();
    assert_eq!(watch.next(), "DELETED application/web");

    // A table watch prints the header once, then a row per change.
    s.run_stdin(&["apply", "-f", "-"], &app("api", &ns, "")).ok();
    let table = Lines::spawn(&s, &["get", "apps", "-w", "-n", &ns]);
    assert!(table.next().starts_with("NAME"));
    assert!(table.next().starts_with("api "));
    s.run_stdin(&["apply", "-f", "-"], &app("api", &ns, "  replicas: 4\n"))
        .ok();
    let row: Vec<String> = table.next().split_whitespace().map(String::from).collect();
    assert_eq!(row[..2], ["api".to_string(), "4".to_string()]);
}

/// Writes `status.conditions` of an Application through the `/status` subresource.
async fn set_ready(s: &BerthServer, ns: &str, name: &str, status: &str) {
    let url = format!(
        "{}/apis/berth.dev/v1/namespaces/{ns}/applications/{name}/status",
        s.url
    );
    let body = serde_json::json!({"status": {"conditions": [{
        "type": "Ready", "status": status, "reason": "Running", "message": "all replicas up",
        "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }]}});
    let resp = reqwest::Client::new()
        .patch(url)
        .bearer_auth(&s.token)
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

async fn wait_for_ready_returns_once_status_says_so(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    s.run_stdin(&["apply", "-f", "-"], &docs(&[project(&p), app("web", &ns, "")]))
        .ok();

    // Not ready yet: the wait runs out of time instead of returning early.
    let out = s.run(&[
        "wait",
        "app/web",
        "-n",
        &ns,
        "--for=condition=Ready",
        "--timeout=1s",
    ]);
    assert_eq!(code(&out), Some(1));
    assert!(
        out.err().contains("timed out waiting for condition Ready=True"),
        "{}",
        out.err()
    );

    let waiter = s
        .cli()
        .args([
            "wait",
            "app/web",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=60s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    set_ready(&s, &ns, "web", "False").await;
    set_ready(&s, &ns, "web", "True").await;
    let out = finish(waiter, Duration::from_secs(30)).ok();
    assert_eq!(out, "application/web condition met\n");

    let table = s.run(&["get", "apps", "-n", &ns]).ok();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[3..5], ["True", "Running"], "{table}");
    let out = s.run(&[
        "wait",
        "app",
        "web",
        "-n",
        &ns,
        "--for=condition=Ready=false",
        "--timeout=1s",
    ]);
    assert_eq!(code(&out), Some(1));
    let described = s.run(&["describe", "app", "web", "-n", &ns]).ok();
    assert!(
        described.contains("Ready   True     Running   all replicas up"),
        "{described}"
    );
    assert!(described.contains("Events:\n  <none>"), "{described}");

    // An event about the app (as a controller would record it) shows up in describe.
    let uid = get_json(&s, &["get", "app", "web", "-n", &ns])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let event = format!(
        "apiVersion: berth.dev/v1\nkind: Event\nmetadata:\n  name: web-{p}\n  labels:\n    berth.dev/involved-uid: {uid}\n\
         spec:\n  involvedObject:\n    kind: Application\n    namespace: {ns}\n    name: web\n    uid: {uid}\n\
         \x20 type: Warning\n  reason: ContainerDied\n  message: exited with code 137\n  source: test\n  count: 3\n\
         \x20 firstTimestamp: \"2026-01-01T12:00:00Z\"\n  lastTimestamp: \"2026-01-01T12:05:00Z\"\n"
    );
    s.run_stdin(&["apply", "-f", "-"], &event).ok();
    let described = s.run(&["describe", "app", "web", "-n", &ns]).ok();
    let row = described
        .lines()
        .find(|l| l.contains("ContainerDied"))
        .unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..3], ["Warning", "ContainerDied", "3"], "{described}");
    assert!(row.ends_with("exited with code 137"), "{described}");
}

async fn wait_for_delete_returns_once_the_object_is_gone(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    s.run_stdin(&["apply", "-f", "-"], &docs(&[project(&p), app("web", &ns, "")]))
        .ok();
    let out = s.run(&["wait", "app/web", "-n", &ns, "--for=delete", "--timeout=1s"]);
    assert_eq!(code(&out), Some(1), "still there: the wait times out");
    let waiter = s
        .cli()
        .args(["wait", "app/web", "-n", &ns, "--for=delete", "--timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    s.run(&["delete", "app/web", "-n", &ns]).ok();
    assert_eq!(
        finish(waiter, Duration::from_secs(30)).ok(),
        "application/web deleted\n"
    );
    // Already gone: returns at once.
    s.run(&["wait", "app/web", "-n", &ns, "--for=delete", "--timeout=5s"])
        .ok();
}

async fn diff_exits_1_with_changes_and_0_without(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let file = manifest(
        &s,
        "m.yaml",
        &docs(&[project(&p), app("web", &ns, "  replicas: 2\n")]),
    );
    let new = s.run(&["diff", "-f", &file]);
    assert_eq!(code(&new), Some(1), "{}", new.err());
    assert!(new.out().contains("+++ merged/"), "{}", new.out());
    assert_eq!(
        s.run(&["get", "projects", "-o", "name"]).ok(),
        "",
        "diff writes nothing"
    );
    s.run(&["apply", "-f", &file]).ok();
    let same = s.run(&["diff", "-f", &file]);
    assert_eq!(code(&same), Some(0), "{}", same.err());
    assert_eq!(same.out(), "");

    let before = get_json(&s, &["get", "app", "web", "-n", &ns]);
    let file = manifest(
        &s,
        "m.yaml",
        &docs(&[project(&p), app("web", &ns, "  replicas: 3\n")]),
    );
    let changed = s.run(&["diff", "-f", &file]);
    assert_eq!(code(&changed), Some(1));
    let text = changed.out();
    assert!(text.contains(&format!("--- live/{ns}/application/web")), "{text}");
    assert!(
        text.contains("-  replicas: 2") && text.contains("+  replicas: 3"),
        "{text}"
    );
    assert_eq!(get_json(&s, &["get", "app", "web", "-n", &ns]), before);
}

async fn delete_by_manifest_waits_until_gone(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let file = manifest(&s, "m.yaml", &docs(&[app("web", &ns, ""), project(&p)]));
    s.run(&["apply", "-f", &file]).ok();
    let out = s.run(&["delete", "-f", &file, "--wait"]).ok();
    assert_eq!(out, format!("application/web deleted\nproject/{p} deleted\n"));
    assert_eq!(s.run(&["get", "projects", "-o", "name"]).ok(), "");
    let again = s.run(&["delete", "-f", &file]);
    assert_eq!(code(&again), Some(1));
    s.run(&["delete", "-f", &file, "--ignore-not-found"]).ok();
}

async fn prune_deletes_applied_objects_missing_from_the_manifests(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let p = uniq("p");
    let ns = format!("{p}-production");
    let run = uniq("run");
    let labelled = |name: &str| {
        app(name, &ns, "").replace(
            "  namespace:",
            &format!("  labels:\n    run: {run}\n  namespace:"),
        )
    };
    let file = manifest(
        &s,
        "m.yaml",
        &docs(&[project(&p), labelled("a"), labelled("b"), app("c", &ns, "")]),
    );
    s.run(&["apply", "-f", &file]).ok();
    // An object with the label that apply never wrote is not apply's to prune.
    let url = format!("{}/apis/berth.dev/v1/namespaces/{ns}/applications", s.url);
    let manual: Value = serde_yaml::from_str(&labelled("manual")).unwrap();
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(&s.token)
        .json(&manual)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    let file = manifest(&s, "m.yaml", &docs(&[project(&p), labelled("a")]));
    let selector = format!("run={run}");
    let out = s.run(&["apply", "-f", &file, "--prune", "-l", &selector]).ok();
    assert_eq!(
        out,
        format!("project/{p} unchanged\napplication/a unchanged\napplication/b pruned\n")
    );
    let names = s.run(&["get", "apps", "-n", &ns, "-o", "name"]).ok();
    assert_eq!(names, "application/a\napplication/c\napplication/manual\n");
    let no_selector = s.run(&["apply", "-f", &file, "--prune"]);
    assert_eq!(code(&no_selector), Some(2));
}

async fn usage_errors_exit_with_2(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let out = s.run(&["get", "pods"]);
    assert_eq!(code(&out), Some(2));
    assert!(out.err().contains("unknown kind \"pods\""), "{}", out.err());
    let out = s.run(&["get", "apps"]);
    assert_eq!(code(&out), Some(2));
    assert!(
        out.err().contains("namespaced kind: use -n ENVIRONMENT or -A"),
        "{}",
        out.err()
    );
    assert_eq!(code(&s.run(&["get"])), Some(2));
    assert_eq!(
        code(&s.run(&["wait", "app/web", "-n", "x", "--for=ready"])),
        Some(2)
    );
    // Cluster-scoped kinds need no namespace; short and plural forms resolve.
    for kind in ["proj", "projects", "Project", "envs", "environment"] {
        s.run(&["get", kind]).ok();
    }
}

async fn version_shows_client_and_server(backend: Backend) {
    let s = BerthServer::start(backend, NO_APP_CONTROLLER);
    let v = env!("CARGO_PKG_VERSION");
    let out = s.run(&["version"]).ok();
    assert_eq!(out, format!("Client Version: {v}\nServer Version: {v}\n"));
    let offline = s
        .cli()
        .args(["version", "--server", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(offline.status.success());
    assert_eq!(offline.out(), format!("Client Version: {v}\n"));
}
