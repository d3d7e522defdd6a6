//! End-to-end tests of the HTTP API: a real `berth serve` on each store backend, driven over
//! HTTP with `reqwest`.
//!
//! Every test body is an `async fn(Fixture)` instantiated twice by [`both_backends!`]: on the
//! embedded store and on a private etcd. Each instance runs its own server (and etcd), so
//! tests are hermetic and run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use berth_crds::store::Store;
use common::{
    etcd::EtcdServer,
    http::{Client, Next, WAIT, Watch, collection, eventually, object},
    server::{Backend, BerthServer},
};
use futures::StreamExt;
use serde_json::{Value, json};

/// Which store a test instance runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Embedded,
    Etcd,
}

/// The store side of one test instance; keeps its etcd alive until the test ends.
struct Fixture {
    kind: Kind,
    etcd: Option<EtcdServer>,
}

impl Fixture {
    async fn new(kind: Kind) -> Self {
        let etcd = match kind {
            Kind::Embedded => None,
            Kind::Etcd => Some(common::etcd::start().await),
        };
        Self { kind, etcd }
    }

    fn backend(&self) -> Backend {
        match &self.etcd {
            Some(etcd) => Backend::Etcd(etcd.endpoints()),
            None => Backend::Embedded,
        }
    }

    /// Starts a server with extra `serve` arguments and returns it with an admin client.
    fn start(&self, args: &[&str]) -> (BerthServer, Client) {
        let backend = self.backend();
        let server = tokio::task::block_in_place(|| BerthServer::start(backend, args));
        let client = Client::new(&server.url, Some(&server.token));
        (server, client)
    }
}

/// `restart_hard` waits for readiness with blocking sleeps: keep it off the async workers.
fn restart(server: &mut BerthServer) -> Client {
    tokio::task::block_in_place(|| server.restart_hard());
    Client::new(&server.url, Some(&server.token))
}

/// Runs each named `async fn(Fixture)` as two tests: `<name>::embedded` and `<name>::etcd`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                super::$name(super::Fixture::new(super::Kind::Embedded).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn etcd() {
                super::$name(super::Fixture::new(super::Kind::Etcd).await).await;
            }
        }
    )*};
}

both_backends!(
    crud,
    status_subresource,
    validation,
    admission,
    host_paths,
    dry_run,
    finalizers,
    owner_cascade,
    owner_cascade_across_restart,
    watch,
    watch_bookmarks,
    watch_after_compaction,
    auth,
    restart_keeps_everything,
    graceful_shutdown,
);

// ---------------------------------------------------------------------------------------
// Objects

fn project(name: &str) -> Value {
    json!({"apiVersion": "berth.dev/v1", "kind": "Project", "metadata": {"name": name}, "spec": {}})
}

fn secret(ns: &str, name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"data": data},
    })
}

fn app(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"source": {"image": "busybox:1"}, "destination": "local"},
    })
}

/// Creates Project `name` and returns its production namespace.
async fn namespace(c: &Client, name: &str) -> String {
    c.create(&collection(None, "projects"), &project(name)).await;
    format!("{name}-production")
}

fn secrets(ns: &str) -> String {
    collection(Some(ns), "secrets")
}

fn secret_at(ns: &str, name: &str) -> String {
    object(Some(ns), "secrets", name)
}

fn rv(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap()
}

fn rv_num(obj: &Value) -> i64 {
    rv(obj).parse().unwrap()
}

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap()
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap()
}

/// Asserts an error response: code, `Status` reason, and (if given) a cause naming `field`.
#[track_caller]
fn assert_status(got: &(u16, Value), code: u16, reason: &str, field: Option<&str>) {
    let (c, body) = got;
    assert_eq!(*c, code, "unexpected code; body: {body}");
    assert_eq!(body["kind"], "Status", "not a Status: {body}");
    assert_eq!(body["reason"], reason, "unexpected reason: {body}");
    assert_eq!(body["code"], code, "Status.code: {body}");
    if let Some(field) = field {
        let causes = body["details"]["causes"].as_array().cloned().unwrap_or_default();
        assert!(
            causes.iter().any(|c| c["field"] == field),
            "no cause names {field}: {body}"
        );
    }
}

