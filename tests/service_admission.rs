//! Service admission and display through a real `berth serve` (embedded store, no
//! controllers, no Docker): a Service that does not expand is refused with 422 Invalid on
//! create, update and dry run, naming the compose service and key; one that expands passes a
//! dry run and stores nothing; `berth get svc` / `berth describe svc` show the members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    http::{Client, collection, object},
    server::{Backend, BerthServer, OutputExt},
};
use serde_json::{Value, json};

/// No controller acts (the Service controller would expand and create children) and no
/// Docker daemon is reached.
const NO_CONTROLLERS: &[&str] = &[
    "--disable-controllers",
    "server,destination,application,database,proxy,backup,gitrepository,service",
    "--docker",
    "unix:///nonexistent/berth-test/docker.sock",
];

const PRIVILEGED: &str =
    "services:\n  web:\n    image: nginx:1.27\n  agent:\n    image: busybox\n    privileged: true\n";
const GOOD: &str = "services:\n  web:\n    image: nginx:1.27\n    environment:\n      - SERVICE_URL_WEB_80\n      - PASSWORD=$SERVICE_PASSWORD_WEB\n    volumes:\n      - ./html:/usr/share/nginx/html:ro\n  cache:\n    image: redis:7\n";

/// A server (with `extra` arguments) and a fresh Environment in it.
async fn start(extra: &[&str]) -> (BerthServer, Client, String) {
    let args: Vec<&str> = NO_CONTROLLERS.iter().chain(extra).copied().collect();
    let server = tokio::task::block_in_place(|| BerthServer::start(Backend::Embedded, &args));
    let client = Client::new(&server.url, Some(&server.token));
    let p = format!("p{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    client
        .create(
            &collection(None, "projects"),
            &json!({"apiVersion": "berth.dev/v1", "kind": "Project", "metadata": {"name": p}, "spec": {}}),
        )
        .await;
    (server, client, format!("{p}-production"))
}

fn service(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
}

fn compose(ns: &str, name: &str, text: &str) -> Value {
    service(ns, name, json!({"destination": "default", "compose": text}))
}

/// Asserts a 422 Invalid whose message and one cause at `field` name every `words`.
fn assert_invalid(code: u16, body: &Value, field: &str, words: &[&str]) {
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid", "{body}");
    let message = body["message"].as_str().unwrap();
    let causes = body["details"]["causes"].as_array().unwrap();
    let cause = causes
        .iter()
        .find(|c| c["field"] == field && words.iter().all(|w| c["message"].as_str().unwrap().contains(w)))
        .unwrap_or_else(|| panic!("no cause at {field} naming {words:?}: {body}"));
    for w in words {
        assert!(message.contains(w), "message does not name {w:?}: {message}");
    }
    assert!(
        !cause["message"].as_str().unwrap().starts_with(field),
        "the field is not repeated in the cause: {cause}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_is_refused_at_apply_and_at_dry_run() {
    let host_root = tempfile::tempdir().unwrap();
    let (s, c, ns) = start(&["--host-root", host_root.path().to_str().unwrap()]).await;
    let services = collection(Some(&ns), "services");
    let bad = compose(&ns, "stack", PRIVILEGED);

    let (code, body) = c.post(&format!("{services}?dryRun=All"), &bad).await;
    assert_invalid(code, &body, "spec.compose", &["services.agent.privileged"]);
    let (code, body) = c.post(&services, &bad).await;
    assert_invalid(code, &body, "spec.compose", &["services.agent.privileged"]);
    assert_eq!(c.get(&object(Some(&ns), "services", "stack")).await.0, 404);

    // The CLI shows the server's reason and exits 1.
    let manifest = serde_yaml::to_string(&bad).unwrap();
    let out = tokio::task::block_in_place(|| s.run_stdin(&["apply", "-f", "-"], &manifest));
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(out.err().contains("services.agent.privileged"), "{}", out.err());
    let out =
        tokio::task::block_in_place(|| s.run_stdin(&["apply", "--dry-run=server", "-f", "-"], &manifest));
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(out.err().contains("services.agent.privileged"), "{}", out.err());

    // An update that makes a stored Service privileged is refused too, and changes nothing.
    let stored = c.create(&services, &compose(&ns, "stack", GOOD)).await;
    let path = object(Some(&ns), "services", "stack");
    let patch = json!({"spec": {"compose": PRIVILEGED}});
    let (code, body) = c.patch(&format!("{path}?dryRun=All"), &patch).await;
    assert_invalid(code, &body, "spec.compose", &["services.agent.privileged"]);
    let (code, body) = c.patch(&path, &patch).await;
    assert_invalid(code, &body, "spec.compose", &["services.agent.privileged"]);
    let (_, now) = c.get(&path).await;
    assert_eq!(
        now["metadata"]["resourceVersion"],
        stored["metadata"]["resourceVersion"]
    );
    assert_eq!(now["spec"]["compose"], GOOD);

    // Metadata-only updates of a stored Service are not expanded again.
    let (code, body) = c
        .patch(&path, &json!({"metadata": {"labels": {"tier": "web"}}}))
        .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_compose_passes_a_dry_run_and_nothing_is_stored() {
    let host_root = tempfile::tempdir().unwrap();
    let root = host_root.path().to_str().unwrap().to_owned();
    let (_s, c, ns) = start(&["--host-root", &root]).await;
    let services = collection(Some(&ns), "services");

    let (code, body) = c
        .post(&format!("{services}?dryRun=All"), &compose(&ns, "site", GOOD))
        .await;
    assert!(code == 200 || code == 201, "{code}: {body}");
    assert_eq!(body["spec"]["compose"], GOOD);
    assert_eq!(c.get(&object(Some(&ns), "services", "site")).await.0, 404);
    assert!(c.names(&services).await.is_empty());

    // With a host root, absolute bind sources outside it are refused, naming the member.
    let outside =
        "services:\n  clock:\n    image: busybox\n    volumes:\n      - /etc/localtime:/etc/localtime:ro\n";
    let (code, body) = c
        .post(&format!("{services}?dryRun=All"), &compose(&ns, "clock", outside))
        .await;
    assert_invalid(
        code,
        &body,
        "spec.compose",
        &["services.clock", "/etc/localtime", "host root"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reason_is_named_at_its_field() {
    // Started without --host-root: relative bind sources have nowhere to go.
    let (_s, c, ns) = start(&[]).await;
    let dry = format!("{}?dryRun=All", collection(Some(&ns), "services"));

    let (code, body) = c.post(&dry, &compose(&ns, "site", GOOD)).await;
    assert_invalid(
        code,
        &body,
        "spec.compose",
        &["services.web", "volumes[0]", "--host-root"],
    );

    let host = "services:\n  web:\n    image: nginx\n    network_mode: host\n    pid: host\n";
    let (code, body) = c.post(&dry, &compose(&ns, "site", host)).await;
    assert_invalid(code, &body, "spec.compose", &["services.web.network_mode"]);
    assert_invalid(code, &body, "spec.compose", &["services.web.pid"]);

    let unset =
        "services:\n  web:\n    image: nginx\n    environment:\n      A: ${NEEDED:?set NEEDED first}\n";
    let (code, body) = c.post(&dry, &compose(&ns, "site", unset)).await;
    assert_invalid(code, &body, "spec.compose", &["set NEEDED first"]);

    let domains = json!({
        "destination": "default",
        "compose": "services:\n  web:\n    image: nginx\n",
        "domains": [{"service": "nope", "host": "x.example.com"}],
    });
    let (code, body) = c.post(&dry, &service(&ns, "site", domains)).await;
    assert_invalid(code, &body, "spec.domains[0].service", &["\"nope\""]);

    let template = json!({"destination": "default", "template": {"name": "no-such-template"}});
    let (code, body) = c.post(&dry, &service(&ns, "site", template)).await;
    assert_invalid(code, &body, "spec.template.name", &["no-such-template"]);

    let good_template = json!({"destination": "default", "template": {"name": "uptime-kuma"}});
    let (code, body) = c.post(&dry, &service(&ns, "site", good_template)).await;
    assert!(code == 200 || code == 201, "{code}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_describe_show_the_members() {
    let (s, c, ns) = start(&[]).await;
    let text = "services:\n  web:\n    image: nginx:1.27\n  cache:\n    image: redis:7\n";
    c.create(&collection(Some(&ns), "services"), &compose(&ns, "shop", text))
        .await;
    let status = json!({"status": {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "False", "reason": "MembersNotReady",
                        "message": "1 of 2 members ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "members": "1/2",
        "url": "https://shop.example.com",
        "services": [
            {"name": "web", "kind": "Application", "object": "shop-web", "ready": true,
             "urls": ["https://shop.example.com"]},
            {"name": "cache", "kind": "Application", "object": "shop-cache", "ready": false,
             "reason": "Starting"},
        ],
        "notices": ["services.web.container_name: berth names its containers"],
    }});
    let path = format!("{}/status", object(Some(&ns), "services", "shop"));
    let (code, body) = c.patch(&path, &status).await;
    assert_eq!(code, 200, "{body}");

    let table = tokio::task::block_in_place(|| s.run(&["get", "svc", "-n", &ns]).ok());
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // STATUS (the Ready condition's message) comes with every kind that has a Ready column.
    assert_eq!(
        header,
        ["NAME", "TEMPLATE", "MEMBERS", "READY", "STATUS", "URL", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "shop", "{table}");
    assert!(row.contains(&"1/2") && row.contains(&"False"), "{table}");
    assert!(row.contains(&"https://shop.example.com"), "{table}");

    let text = tokio::task::block_in_place(|| s.run(&["describe", "svc", "shop", "-n", &ns]).ok());
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "Members:")
        .unwrap_or_else(|| panic!("{text}"));
    let cells = |i: usize| lines[at + i].split_whitespace().collect::<Vec<_>>();
    assert_eq!(
        cells(1),
        ["Name", "Kind", "Object", "Ready", "Reason", "URLs"],
        "{text}"
    );
    assert_eq!(
        cells(2),
        [
            "web",
            "Application",
            "shop-web",
            "True",
            "https://shop.example.com"
        ],
        "{text}"
    );
    assert_eq!(
        cells(3),
        ["cache", "Application", "shop-cache", "False", "Starting"],
        "{text}"
    );
    let notices = lines
        .iter()
        .position(|l| *l == "Notices:")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        lines[notices + 1].trim(),
        "services.web.container_name: berth names its containers"
    );
    assert!(text.contains("MembersNotReady"), "{text}");
}