/// Waits until GET `path` answers 404.
async fn wait_gone(c: &Client, path: &str) {
    eventually(&format!("{path} is gone"), || async {
        (c.get(path).await.0 == 404).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 1. CRUD

async fn crud(f: Fixture) {
    let (_server, c) = f.start(&[]);
    let ns = namespace(&c, "crud").await;
    let path = secret_at(&ns, "s1");

    // Server-set fields in the body are ignored.
    let mut body = secret(&ns, "s1", json!({"k": "v1"}));
    body["metadata"]["uid"] = json!("client-chosen-uid");
    body["metadata"]["creationTimestamp"] = json!("2000-01-01T00:00:00Z");
    body["metadata"]["generation"] = json!(7);
    let created = c.create(&secrets(&ns), &body).await;
    assert_ne!(uid(&created), "client-chosen-uid");
    assert!(!uid(&created).is_empty());
    let ts = created["metadata"]["creationTimestamp"].as_str().unwrap();
    assert_ne!(ts, "2000-01-01T00:00:00Z");
    assert!(ts.starts_with("20") && ts.ends_with('Z'), "{ts}");
    assert_eq!(generation(&created), 1);
    assert_eq!(created["spec"]["data"]["k"], "v1");

    let (code, got) = c.get(&path).await;
    assert_eq!(code, 200);
    assert_eq!(got, created, "GET returns what POST returned");

    // A resourceVersion on create is refused, and nothing is stored.
    let mut with_rv = secret(&ns, "s-rv", json!({}));
    with_rv["metadata"]["resourceVersion"] = json!("5");
    assert_status(
        &c.post(&secrets(&ns), &with_rv).await,
        422,
        "Invalid",
        Some("metadata.resourceVersion"),
    );
    assert_eq!(c.get(&secret_at(&ns, "s-rv")).await.0, 404);

    // Labels and annotations change: same generation, new resourceVersion.
    let mut labelled = got.clone();
    labelled["metadata"]["labels"] = json!({"tier": "web"});
    labelled["metadata"]["annotations"] = json!({"note": "x"});
    let (code, v2) = c.put(&path, &labelled).await;
    assert_eq!(code, 200, "{v2}");
    assert_eq!(generation(&v2), 1);
    assert_eq!(v2["metadata"]["labels"]["tier"], "web");
    assert!(rv_num(&v2) > rv_num(&created));
    assert_eq!(uid(&v2), uid(&created));
    assert_eq!(
        v2["metadata"]["creationTimestamp"],
        created["metadata"]["creationTimestamp"]
    );

    // A spec change bumps the generation by one.
    let mut changed = v2.clone();
    changed["spec"]["data"]["k"] = json!("v2");
    let (code, v3) = c.put(&path, &changed).await;
    assert_eq!(code, 200, "{v3}");
    assert_eq!(generation(&v3), 2);
    // A merge patch of the spec bumps it again; of a label, not.
    let (code, v4) = c.patch(&path, &json!({"spec": {"data": {"k2": "x"}}})).await;
    assert_eq!(code, 200, "{v4}");
    assert_eq!(generation(&v4), 3);
    let (code, v5) = c
        .patch(&path, &json!({"metadata": {"labels": {"more": "y"}}}))
        .await;
    assert_eq!(code, 200, "{v5}");
    assert_eq!(generation(&v5), 3);

    // A stale resourceVersion conflicts, and nothing changes.
    let mut stale = created.clone();
    stale["spec"]["data"]["k"] = json!("stale");
    assert_status(&c.put(&path, &stale).await, 409, "Conflict", None);
    // A PUT without resourceVersion is invalid and names the field.
    let mut no_rv = v5.clone();
    no_rv["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    no_rv["spec"]["data"]["k"] = json!("no-rv");
    assert_status(
        &c.put(&path, &no_rv).await,
        422,
        "Invalid",
        Some("metadata.resourceVersion"),
    );
    // A patch with a stale resourceVersion precondition conflicts too.
    assert_status(
        &c.patch(
            &path,
            &json!({"metadata": {"resourceVersion": rv(&created)}, "spec": {"data": {"k": "p"}}}),
        )
        .await,
        409,
        "Conflict",
        None,
    );
    assert_eq!(c.get(&path).await.1, v5, "failed writes changed the object");

    // POST of an existing name.
    assert_status(
        &c.post(&secrets(&ns), &secret(&ns, "s1", json!({}))).await,
        409,
        "AlreadyExists",
        None,
    );
    assert_eq!(c.get(&path).await.1, v5);

    // GET of a missing object; PUT and PATCH do not create it.
    let missing = c.get(&secret_at(&ns, "nope")).await;
    assert_status(&missing, 404, "NotFound", None);
    assert_eq!(missing.1["details"]["name"], "nope");
    let nope = secret(&ns, "nope", json!({}));
    assert_status(
        &c.put(&secret_at(&ns, "nope"), &nope).await,
        404,
        "NotFound",
        None,
    );
    assert_status(
        &c.put(&format!("{}/status", secret_at(&ns, "nope")), &nope).await,
        404,
        "NotFound",
        None,
    );
    assert_status(
        &c.patch(&secret_at(&ns, "nope"), &json!({"spec": {}})).await,
        404,
        "NotFound",
        None,
    );
    assert_eq!(c.names(&secrets(&ns)).await, ["s1"]);
    // A PUT whose body names another object is invalid.
    let mut renamed = v5.clone();
    renamed["metadata"]["name"] = json!("s2");
    assert_status(
        &c.put(&path, &renamed).await,
        422,
        "Invalid",
        Some("metadata.name"),
    );
    // A PUT with another uid is a failed precondition.
    let mut other_uid = v5.clone();
    other_uid["metadata"]["uid"] = json!("not-the-uid");
    assert_status(&c.put(&path, &other_uid).await, 409, "Conflict", None);
    // Lists filter by label.
    let (_, by_label) = c.get(&format!("{}?labelSelector=tier%3Dweb", secrets(&ns))).await;
    assert_eq!(by_label["items"], json!([v5]));
    let (_, by_label) = c.get(&format!("{}?labelSelector=tier%3Ddb", secrets(&ns))).await;
    assert_eq!(by_label["items"], json!([]));
    assert_eq!(c.get(&path).await.1, v5);

    // A no-op PUT keeps the resourceVersion.
    let (code, same) = c.put(&path, &v5).await;
    assert_eq!(code, 200, "{same}");
    assert_eq!(rv(&same), rv(&v5));
    assert_eq!(c.get(&path).await.1, v5);

    // List, then delete.
    let (code, list) = c.get(&secrets(&ns)).await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "SecretList");
    assert!(list["metadata"]["resourceVersion"].as_str().is_some());
    assert_eq!(list["items"], json!([v5]));
    let (code, deleted) = c.delete(&path).await;
    assert_eq!(code, 200, "{deleted}");
    assert_status(&c.get(&path).await, 404, "NotFound", None);
    assert_status(&c.delete(&path).await, 404, "NotFound", None);
    assert!(c.names(&secrets(&ns)).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 2. Status subresource

async fn status_subresource(f: Fixture) {
    let (_server, c) = f.start(&[]);
    let ns = namespace(&c, "stat").await;
    let path = secret_at(&ns, "s");
    let status_path = format!("{path}/status");

    // Status in a create is ignored.
    let mut body = secret(&ns, "s", json!({"k": "v"}));
    body["status"] = json!({"observedGeneration": 42});
    let created = c.create(&secrets(&ns), &body).await;
    assert!(created.get("status").is_none(), "{created}");

    // PUT /status: only the status changes, never the generation.
    let mut put = created.clone();
    put["status"] = json!({"observedGeneration": 1});
    put["spec"]["data"]["k"] = json!("changed-through-status");
    put["metadata"]["labels"] = json!({"sneaky": "yes"});
    let (code, s1) = c.put(&status_path, &put).await;
    assert_eq!(code, 200, "{s1}");
    assert_eq!(s1["status"]["observedGeneration"], 1);
    assert_eq!(s1["spec"], created["spec"]);
    assert!(s1["metadata"].get("labels").is_none(), "{s1}");
    assert_eq!(generation(&s1), 1);
    assert!(rv_num(&s1) > rv_num(&created));
    assert_eq!(c.get(&path).await.1, s1);

    // PUT /status with a stale resourceVersion conflicts.
    assert_status(&c.put(&status_path, &put).await, 409, "Conflict", None);

    // PATCH /status.
    let (code, s2) = c
        .patch(
            &status_path,
            &json!({"status": {"observedGeneration": 5}, "spec": {"data": {"x": "y"}}, "metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    assert_eq!(code, 200, "{s2}");
    assert_eq!(s2["status"]["observedGeneration"], 5);
    assert_eq!(s2["spec"], created["spec"]);
    assert!(s2["metadata"].get("labels").is_none(), "{s2}");
    assert_eq!(generation(&s2), 1);

    // An invalid status is refused and nothing changes.
    assert_status(
        &c.patch(&status_path, &json!({"status": {"bogus": true}})).await,
        422,
        "Invalid",
        Some("status.bogus"),
    );
    assert_eq!(c.get(&path).await.1, s2);

    // Status in a main-resource write is ignored (spec still applies).
    let mut main = s2.clone();
    main["status"] = json!({"observedGeneration": 99});
    main["spec"]["data"]["k"] = json!("v2");
    let (code, m) = c.put(&path, &main).await;
    assert_eq!(code, 200, "{m}");
    assert_eq!(m["status"]["observedGeneration"], 5);
    assert_eq!(m["spec"]["data"]["k"], "v2");
    assert_eq!(generation(&m), 2);
    let (code, m2) = c
        .patch(&path, &json!({"status": {"observedGeneration": 100}}))
        .await;
    assert_eq!(code, 200, "{m2}");
    assert_eq!(m2["status"]["observedGeneration"], 5);
    assert_eq!(
        rv(&m2),
        rv(&m),
        "a patch of status only through the main resource is a no-op"
    );
    assert_eq!(c.get(&path).await.1["status"]["observedGeneration"], 5);
}

// ---------------------------------------------------------------------------------------
// 3. Validation

async fn validation(f: Fixture) {
    let (server, c) = f.start(&[]);
    let ns = namespace(&c, "val").await;
    let apps = collection(Some(&ns), "applications");

    let mut unknown = secret(&ns, "unknown", json!({}));
    unknown["spec"]["bogus"] = json!(1);
    let mut nested = app(&ns, "nested");
    nested["spec"]["source"]["bogus"] = json!("x");
    let wrong_type = secret(&ns, "wrong-type", json!(5));
    let mut missing = app(&ns, "missing");
    missing["spec"].as_object_mut().unwrap().remove("destination");
    let upper = secret(&ns, "Upper", json!({}));
    let long = secret(&ns, &"a".repeat(254), json!({}));
    let label_too_long = secret(&ns, &"a".repeat(64), json!({}));

    let cases: [(&str, &str, Value, &str); 7] = [
        ("unknown field", "secrets", unknown, "spec.bogus"),
        (
            "nested unknown field",
            "applications",
            nested,
            "spec.source.bogus",
        ),
        ("wrong type", "secrets", wrong_type, "spec.data"),
        (
            "missing required field",
            "applications",
            missing,
            "spec.destination",
        ),
        ("uppercase name", "secrets", upper, "metadata.name"),
        ("too long name", "secrets", long, "metadata.name"),
        (
            "name longer than a label",
            "secrets",
            label_too_long,
            "metadata.name",
        ),
    ];
    for (what, plural, body, field) in cases {
        let got = c.post(&collection(Some(&ns), plural), &body).await;
        assert_eq!(got.0, 422, "{what}: {}", got.1);
        assert_status(&got, 422, "Invalid", Some(field));
    }
    assert!(c.names(&secrets(&ns)).await.is_empty());
    assert!(c.names(&apps).await.is_empty());

    // Namespace in the body differs from the path's.
    let other = secret("other-ns", "mismatch", json!({}));
    assert_status(&c.post(&secrets(&ns), &other).await, 400, "BadRequest", None);
    // Kind in the body differs from the path's.
    assert_status(
        &c.post(&apps, &secret(&ns, "kind", json!({}))).await,
        400,
        "BadRequest",
        None,
    );
    // Unknown resource.
    let unknown_resource = c
        .post(&collection(Some(&ns), "widgets"), &secret(&ns, "w", json!({})))
        .await;
    assert_status(&unknown_resource, 404, "NotFound", None);
    assert_status(&c.get(&collection(None, "widgets")).await, 404, "NotFound", None);
    // Bad JSON and bad YAML bodies.
    let bad_json = c
        .raw(
            reqwest::Method::POST,
            &secrets(&ns),
            br#"{"kind": "Secret", "metadata": {"name": "#.to_vec(),
            "application/json",
        )
        .await;
    assert_status(&bad_json, 400, "BadRequest", None);
    let bad_yaml = c
        .raw(
            reqwest::Method::POST,
            &secrets(&ns),
            b"kind: Secret\nmetadata: [name: x\n  - {".to_vec(),
            "application/yaml",
        )
        .await;
    assert_status(&bad_yaml, 400, "BadRequest", None);
    // A valid YAML body is accepted (so the YAML failure above is about the YAML).
    let yaml =
        format!("kind: Secret\nmetadata:\n  name: from-yaml\n  namespace: {ns}\nspec:\n  data:\n    k: v\n");
    let (code, from_yaml) = c
        .raw(
            reqwest::Method::POST,
            &secrets(&ns),
            yaml.into_bytes(),
            "application/yaml",
        )
        .await;
    assert_eq!(code, 201, "{from_yaml}");
    assert_eq!(c.names(&secrets(&ns)).await, ["from-yaml"]);

    // A body over 3 MiB (declared length and chunked).
    let big = secret(&ns, "big", json!({"k": "x".repeat(3 * 1024 * 1024)}));
    assert_status(
        &c.post(&secrets(&ns), &big).await,
        413,
        "RequestEntityTooLarge",
        None,
    );
    let bytes = serde_json::to_vec(&big).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let chunked = reqwest::Client::new()
        .post(format!("{}{}", server.url, secrets(&ns)))
        .bearer_auth(&server.token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    // The server may answer before it has read everything; then the upload breaks.
    if let Ok(resp) = chunked {
        assert_eq!(resp.status().as_u16(), 413);
        let status: Value = resp.json().await.unwrap();
        assert_eq!(status["reason"], "RequestEntityTooLarge");
    }
    assert_eq!(c.names(&secrets(&ns)).await, ["from-yaml"]);

    // Only merge patches are supported; a JSON Patch (RFC 6902) is refused for its type.
    let json_patch = c
        .raw(
            reqwest::Method::PATCH,
            &secret_at(&ns, "from-yaml"),
            br#"[{"op": "replace", "path": "/spec/data/k", "value": "w"}]"#.to_vec(),
            "application/json-patch+json",
        )
        .await;
    assert_status(&json_patch, 400, "BadRequest", None);
    assert!(
        json_patch.1["message"]
            .as_str()
            .unwrap()
            .contains("unsupported patch type"),
        "{}",
        json_patch.1
    );
    let merge = c
        .raw(
            reqwest::Method::PATCH,
            &secret_at(&ns, "from-yaml"),
            br#"{"metadata": {"labels": {"m": "1"}}}"#.to_vec(),
            "application/merge-patch+json; charset=utf-8",
        )
        .await;
    assert_eq!(merge.0, 200, "{}", merge.1);
    let from_yaml = merge.1;

    // An invalid update is refused and changes nothing.
    let mut bad_update = from_yaml.clone();
    bad_update["spec"]["bogus"] = json!(true);
    assert_status(
        &c.put(&secret_at(&ns, "from-yaml"), &bad_update).await,
        422,
        "Invalid",
        Some("spec.bogus"),
    );
    assert_status(
        &c.patch(&secret_at(&ns, "from-yaml"), &json!({"spec": {"data": {"k": 3}}}))
            .await,
        422,
        "Invalid",
        None,
    );
    assert_eq!(c.get(&secret_at(&ns, "from-yaml")).await.1, from_yaml);
}

// ---------------------------------------------------------------------------------------
// 4. Admission

async fn host_paths(f: Fixture) {
    let (_server, c) = f.start(&["--host-root", "/srv/berth-root"]);
    let ns = namespace(&c, "hp").await;
    let apps = collection(Some(&ns), "applications");
    let with_volumes = |name: &str, volumes: Value| {
        let mut a = app(&ns, name);
        a["spec"]["volumes"] = volumes;
        a
    };
    let good = c
        .create(
            &apps,
            &with_volumes(
                "good",
                json!([{"hostPath": "/srv/berth-root/data", "mountPath": "/data"}]),
            ),
        )
        .await;

    // Every offending volume is named; nothing is stored.
    let refused = c
        .post(
            &apps,
            &with_volumes(
                "bad",
                json!([
                    {"hostPath": "/etc", "mountPath": "/a"},
                    {"name": "cache", "mountPath": "/b"},
                    {"hostPath": "/srv/berth-rootx", "mountPath": "/c"},
                ]),
            ),
        )
        .await;
    assert_status(&refused, 422, "Invalid", Some("spec.volumes[0].hostPath"));
    assert_status(&refused, 422, "Invalid", Some("spec.volumes[2].hostPath"));
    assert_eq!(
        refused.1["details"]["causes"].as_array().unwrap().len(),
        2,
        "{}",
        refused.1
    );
    assert!(
        refused.1["message"].as_str().unwrap().contains("/srv/berth-root"),
        "{}",
        refused.1
    );
    assert_eq!(c.names(&apps).await, ["good"]);

    // An update that moves a mount outside the root is refused and changes nothing...
    let at = object(Some(&ns), "applications", "good");
    let moved = json!({"spec": {"volumes": [{"hostPath": "/var/run/docker.sock", "mountPath": "/s"}]}});
    assert_status(
        &c.patch(&at, &moved).await,
        422,
        "Invalid",
        Some("spec.volumes[0].hostPath"),
    );
    assert_eq!(c.get(&at).await.1["spec"], good["spec"]);
    // ...and one that leaves the volumes alone passes.
    let (code, labelled) = c
        .patch(&at, &json!({"metadata": {"labels": {"tier": "web"}}}))
        .await;
    assert_eq!(code, 200, "{labelled}");
}

async fn admission(f: Fixture) {
    let (_server, c) = f.start(&[]);

    // A namespaced object in a missing Environment.
    let missing = c
        .post(&secrets("nowhere"), &secret("nowhere", "s", json!({})))
        .await;
    assert_status(&missing, 404, "NotFound", None);
    assert_eq!(missing.1["details"]["kind"], "environments");
    assert!(c.names(&collection(None, "secrets")).await.is_empty());

    // A Project brings its production Environment, owned by it.
    let p = c.create(&collection(None, "projects"), &project("adm")).await;
    let env_path = object(None, "environments", "adm-production");
    let (code, env) = c.get(&env_path).await;
    assert_eq!(code, 200, "{env}");
    assert_eq!(env["spec"]["project"], "adm");
    assert_eq!(env["spec"]["displayName"], "production");
    assert_eq!(env["metadata"]["ownerReferences"][0]["uid"], uid(&p));

    // An Environment of a missing project is refused.
    let orphan_env =
        json!({"kind": "Environment", "metadata": {"name": "ghost-staging"}, "spec": {"project": "ghost"}});
    assert_status(
        &c.post(&collection(None, "environments"), &orphan_env).await,
        422,
        "Invalid",
        Some("spec.project"),
    );

    // The production Environment cannot go while its project exists...
    assert_status(&c.delete(&env_path).await, 403, "Forbidden", None);
    assert_eq!(c.get(&env_path).await.1, env);
    // ...but can be renamed.
    let (code, renamed) = c
        .patch(&env_path, &json!({"spec": {"displayName": "prod"}}))
        .await;
    assert_eq!(code, 200, "{renamed}");
    assert_eq!(renamed["spec"]["displayName"], "prod");
    // Its project is immutable.
    assert_status(
        &c.patch(&env_path, &json!({"spec": {"project": "other"}})).await,
        422,
        "Invalid",
        Some("spec.project"),
    );

    // Content in two environments of the project.
    let staging =
        json!({"kind": "Environment", "metadata": {"name": "adm-staging"}, "spec": {"project": "adm"}});
    c.create(&collection(None, "environments"), &staging).await;
    c.create(
        &secrets("adm-production"),
        &secret("adm-production", "a", json!({})),
    )
    .await;
    c.create(&secrets("adm-staging"), &secret("adm-staging", "b", json!({})))
        .await;
    // An unrelated project's content survives the cascade.
    let other_ns = namespace(&c, "keep").await;
    c.create(&secrets(&other_ns), &secret(&other_ns, "c", json!({})))
        .await;

    // Deleting the project cascades to its production environment and its content. The
    // staging environment is not owned by the project (no ownerReference), so it stays.
    let (code, _) = c.delete(&object(None, "projects", "adm")).await;
    assert_eq!(code, 200);
    wait_gone(&c, &env_path).await;
    wait_gone(&c, &secret_at("adm-production", "a")).await;
    assert_eq!(c.get(&secret_at("adm-staging", "b")).await.0, 200);
    assert_eq!(c.get(&secret_at(&other_ns, "c")).await.0, 200);
    // Deleting an environment cascades to its content.
    let (code, _) = c.delete(&object(None, "environments", "adm-staging")).await;
    assert_eq!(code, 200);
    wait_gone(&c, &secret_at("adm-staging", "b")).await;
    assert_eq!(c.names(&collection(None, "secrets")).await, ["c"]);
    // No new content in a deleted environment.
    assert_status(
        &c.post(
            &secrets("adm-production"),
            &secret("adm-production", "late", json!({})),
        )
        .await,
        404,
        "NotFound",
        None,
    );
}

// ---------------------------------------------------------------------------------------
// 5. Dry run

async fn dry_run(f: Fixture) {
    let (_server, c) = f.start(&[]);
    let ns = namespace(&c, "dry").await;
    let path = secret_at(&ns, "s");
    let dry = |p: &str| format!("{p}?dryRun=All");

    // Create: validated and returned, not stored.
    let (code, would) = c
        .post(&dry(&secrets(&ns)), &secret(&ns, "s", json!({"k": "v"})))
        .await;
    assert_eq!(code, 201, "{would}");
    assert_eq!(would["metadata"]["name"], "s");
    assert_eq!(generation(&would), 1);
    assert_status(&c.get(&path).await, 404, "NotFound", None);
    assert!(c.names(&secrets(&ns)).await.is_empty());
    // Invalid input is still refused.
    let mut bad = secret(&ns, "s", json!({}));
    bad["spec"]["bogus"] = json!(1);
    assert_status(
        &c.post(&dry(&secrets(&ns)), &bad).await,
        422,
        "Invalid",
        Some("spec.bogus"),
    );
    // Admission still runs.
    assert_status(
        &c.post(
            &dry(&secrets("missing-env")),
            &secret("missing-env", "s", json!({})),
        )
        .await,
        404,
        "NotFound",
        None,
    );
    // A dry-run Project makes no Environment.
    let (code, _) = c
        .post(&dry(&collection(None, "projects")), &project("ghost"))
        .await;
    assert_eq!(code, 201);
    assert_eq!(c.get(&object(None, "projects", "ghost")).await.0, 404);
    assert_eq!(
        c.get(&object(None, "environments", "ghost-production")).await.0,
        404
    );

    let stored = c
        .create(&secrets(&ns), &secret(&ns, "s", json!({"k": "v"})))
        .await;

    // Replace.
    let mut changed = stored.clone();
    changed["spec"]["data"]["k"] = json!("dry");
    let (code, would) = c.put(&dry(&path), &changed).await;
    assert_eq!(code, 200, "{would}");
    assert_eq!(would["spec"]["data"]["k"], "dry");
    assert_eq!(generation(&would), 2);
    assert_eq!(c.get(&path).await.1, stored);

    // Patch.
    let (code, would) = c
        .patch(&dry(&path), &json!({"metadata": {"labels": {"a": "b"}}}))
        .await;
    assert_eq!(code, 200, "{would}");
    assert_eq!(would["metadata"]["labels"]["a"], "b");
    assert_eq!(c.get(&path).await.1, stored);
    // Status.
    let (code, would) = c
        .patch(
            &dry(&format!("{path}/status")),
            &json!({"status": {"observedGeneration": 1}}),
        )
        .await;
    assert_eq!(code, 200, "{would}");
    assert_eq!(would["status"]["observedGeneration"], 1);
    assert_eq!(c.get(&path).await.1, stored);

    // Delete, with and without finalizers.
    let (code, would) = c.delete(&dry(&path)).await;
    assert_eq!(code, 200, "{would}");
    assert_eq!(c.get(&path).await.1, stored);
    let (code, fin) = c
        .patch(&path, &json!({"metadata": {"finalizers": ["berth.dev/hold"]}}))
        .await;
    assert_eq!(code, 200, "{fin}");
    let (code, would) = c.delete(&dry(&path)).await;
    assert_eq!(code, 200, "{would}");
    assert!(would["metadata"]["deletionTimestamp"].is_string(), "{would}");
    assert_eq!(c.get(&path).await.1, fin);
    // A dry-run delete still goes through admission.
    assert_status(
        &c.delete(&dry(&object(None, "environments", &ns))).await,
        403,
        "Forbidden",
        None,
    );
    assert_eq!(c.names(&secrets(&ns)).await, ["s"]);
}

// ---------------------------------------------------------------------------------------
// 6. Finalizers

async fn finalizers(f: Fixture) {
    let (_server, c) = f.start(&[]);
    let ns = namespace(&c, "fin").await;
    let path = secret_at(&ns, "s");
    let mut body = secret(&ns, "s", json!({"k": "v"}));
    body["metadata"]["finalizers"] = json!(["berth.dev/cleanup", "berth.dev/other"]);
    let created = c.create(&secrets(&ns), &body).await;

    let (code, deleting) = c.delete(&path).await;
    assert_eq!(code, 200, "{deleting}");
    assert!(
        deleting["metadata"]["deletionTimestamp"].is_string(),
        "{deleting}"
    );
    let (code, got) = c.get(&path).await;
    assert_eq!(code, 200);
    assert_eq!(got, deleting);
    assert_eq!(generation(&got), 2, "deletion bumps the generation");
    assert_eq!(uid(&got), uid(&created));
    // A second delete changes nothing.
    let (code, again) = c.delete(&path).await;
    assert_eq!(code, 200);
    assert_eq!(rv(&again), rv(&got));

    // No new finalizers while deleting.
    assert_status(
        &c.patch(
            &path,
            &json!({"metadata": {"finalizers": ["berth.dev/cleanup", "berth.dev/other", "berth.dev/new"]}}),
        )
        .await,
        403,
        "Forbidden",
        None,
    );
    let mut put = got.clone();
    put["metadata"]["finalizers"] = json!(["berth.dev/cleanup", "berth.dev/sneaky"]);
    assert_status(&c.put(&path, &put).await, 403, "Forbidden", None);
    assert_eq!(c.get(&path).await.1, got);
    // Its deletionTimestamp cannot be cleared.
    let (code, kept) = c
        .patch(&path, &json!({"metadata": {"deletionTimestamp": null}}))
        .await;
    assert_eq!(code, 200, "{kept}");
    assert_eq!(
        kept["metadata"]["deletionTimestamp"],
        got["metadata"]["deletionTimestamp"]
    );

    // Removing one finalizer keeps the object; removing the last one deletes it.
    let (code, one) = c
        .patch(&path, &json!({"metadata": {"finalizers": ["berth.dev/other"]}}))
        .await;
    assert_eq!(code, 200, "{one}");
    assert_eq!(c.get(&path).await.0, 200);
    let (code, last) = c.patch(&path, &json!({"metadata": {"finalizers": null}})).await;
    assert_eq!(code, 200, "{last}");
    assert_status(&c.get(&path).await, 404, "NotFound", None);
    assert!(c.names(&secrets(&ns)).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 7. Owner cascade

fn owned_by(ns: &str, name: &str, owner: &Value) -> Value {
    let mut s = secret(ns, name, json!({}));
    s["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "berth.dev/v1",
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }]);
    s
}

async fn owner_cascade(f: Fixture) {
    let (_server, c) = f.start(&[]);
    let ns = namespace(&c, "own").await;
    let owner = c.create(&secrets(&ns), &secret(&ns, "owner", json!({}))).await;
    let dep = c.create(&secrets(&ns), &owned_by(&ns, "dep", &owner)).await;
    // A dependent of the dependent goes too (the cascade is transitive).
    c.create(&secrets(&ns), &owned_by(&ns, "grand", &dep)).await;
    let bystander = c
        .create(&secrets(&ns), &secret(&ns, "bystander", json!({})))
        .await;
    // A cluster-scoped owner of a namespaced dependent.
    let p = c.create(&collection(None, "projects"), &project("own2")).await;
    c.create(&secrets(&ns), &owned_by(&ns, "by-project", &p)).await;

    let (code, _) = c.delete(&secret_at(&ns, "owner")).await;
    assert_eq!(code, 200);
    wait_gone(&c, &secret_at(&ns, "dep")).await;
    wait_gone(&c, &secret_at(&ns, "grand")).await;
    let (code, _) = c.delete(&object(None, "projects", "own2")).await;
    assert_eq!(code, 200);
    wait_gone(&c, &secret_at(&ns, "by-project")).await;
    assert_eq!(c.get(&secret_at(&ns, "bystander")).await.1, bystander);
    assert_eq!(c.names(&secrets(&ns)).await, ["bystander"]);
}

async fn owner_cascade_across_restart(f: Fixture) {
    let (mut server, c) = f.start(&[]);
    let ns = namespace(&c, "rst").await;

    // (a) The owner is deleted through the API and the server is killed right after: the
    // dependent is gone once the server is back, whether or not it was collected before.
    let owner = c.create(&secrets(&ns), &secret(&ns, "owner-a", json!({}))).await;
    c.create(&secrets(&ns), &owned_by(&ns, "dep-a", &owner)).await;
    let (code, _) = c.delete(&secret_at(&ns, "owner-a")).await;
    assert_eq!(code, 200);
    let c = restart(&mut server);
    wait_gone(&c, &secret_at(&ns, "dep-a")).await;

    // (b) The owner disappears while no server runs: only the collector's start-up sweep
    // can remove the dependent.
    let owner = c.create(&secrets(&ns), &secret(&ns, "owner-b", json!({}))).await;
    let dep = c.create(&secrets(&ns), &owned_by(&ns, "dep-b", &owner)).await;
    server.kill();
    let owner_key = format!("/berth/secrets/{ns}/owner-b");
    let dep_key = format!("/berth/secrets/{ns}/dep-b");
    match f.kind {
        Kind::Embedded => {
            let dir = server.dir().join("data");
            let store = tokio::task::spawn_blocking(move || berth::store::embedded::EmbeddedStore::open(dir))
                .await
                .unwrap()
                .unwrap();
            store.delete(&owner_key, None).await.unwrap();
            let still = store.get(&dep_key).await.unwrap();
            assert!(
                still.is_some(),
                "the dependent must outlive its owner while the server is down"
            );
            store.close().await;
        }
        Kind::Etcd => {
            let endpoints = f.etcd.as_ref().unwrap().endpoints();
            let store = berth::store::etcd::EtcdStore::connect(&endpoints).await.unwrap();
            store.delete(&owner_key, None).await.unwrap();
            assert!(store.get(&dep_key).await.unwrap().is_some());
        }
    }
    let c = restart(&mut server);
    assert_eq!(c.get(&secret_at(&ns, "owner-b")).await.0, 404);
    // The dependent may already be gone by the time the server answers; if not, it goes.
    wait_gone(&c, &secret_at(&ns, "dep-b")).await;
    assert!(!uid(&dep).is_empty());
    assert!(c.names(&secrets(&ns)).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 8. Watch

async fn watch(f: Fixture) {
    let (_server, c) = f.start(&["--bookmark-interval", "200ms"]);
    let ns = namespace(&c, "w").await;
    let mut a = secret(&ns, "a", json!({}));
    a["metadata"]["labels"] = json!({"tier": "x"});
    c.create(&secrets(&ns), &a).await;
    c.create(&secrets(&ns), &secret(&ns, "b", json!({}))).await;

    // Without a resourceVersion: the current objects first, as ADDED.
    let mut w = c.watch(&secrets(&ns), "").await;
    assert_eq!(w.next_kind_name().await, ("ADDED".into(), "a".into()));
    assert_eq!(w.next_kind_name().await, ("ADDED".into(), "b".into()));
    let mut labelled = c.watch(&secrets(&ns), "labelSelector=tier%3Dx").await;
    assert_eq!(labelled.next_kind_name().await, ("ADDED".into(), "a".into()));

    // Then every change, in order.
    let created = c.create(&secrets(&ns), &secret(&ns, "c", json!({}))).await;
    let (code, modified) = c
        .patch(&secret_at(&ns, "c"), &json!({"spec": {"data": {"k": "v"}}}))
        .await;
    assert_eq!(code, 200);
    let (code, _) = c.delete(&secret_at(&ns, "c")).await;
    assert_eq!(code, 200);
    let ev = w.next().await;
    assert_eq!(
        (ev["type"].as_str(), rv(&ev["object"])),
        (Some("ADDED"), rv(&created))
    );
    let ev = w.next().await;
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"], modified);
    let ev = w.next().await;
    assert_eq!(ev["type"], "DELETED");
    assert_eq!(ev["object"]["metadata"]["name"], "c");
    let deleted_rv = rv_num(&ev["object"]);
    assert!(deleted_rv > rv_num(&modified));

    // The label selector filters: `e` does not match, `d` does.
    c.create(&secrets(&ns), &secret(&ns, "e", json!({}))).await;
    let mut d = secret(&ns, "d", json!({}));
    d["metadata"]["labels"] = json!({"tier": "x"});
    let d_created = c.create(&secrets(&ns), &d).await;
    assert_eq!(labelled.next_kind_name().await, ("ADDED".into(), "d".into()));
    assert_eq!(w.next_kind_name().await, ("ADDED".into(), "e".into()));
    assert_eq!(w.next_kind_name().await, ("ADDED".into(), "d".into()));

    // Another namespace's objects are not in this watch.
    let other = namespace(&c, "w2").await;
    c.create(&secrets(&other), &secret(&other, "elsewhere", json!({})))
        .await;

    // Bookmarks arrive on a quiet watch and carry a resourceVersion to resume from.
    let bookmark = match w.next_within(WAIT).await {
        Next::Event(ev) if ev["type"] == "BOOKMARK" => ev,
        other => panic!("expected a bookmark, got {other:?}"),
    };
    assert_eq!(bookmark["object"]["kind"], "Secret");
    assert!(rv_num(&bookmark["object"]) >= rv_num(&d_created), "{bookmark}");

    // Resuming after the MODIFIED event: the DELETED of `c` comes next, nothing before it.
    let mut resumed = c
        .watch(&secrets(&ns), &format!("resourceVersion={}", rv(&modified)))
        .await;
    let ev = resumed.next().await;
    assert_eq!(
        (ev["type"].as_str(), rv_num(&ev["object"])),
        (Some("DELETED"), deleted_rv)
    );
    assert_eq!(resumed.next_kind_name().await, ("ADDED".into(), "e".into()));
    assert_eq!(resumed.next_kind_name().await, ("ADDED".into(), "d".into()));
    // Then live changes, without repeats: the next event is exactly the new write.
    let f2 = c.create(&secrets(&ns), &secret(&ns, "f", json!({}))).await;
    let ev = resumed.next().await;
    assert_eq!((ev["type"].as_str(), rv(&ev["object"])), (Some("ADDED"), rv(&f2)));
    let ev = w.next().await;
    assert_eq!((ev["type"].as_str(), rv(&ev["object"])), (Some("ADDED"), rv(&f2)));

    // A watch of one object through a field selector.
    let mut one = c.watch(&secrets(&ns), "fieldSelector=metadata.name%3Df").await;
    assert_eq!(one.next_kind_name().await, ("ADDED".into(), "f".into()));
    c.patch(&secret_at(&ns, "b"), &json!({"metadata": {"labels": {"n": "1"}}}))
        .await;
    c.patch(&secret_at(&ns, "f"), &json!({"metadata": {"labels": {"n": "1"}}}))
        .await;
    assert_eq!(one.next_kind_name().await, ("MODIFIED".into(), "f".into()));

    // timeoutSeconds ends a watch.
    let mut short = c.watch(&secrets(&ns), "timeoutSeconds=1").await;
    let deadline = Instant::now() + WAIT;
    loop {
        match short
            .next_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Next::Event(_) => continue,
            Next::Closed => break,
            Next::TimedOut => panic!("a watch with timeoutSeconds=1 did not end"),
        }
    }
}

async fn watch_bookmarks(f: Fixture) {
    const OBJECTS: usize = 150;
    let (_server, c) = f.start(&["--bookmark-interval", "1ms"]);
    let ns = namespace(&c, "bm").await;

    // A watch of an empty collection bookmarks the revision it started from, not 0.
    let (_, list) = c.get(&secrets(&ns)).await;
    let listed = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    let mut empty = c.watch(&secrets(&ns), "").await;
    let bookmark = match empty.next_within(WAIT).await {
        Next::Event(ev) if ev["type"] == "BOOKMARK" => ev,
        other => panic!("expected a bookmark, got {other:?}"),
    };
    assert!(rv_num(&bookmark["object"]) >= listed, "{bookmark}");

    // No bookmark interrupts the initial ADDED events: the list is sorted by name, not by
    // revision, so a revision from the middle of it would skip the rest on resume. Large
    // objects, created in reverse name order, make the initial events slow to deliver.
    let padding = "p".repeat(16 * 1024);
    futures::stream::iter((0..OBJECTS).rev())
        .map(|i| {
            let (c, ns, padding) = (c.clone(), ns.clone(), padding.clone());
            async move {
                let body = secret(&ns, &format!("o{i:03}"), json!({"pad": padding}));
                c.create(&secrets(&ns), &body).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let mut w = c.watch(&secrets(&ns), "").await;
    for i in 0..OBJECTS {
        match w.next_within(WAIT).await {
            Next::Event(ev) if ev["type"] == "ADDED" => {
                assert_eq!(ev["object"]["metadata"]["name"], format!("o{i:03}"));
            }
            other => panic!("expected initial event {i} to be ADDED, got {other:?}"),
        }
    }
    let bookmark = match w.next_within(WAIT).await {
        Next::Event(ev) if ev["type"] == "BOOKMARK" => ev,
        other => panic!("expected a bookmark, got {other:?}"),
    };
    // Resuming from it replays nothing: the next event is the next write.
    let mut resumed = c
        .watch(
            &secrets(&ns),
            &format!("resourceVersion={}", rv(&bookmark["object"])),
        )
        .await;
    let marker = c.create(&secrets(&ns), &secret(&ns, "marker", json!({}))).await;
    let ev = resumed.next().await;
    assert_eq!(
        (ev["type"].as_str(), rv(&ev["object"])),
        (Some("ADDED"), rv(&marker))
    );
}

async fn watch_after_compaction(f: Fixture) {
    let args: &[&str] = match f.kind {
        Kind::Embedded => &["--history-limit", "10"],
        Kind::Etcd => &[],
    };
    let (_server, c) = f.start(args);
    let ns = namespace(&c, "gone").await;
    let first = c.create(&secrets(&ns), &secret(&ns, "s", json!({}))).await;
    let mut last = first.clone();
    for i in 0..25 {
        let (code, v) = c
            .patch(
                &secret_at(&ns, "s"),
                &json!({"spec": {"data": {"i": i.to_string()}}}),
            )
            .await;
        assert_eq!(code, 200, "{v}");
        last = v;
    }
    if f.kind == Kind::Etcd {
        let endpoints = f.etcd.as_ref().unwrap().endpoints();
        let store = berth::store::etcd::EtcdStore::connect(&endpoints).await.unwrap();
        store.compact(rv_num(&last)).await.unwrap();
    }

    // A watch from before the compaction point gets 410 Gone as an ERROR event, then ends.
    let mut old = c
        .watch(&secrets(&ns), &format!("resourceVersion={}", rv(&first)))
        .await;
    let ev = old.next().await;
    assert_eq!(ev["type"], "ERROR", "{ev}");
    assert_eq!(ev["object"]["kind"], "Status");
    assert_eq!(ev["object"]["code"], 410, "{ev}");
    assert_eq!(ev["object"]["reason"], "Gone", "{ev}");
    match old.next_within(WAIT).await {
        Next::Closed => {}
        other => panic!("a Gone watch must end, got {other:?}"),
    }

    // Relist, then watch from the list's resourceVersion: nothing replayed, new changes seen.
    let (code, list) = c.get(&secrets(&ns)).await;
    assert_eq!(code, 200);
    assert_eq!(list["items"][0], last);
    let from = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    assert!(from.parse::<i64>().unwrap() >= rv_num(&last));
    let mut w = c.watch(&secrets(&ns), &format!("resourceVersion={from}")).await;
    let (code, next) = c
        .patch(&secret_at(&ns, "s"), &json!({"spec": {"data": {"i": "after"}}}))
        .await;
    assert_eq!(code, 200);
    let ev = w.next().await;
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"], next);
}

// ---------------------------------------------------------------------------------------
// 9. Slow watchers

mod slow_watcher {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn embedded() {
        super::slow_watcher(super::Fixture::new(super::Kind::Embedded).await).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn etcd() {
        super::slow_watcher(super::Fixture::new(super::Kind::Etcd).await).await;
    }
}

/// Reads `ADDED` events of distinct secrets until the one named `end`, as a real client
/// does: when the server drops the watch (it fell behind on a loaded machine), it resumes
/// from the last revision it saw. Returns how many it saw and how often it resumed.
async fn read_all_resuming(c: &Client, ns: &str, mut w: Watch) -> (usize, usize) {
    let mut seen = std::collections::HashSet::new();
    let (mut last_rv, mut resumes) = (0, 0);
    loop {
        match w.next_within(WAIT).await {
            Next::Event(ev) if ev["type"] == "BOOKMARK" => {}
            Next::Event(ev) if ev["type"] == "ADDED" => {
                last_rv = rv_num(&ev["object"]);
                let name = ev["object"]["metadata"]["name"].as_str().unwrap().to_string();
                if name == "end" {
                    return (seen.len(), resumes);
                }
                assert!(
                    seen.insert(name),
                    "an event delivered twice: {}",
                    ev["object"]["metadata"]
                );
            }
            // Dropped as slow: the only way a watch may end early, and always announced.
            Next::Event(ev) if ev["type"] == "ERROR" && ev["object"]["code"] == 503 => {
                assert!(last_rv > 0, "dropped before the first event: {ev}");
                let end = w.next_within(WAIT).await;
                assert!(
                    matches!(end, Next::Closed),
                    "a dropped watch ends after its ERROR: {end:?}"
                );
                resumes += 1;
                w = c.watch(&secrets(ns), &format!("resourceVersion={last_rv}")).await;
            }
            other => panic!("the reading watch broke after {} events: {other:?}", seen.len()),
        }
    }
}

async fn slow_watcher(f: Fixture) {
    const BATCH: usize = 100;
    const MAX_OBJECTS: usize = 3000;
    const PARALLEL: usize = 16;
    // A queue of 8 events: once its socket buffers are full (their size depends on the
    // kernel's autotuning), the unread watch is stuck after 8 more events and is dropped
    // 1 s later. The test writes 64 KiB objects in batches until the server says so.
    let (server, c) = f.start(&["--slow-watcher-timeout", "1s", "--watch-queue", "8"]);
    let ns = namespace(&c, "slow").await;
    let dropped = || {
        std::fs::read_to_string(server.dir().join("server.log"))
            .unwrap_or_default()
            .contains("dropping a watch whose client fell behind")
    };

    // Opened and never read while the writes run.
    let mut slow = c.watch(&secrets(&ns), "").await;
    let fast = c.watch(&secrets(&ns), "").await;
    let reader = tokio::spawn({
        let (c, ns) = (c.clone(), ns.clone());
        async move { read_all_resuming(&c, &ns, fast).await }
    });

    let padding = "p".repeat(64 * 1024);
    let started = Instant::now();
    let mut written = 0;
    let mut slowest = Duration::ZERO;
    while written < MAX_OBJECTS {
        let writes = futures::stream::iter(written..written + BATCH)
            .map(|i| {
                let c = c.clone();
                let ns = ns.clone();
                let padding = padding.clone();
                async move {
                    let sent = Instant::now();
                    let (code, body) = c
                        .post(
                            &secrets(&ns),
                            &secret(&ns, &format!("o{i}"), json!({"pad": padding})),
                        )
                        .await;
                    assert_eq!(code, 201, "{body}");
                    sent.elapsed()
                }
            })
            .buffer_unordered(PARALLEL);
        // Writes never wait on the stuck watcher.
        let latencies: Vec<Duration> = writes.collect().await;
        slowest = slowest.max(latencies.iter().max().copied().unwrap_or_default());
        written += BATCH;
        // The drop comes slow-watcher-timeout (1 s) after the queue filled up.
        let deadline = Instant::now() + Duration::from_secs(3);
        while !dropped() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if dropped() {
            break;
        }
    }
    assert!(dropped(), "no watch was dropped after {written} objects");
    c.create(&secrets(&ns), &secret(&ns, "end", json!({}))).await;
    let (seen, resumes) = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the reading watcher did not receive every event in time")
        .unwrap();
    assert_eq!(seen, written, "the reading watch saw every object once");
    eprintln!(
        "slow_watcher({:?}): {written} writes in {:?} (slowest {slowest:?}); the reading watch resumed {resumes} time(s)",
        f.kind,
        started.elapsed(),
    );
    // The slow watch was dropped: after what was already buffered it ends with an ERROR
    // (503, resume from the last resourceVersion), having delivered fewer than all events.
    let mut delivered = 0;
    let mut last_rv = 0;
    let deadline = Instant::now() + WAIT;
    let error = loop {
        match slow
            .next_within(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Next::Event(ev) if ev["type"] == "ADDED" => {
                delivered += 1;
                last_rv = rv_num(&ev["object"]);
            }
            Next::Event(ev) if ev["type"] == "ERROR" => break ev,
            // Bookmarks missed while the client did not read may come in a burst.
            Next::Event(ev) if ev["type"] == "BOOKMARK" => continue,
            other => panic!("the slow watch went on after {delivered} events: {other:?}"),
        }
    };
    assert!(delivered < written + 1, "the slow watch was never dropped");
    assert_eq!(error["object"]["code"], 503, "{error}");
    assert_eq!(error["object"]["reason"], "ServiceUnavailable", "{error}");
    match slow.next_within(WAIT).await {
        Next::Closed => {}
        other => panic!("the slow watch must end after its ERROR, got {other:?}"),
    }
    // Resuming from the last delivered event yields exactly the rest.
    let mut resumed = c
        .watch(&secrets(&ns), &format!("resourceVersion={last_rv}"))
        .await;
    // The rest, and the end marker.
    for _ in delivered..written + 1 {
        assert_eq!(resumed.next().await["type"], "ADDED");
    }
    let marker = c.create(&secrets(&ns), &secret(&ns, "marker", json!({}))).await;
    assert_eq!(rv(&resumed.next().await["object"]), rv(&marker));
}

// ---------------------------------------------------------------------------------------
// 10. Auth

async fn auth(f: Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    let viewer_token = format!("viewer-{}", uuid::Uuid::new_v4().simple());
    let ops_token = format!("ops-{}", uuid::Uuid::new_v4().simple());
    std::fs::write(
        &tokens,
        format!(
            "tokens:\n  - name: viewer\n    token: {viewer_token}\n    role: viewer\n  - name: ops\n    token: {ops_token}\n    role: admin\n"
        ),
    )
    .unwrap();
    let (_server, admin) = f.start(&["--tokens-file", tokens.to_str().unwrap()]);
    let ns = namespace(&admin, "auth").await;
    let s = admin.create(&secrets(&ns), &secret(&ns, "s", json!({}))).await;
    let path = secret_at(&ns, "s");

    let anonymous = admin.with_token(None);
    let bad = admin.with_token(Some("not-a-token"));
    let viewer = admin.with_token(Some(&viewer_token));
    let ops = admin.with_token(Some(&ops_token));

    for (who, client) in [("anonymous", &anonymous), ("bad token", &bad)] {
        let got = client.get(&secrets(&ns)).await;
        assert_eq!(got.0, 401, "{who}: {}", got.1);
        assert_status(&got, 401, "Unauthorized", None);
        assert_status(&client.get(&path).await, 401, "Unauthorized", None);
        assert_status(
            &client.post(&secrets(&ns), &secret(&ns, "x", json!({}))).await,
            401,
            "Unauthorized",
            None,
        );
        assert_status(&client.delete(&path).await, 401, "Unauthorized", None);
        assert_status(
            &client.get(&format!("{}?watch=true", secrets(&ns))).await,
            401,
            "Unauthorized",
            None,
        );
    }

    // A viewer reads and watches...
    assert_eq!(viewer.get(&path).await, (200, s.clone()));
    assert_eq!(viewer.names(&secrets(&ns)).await, ["s"]);
    let mut w = viewer.watch(&secrets(&ns), "").await;
    assert_eq!(w.next_kind_name().await, ("ADDED".into(), "s".into()));
    // ...but writes nothing.
    let mut put = s.clone();
    put["spec"]["data"] = json!({"k": "v"});
    let refused = [
        viewer.post(&secrets(&ns), &secret(&ns, "v", json!({}))).await,
        viewer.put(&path, &put).await,
        viewer
            .patch(&path, &json!({"metadata": {"labels": {"a": "b"}}}))
            .await,
        viewer.put(&format!("{path}/status"), &put).await,
        viewer.delete(&path).await,
        viewer
            .post(&collection(None, "projects"), &project("viewer"))
            .await,
    ];
    for got in &refused {
        assert_status(got, 403, "Forbidden", None);
    }
    assert_eq!(admin.get(&path).await.1, s);
    assert_eq!(admin.names(&secrets(&ns)).await, ["s"]);
    // The watch saw no change either: the next event is the admin's write below.
    let by_ops = ops.create(&secrets(&ns), &secret(&ns, "by-ops", json!({}))).await;
    let ev = w.next().await;
    assert_eq!(
        (ev["type"].as_str(), rv(&ev["object"])),
        (Some("ADDED"), rv(&by_ops))
    );

    // Health and version need no token.
    for p in ["/healthz", "/readyz", "/version"] {
        let (code, body) = anonymous.get(p).await;
        assert_eq!(code, 200, "{p}: {body}");
    }
    assert!(anonymous.get("/version").await.1["gitVersion"].is_string());
}

// ---------------------------------------------------------------------------------------
// 11. Restart

async fn restart_keeps_everything(f: Fixture) {
    let (mut server, c) = f.start(&[]);
    let token = server.token.clone();
    let ns = namespace(&c, "keep").await;
    let mut before = Vec::new();
    for i in 0..5 {
        before.push(
            c.create(
                &secrets(&ns),
                &secret(&ns, &format!("s{i}"), json!({"i": i.to_string()})),
            )
            .await,
        );
    }
    let (code, patched) = c
        .patch(
            &format!("{}/status", secret_at(&ns, "s0")),
            &json!({"status": {"observedGeneration": 1}}),
        )
        .await;
    assert_eq!(code, 200);
    before[0] = patched;
    // Wait until the Project controller has recorded the environment: a status write after
    // this read would otherwise look like a change across the restart.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let project_before = loop {
        let (_, p) = c.get(&object(None, "projects", "keep")).await;
        if p.pointer("/status/environments/0").and_then(Value::as_str) == Some(ns.as_str()) {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "project status never listed {ns}: {p}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, env_before) = c.get(&object(None, "environments", &ns)).await;

    let c = restart(&mut server);
    assert_eq!(server.token, token, "the admin token changed across a restart");
    for obj in &before {
        let name = obj["metadata"]["name"].as_str().unwrap();
        assert_eq!(c.get(&secret_at(&ns, name)).await, (200, obj.clone()));
    }
    assert_eq!(c.get(&object(None, "projects", "keep")).await.1, project_before);
    assert_eq!(c.get(&object(None, "environments", &ns)).await.1, env_before);
    // The old token still works and revisions keep growing.
    let old = c.with_token(Some(&token));
    let after = old.create(&secrets(&ns), &secret(&ns, "after", json!({}))).await;
    assert!(before.iter().all(|o| rv_num(o) < rv_num(&after)));
    assert_eq!(c.names(&secrets(&ns)).await.len(), 6);
}

/// SIGTERM: in-flight writes finish (every acknowledged create survives), watches end, the
/// process exits 0 within the grace period, and the store is intact on the next start.
async fn graceful_shutdown(f: Fixture) {
    let (mut server, c) = f.start(&[]);
    let ns = namespace(&c, "term").await;
    let mut watch = c.watch(&secrets(&ns), "").await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let c = c.clone();
            let path = secrets(&ns);
            let ns = ns.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let name = format!("w{w}-{i}");
                    let body = serde_json::to_vec(&secret(&ns, &name, json!({}))).unwrap();
                    match c
                        .try_raw(reqwest::Method::POST, &path, body, "application/json")
                        .await
                    {
                        Ok((201, _)) => acknowledged.push(name),
                        // Refused or cut off by the shutdown: the writer stops there.
                        _ => return acknowledged,
                    }
                }
                acknowledged
            })
        })
        .collect();
    // Stop while writes are in flight: once the watch has seen some of them.
    for _ in 0..20 {
        watch.next().await;
    }
    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(30)));
    assert!(
        status.success(),
        "berth serve exited with {status} on SIGTERM:\n{}",
        server.log_tail()
    );
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(
        acknowledged.len() >= 20,
        "writes were acknowledged before the shutdown"
    );
    loop {
        match watch.next_within(WAIT).await {
            Next::Closed => break,
            Next::Event(_) => continue,
            Next::TimedOut => panic!("the watch outlived the server"),
        }
    }
    let c = restart(&mut server);
    let stored = c.names(&secrets(&ns)).await;
    for name in &acknowledged {
        assert!(
            stored.contains(name),
            "acknowledged write {name} lost across a graceful shutdown"
        );
    }
}
