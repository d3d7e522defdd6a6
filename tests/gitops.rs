//! End-to-end tests of GitOps: the Git adapter over smart HTTP (`git http-backend` behind
//! `tests/common/git_http.rs`), and GitRepositories synced by a real `berth serve` — prune,
//! self-heal, suspend, validation, credentials and signed webhooks. Applications run on the
//! real Docker daemon under a run label; the other tests sync Secrets with the Docker
//! controllers off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use berth_controllers::docker::label;
use berth_controllers::git::{Credentials, Error as GitError, Reference, Repositories};
use common::{
    docker_run::TestRun,
    git_http::{GitServer, Repo},
    http::{self, Client},
    images::busybox_httpd,
    server::{Backend, BerthServer, OutputExt},
    webhook::github_signature,
};
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn adapter_fetches_over_smart_http_shallow_and_repeatedly() {
    let server = GitServer::start();
    let repo = server.create_repo("manifests");
    let first = repo.commit("main", &[("apps/a.yaml", "a: 1\n"), ("README.md", "x")]);
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path().to_path_buf());
    let rt = runtime();
    rt.block_on(async {
        assert_eq!(
            repos.fetch(&repo.url, &Reference::Default, None).await.unwrap(),
            first
        );
        let files = repos.files(&repo.url, &first, "apps").await.unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "a.yaml");
        assert_eq!(files[0].data, b"a: 1\n");
        // http fetches are shallow: libgit2 recorded the shallow boundary.
        let cached: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(cached.len(), 1);
        assert!(cached[0].join("shallow").exists(), "not a shallow fetch");

        let second = repo.commit("main", &[("apps/b.yaml", "b: 2\n")]);
        let branch = Reference::Branch("main".into());
        assert_eq!(repos.fetch(&repo.url, &branch, None).await.unwrap(), second);
        let files = repos.files(&repo.url, &second, "apps").await.unwrap();
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["b.yaml"]
        );

        // A commit behind the shallow boundary, not at any tip: the fallback deepens.
        // (A fresh cache whose shallow fetch of main holds only the second commit.)
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = Repositories::new(fresh_dir.path().to_path_buf());
        assert_eq!(
            fresh.fetch(&repo.url, &Reference::Default, None).await.unwrap(),
            second
        );
        assert!(
            fresh.files(&repo.url, &first, "").await.is_err(),
            "the first commit is not fetched yet"
        );
        let deep = Reference::Commit(first.clone());
        assert_eq!(fresh.fetch(&repo.url, &deep, None).await.unwrap(), first);
        assert_eq!(
            fresh.files(&repo.url, &first, "apps").await.unwrap()[0].path,
            "a.yaml"
        );

        repo.tag("v1", &first);
        assert_eq!(
            repos
                .fetch(&repo.url, &Reference::Tag("v1".into()), None)
                .await
                .unwrap(),
            first
        );
        let err = repos
            .fetch(&repo.url, &Reference::Branch("absent".into()), None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::RefNotFound { .. }), "{err}");
    });
}

#[test]
fn adapter_uses_basic_auth_and_reports_a_wrong_password() {
    let server = GitServer::start_with_basic_auth("deploy", "correct-horse");
    let repo = server.create_repo("private");
    let sha = repo.commit("main", &[("a.yaml", "a: 1\n")]);
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path().to_path_buf());
    let good = Credentials::Basic {
        username: "deploy".into(),
        password: "correct-horse".into(),
    };
    let bad = Credentials::Basic {
        username: "deploy".into(),
        password: "wrong-battery".into(),
    };
    runtime().block_on(async {
        let err = repos
            .fetch(&repo.url, &Reference::Default, None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
        let err = repos
            .fetch(&repo.url, &Reference::Default, Some(&bad))
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
        assert!(!err.to_string().contains("wrong-battery"), "{err}");
        assert_eq!(
            repos
                .fetch(&repo.url, &Reference::Default, Some(&good))
                .await
                .unwrap(),
            sha
        );
    });
}

/// A test's berth, its namespace and a runtime for HTTP calls.
struct World {
    s: BerthServer,
    api: Client,
    ns: String,
    rt: tokio::runtime::Runtime,
    /// With Docker: the run (cleaned up after the server is gone) and the app image.
    docker: Option<(TestRun, String)>,
}

/// Every controller that touches Docker: the Secret-only tests run without them.
const NO_DOCKER: &str = "server,destination,application,database,proxy,backup";

impl World {
    /// A berth with only the API-level controllers (GitRepository, Project...).
    fn without_docker() -> World {
        Self::start(false)
    }

    /// A berth driving the local Docker daemon under a run label, with the busybox image.
    fn with_docker() -> World {
        Self::start(true)
    }

    fn start(docker: bool) -> World {
        let rt = runtime();
        let run = docker.then(|| rt.block_on(TestRun::start()));
        let s = match &run {
            Some(run) => {
                let label_arg = format!("{}={}", label::RUN, run.id);
                let net = format!("berth-{}", run.id);
                BerthServer::start(
                    Backend::Embedded,
                    &[
                        "--docker-label",
                        &label_arg,
                        "--default-network",
                        &net,
                        "--app-min-ready",
                        "1s",
                    ],
                )
            }
            None => BerthServer::start(Backend::Embedded, &["--disable-controllers", NO_DOCKER]),
        };
        let api = Client::new(&s.url, Some(&s.token));
        let project = format!(
            "g{}",
            uuid::Uuid::new_v4().simple().to_string().get(..10).unwrap()
        );
        s.run_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: {project}\nspec: {{}}\n"),
        )
        .ok();
        let ns = format!("{project}-production");
        let docker = run.map(|run| {
            let image = rt.block_on(busybox_httpd(&run.docker));
            (run, image)
        });
        let w = World {
            s,
            api,
            ns,
            rt,
            docker,
        };
        w.until("the environment", Duration::from_secs(10), || {
            let (code, _) = w.get(None, "environments", &w.ns);
            (code == 200).then_some(())
        });
        w
    }

    fn apply(&self, yaml: &str) {
        self.s.run_stdin(&["apply", "-f", "-"], yaml).ok();
    }

    fn get(&self, ns: Option<&str>, plural: &str, name: &str) -> (u16, Value) {
        self.rt.block_on(self.api.get(&http::object(ns, plural, name)))
    }

    fn repo(&self, name: &str) -> Value {
        let (code, obj) = self.get(Some(&self.ns), "gitrepositories", name);
        assert_eq!(code, 200, "{obj}");
        obj
    }

    fn patch(&self, plural: &str, name: &str, patch: &Value) {
        let path = http::object(Some(&self.ns), plural, name);
        let (code, body) = self.rt.block_on(self.api.patch(&path, patch));
        assert_eq!(code, 200, "patch {plural}/{name}: {body}");
    }

    /// A GitRepository `name` over `url` (branch main) with `extra` spec lines.
    /// A Secret `webhook` holding `secret` and the GitHub Source `gh-<ns>` verifying with it.
    fn github_source(&self, secret: &str) {
        self.apply(&format!(
            "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: webhook\n  namespace: {ns}\nspec:\n  data:\n    secret: {secret}\n\
             ---\napiVersion: berth.dev/v1\nkind: Source\nmetadata:\n  name: gh-{ns}\nspec:\n  provider: github\n  webhookSecretRef:\n    namespace: {ns}\n    name: webhook\n    key: secret\n",
            ns = self.ns
        ));
    }

    fn git_repository(&self, name: &str, url: &str, extra: &str) {
        self.apply(&format!(
            "apiVersion: berth.dev/v1\nkind: GitRepository\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
             spec:\n  url: {url}\n  ref:\n    branch: main\n{extra}",
            ns = self.ns
        ));
    }

    fn until<T>(&self, what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
        self.s.until(what, timeout, f)
    }

    fn wait_app_ready(&self, name: &str) {
        let app = format!("app/{name}");
        let args = [
            "wait",
            &app,
            "-n",
            &self.ns,
            "--for=condition=Ready",
            "--timeout",
            "90s",
        ];
        self.s.run(&args).ok();
    }

    /// Waits until the GitRepository has applied `commit` and is Ready.
    fn synced(&self, name: &str, commit: &str, timeout: Duration) -> Value {
        self.until(&format!("{name} to apply {commit}"), timeout, || {
            let repo = self.repo(name);
            let applied = repo.pointer("/status/lastAppliedCommit") == Some(&json!(commit));
            (applied && ready(&repo).0 == "True").then_some(repo)
        })
    }

    /// Waits until the GitRepository's Ready condition has `reason`; returns its message.
    fn condition_reason(&self, name: &str, reason: &str, timeout: Duration) -> String {
        self.until(&format!("{name} Ready reason {reason}"), timeout, || {
            let (_, r, message) = ready(&self.repo(name));
            (r == reason).then_some(message)
        })
    }

    fn exists(&self, plural: &str, name: &str) -> bool {
        let (code, body) = self.get(Some(&self.ns), plural, name);
        assert!(code == 200 || code == 404, "get {plural}/{name}: {code} {body}");
        code == 200
    }

    fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        let (code, s) = self.get(Some(&self.ns), "secrets", name);
        (code == 200).then(|| s["spec"]["data"][key].as_str().unwrap_or_default().to_string())
    }

    /// POSTs a webhook body with `headers`; returns the status code.
    fn hook(&self, path: &str, body: &[u8], headers: &[(&str, String)]) -> u16 {
        let url = format!("{}{path}", self.s.url);
        self.rt.block_on(async {
            let mut req = reqwest::Client::new().post(url).body(body.to_vec());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            req.send().await.unwrap().status().as_u16()
        })
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // The server goes first so it cannot recreate what the run's cleanup removes.
        self.s.kill();
        if let Some((run, _)) = &self.docker {
            let _ = std::process::Command::new("docker")
                .args(["network", "rm", &format!("berth-{}", run.id)])
                .output();
        }
    }
}

/// (status, reason, message) of the Ready condition.
fn ready(obj: &Value) -> (String, String, String) {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .map(|c| {
            let f = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (f("status"), f("reason"), f("message"))
        })
        .unwrap_or_default()
}

fn secret(name: &str, value: &str) -> String {
    format!(
        "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: {name}\nspec:\n  data:\n    value: {value:?}\n"
    )
}

fn app(name: &str, image: &str, message: &str) -> String {
    format!(
        "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  source:\n    image: {image}\n\
         \x20 destination: default\n  replicas: 1\n  ports:\n  - containerPort: 8080\n  env:\n  - name: MESSAGE\n    value: {message}\n"
    )
}

fn commit_files(repo: &Repo, files: &[(String, String)]) -> String {
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    repo.commit("main", &refs)
}

#[test]
fn three_apps_sync_update_prune_self_heal_and_suspend() {
    let w = World::with_docker();
    let image = w.docker.as_ref().unwrap().1.clone();
    let git = GitServer::start();
    let repo = git.create_repo("apps");
    let files = |apps: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut f: Vec<_> = apps
            .iter()
            .map(|(n, m)| (format!("deploy/{n}.yaml"), app(n, &image, m)))
            .collect();
        f.push(("README.md".into(), "not a manifest".into()));
        f
    };
    let c1 = commit_files(
        &repo,
        &files(&[("web-a", "one"), ("web-b", "one"), ("web-c", "one")]),
    );
    let started = Instant::now();
    w.git_repository("apps", &repo.url, "  path: deploy\n  interval: 5s\n");
    let synced = w.synced("apps", &c1, Duration::from_secs(20));
    eprintln!("first sync of 3 apps: {:?}", started.elapsed());
    assert_eq!(synced["status"]["managedObjects"], 3);
    assert_eq!(synced["status"]["shortCommit"], json!(&c1[..7]));
    for name in ["web-a", "web-b", "web-c"] {
        w.wait_app_ready(name);
        let (_, obj) = w.get(Some(&w.ns), "applications", name);
        assert_eq!(
            obj["metadata"]["labels"]["gitops.berth.dev/name"], "apps",
            "{obj}"
        );
        assert_eq!(
            obj["metadata"]["labels"]["gitops.berth.dev/namespace"],
            json!(w.ns)
        );
    }
    eprintln!("3 apps Ready: {:?}", started.elapsed());
    let table = w.s.run(&["get", "gitrepositories", "-n", &w.ns]).ok();
    assert!(
        table.contains("LAST SYNC") && table.contains(&c1[..7]) && table.contains(&repo.url),
        "{table}"
    );

    // Change one: web-a's env moves; the others are unchanged.
    let c2 = commit_files(
        &repo,
        &files(&[("web-a", "two"), ("web-b", "one"), ("web-c", "one")]),
    );
    let synced = w.synced("apps", &c2, Duration::from_secs(20));
    let message = ready(&synced).2;
    assert!(message.contains("1 configured, 2 unchanged"), "{message}");
    let (_, a) = w.get(Some(&w.ns), "applications", "web-a");
    assert_eq!(a["spec"]["env"][0]["value"], "two");

    // Remove one: web-c is pruned.
    let c3 = commit_files(&repo, &files(&[("web-a", "two"), ("web-b", "one")]));
    let synced = w.synced("apps", &c3, Duration::from_secs(20));
    assert_eq!(synced["status"]["managedObjects"], 2);
    w.until("web-c pruned", Duration::from_secs(20), || {
        (!w.exists("applications", "web-c")).then_some(())
    });

    // An API edit of a field the repository sets is reverted at the next sync; a field the
    // repository does not set is left alone.
    w.patch(
        "applications",
        "web-b",
        &json!({"metadata": {"labels": {"team": "ops"}}, "spec": {"replicas": 2}}),
    );
    w.until("web-b healed", Duration::from_secs(20), || {
        let (_, b) = w.get(Some(&w.ns), "applications", "web-b");
        (b["spec"]["replicas"] == 1).then_some(b)
    });
    let (_, b) = w.get(Some(&w.ns), "applications", "web-b");
    assert_eq!(b["metadata"]["labels"]["team"], "ops", "{b}");

    // Suspended: neither a new commit nor an API edit is acted on.
    w.patch("gitrepositories", "apps", &json!({"spec": {"suspend": true}}));
    w.condition_reason("apps", "Suspended", Duration::from_secs(10));
    let c4 = commit_files(&repo, &files(&[("web-a", "three"), ("web-b", "one")]));
    w.patch("applications", "web-b", &json!({"spec": {"replicas": 2}}));
    // A negative check needs a window: two intervals in which a sync would have happened.
    std::thread::sleep(Duration::from_secs(11));
    let repo_obj = w.repo("apps");
    assert_eq!(
        repo_obj["status"]["lastAppliedCommit"],
        json!(c3),
        "synced while suspended"
    );
    let (_, a) = w.get(Some(&w.ns), "applications", "web-a");
    assert_eq!(a["spec"]["env"][0]["value"], "two");
    let (_, b) = w.get(Some(&w.ns), "applications", "web-b");
    assert_eq!(b["spec"]["replicas"], 2);

    // Resumed: the new commit lands and the edit is reverted.
    w.patch("gitrepositories", "apps", &json!({"spec": {"suspend": false}}));
    w.synced("apps", &c4, Duration::from_secs(20));
    let (_, b) = w.get(Some(&w.ns), "applications", "web-b");
    assert_eq!(b["spec"]["replicas"], 1);
    w.wait_app_ready("web-a");
}

#[test]
fn signed_webhooks_sync_at_once_and_bad_signatures_do_nothing() {
    let w = World::without_docker();
    let git = GitServer::start();
    let repo = git.create_repo("hooked");
    let hook_secret = "hook-s3cret";
    w.github_source(hook_secret);
    let c1 = commit_files(&repo, &[("s.yaml".into(), secret("one", "1"))]);
    // A long interval: only the webhook can explain a sync after the first one.
    w.git_repository(
        "hooked",
        &repo.url,
        &format!("  interval: 1h\n  sourceRef: gh-{}\n", w.ns),
    );
    w.synced("hooked", &c1, Duration::from_secs(20));
    let path = format!("/hooks/git/{}/hooked", w.ns);
    let body = br#"{"ref":"refs/heads/main","after":"x"}"#;

    // Wrong, missing and unknown: 401, and nothing is written.
    let c2 = commit_files(&repo, &[("s.yaml".into(), secret("one", "2"))]);
    assert_eq!(
        w.hook(
            &path,
            body,
            &[("X-Hub-Signature-256", github_signature("wrong", body))]
        ),
        401
    );
    assert_eq!(w.hook(&path, body, &[]), 401);
    let unknown = format!("/hooks/git/{}/nope", w.ns);
    assert_eq!(
        w.hook(
            &unknown,
            body,
            &[("X-Hub-Signature-256", github_signature(hook_secret, body))]
        ),
        401
    );
    let tampered = br#"{"ref":"refs/heads/evil","after":"x"}"#;
    assert_eq!(
        w.hook(
            &path,
            tampered,
            &[("X-Hub-Signature-256", github_signature(hook_secret, body))]
        ),
        401
    );
    let obj = w.repo("hooked");
    assert!(
        obj.pointer("/metadata/annotations/berth.dev~1requested-at")
            .is_none(),
        "{obj}"
    );
    assert_eq!(obj["status"]["lastAppliedCommit"], json!(c1));

    // Signed: the sync starts at once.
    let t0 = Instant::now();
    assert_eq!(
        w.hook(
            &path,
            body,
            &[("X-Hub-Signature-256", github_signature(hook_secret, body))]
        ),
        202
    );
    w.synced("hooked", &c2, Duration::from_secs(10));
    let one = t0.elapsed();
    assert_eq!(w.secret_value("one", "value").as_deref(), Some("2"));
    eprintln!("MEASURED webhook -> 1 manifest applied: {one:?}");
    assert!(one < Duration::from_secs(3), "webhook sync took {one:?}");
    // Status records the request it handled, so a restart does not sync it again.
    let obj = w.repo("hooked");
    assert_eq!(
        obj["status"]["lastHandledRequestedAt"],
        obj["metadata"]["annotations"]["berth.dev/requested-at"]
    );

    // 50 manifests (Secrets) from one webhook.
    let fifty: Vec<(String, String)> = (0..50)
        .map(|i| (format!("many/s{i:02}.yaml"), secret(&format!("s{i:02}"), "x")))
        .collect();
    let c3 = commit_files(&repo, &fifty);
    let t0 = Instant::now();
    assert_eq!(
        w.hook(
            &path,
            body,
            &[("X-Hub-Signature-256", github_signature(hook_secret, body))]
        ),
        202
    );
    let synced = w.synced("hooked", &c3, Duration::from_secs(30));
    let fifty_time = t0.elapsed();
    eprintln!("MEASURED webhook -> 50 Secrets applied (1 pruned): {fifty_time:?}");
    assert_eq!(synced["status"]["managedObjects"], 50);
    assert!(ready(&synced).2.contains("50 created"), "{synced}");
    assert!(!w.exists("secrets", "one"), "pruned");
}

#[test]
fn a_webhook_request_survives_a_restart() {
    let mut w = World::without_docker();
    let git = GitServer::start();
    let repo = git.create_repo("durable");
    let hook_secret = "durable-s3cret";
    w.github_source(hook_secret);
    let c1 = commit_files(&repo, &[("s.yaml".into(), secret("durable", "1"))]);
    w.git_repository(
        "durable",
        &repo.url,
        &format!("  interval: 1h\n  sourceRef: gh-{}\n", w.ns),
    );
    w.synced("durable", &c1, Duration::from_secs(20));

    // The request is recorded while no GitRepository controller runs...
    let without = format!("{NO_DOCKER},gitrepository");
    w.s.restart_with(&["--disable-controllers", &without]);
    w.api = Client::new(&w.s.url, Some(&w.s.token));
    let c2 = commit_files(&repo, &[("s.yaml".into(), secret("durable", "2"))]);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let path = format!("/hooks/git/{}/durable", w.ns);
    assert_eq!(
        w.hook(
            &path,
            body,
            &[("X-Hub-Signature-256", github_signature(hook_secret, body))]
        ),
        202
    );
    assert_eq!(w.repo("durable")["status"]["lastAppliedCommit"], json!(c1));

    // ...and handled by the next one: with a 1h interval only the request explains the sync.
    w.s.restart_with(&["--disable-controllers", NO_DOCKER]);
    w.api = Client::new(&w.s.url, Some(&w.s.token));
    w.synced("durable", &c2, Duration::from_secs(20));
    assert_eq!(w.secret_value("durable", "value").as_deref(), Some("2"));
}

#[test]
fn app_webhooks_annotate_only_pushes_to_the_apps_branch() {
    let w = World::without_docker();
    let hook_secret = "lab-token";
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: webhook\n  namespace: {ns}\nspec:\n  data:\n    token: {hook_secret}\n\
         ---\napiVersion: berth.dev/v1\nkind: Source\nmetadata:\n  name: gl-{ns}\nspec:\n  provider: gitlab\n  webhookSecretRef:\n    namespace: {ns}\n    name: webhook\n    key: token\n\
         ---\napiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: built\n  namespace: {ns}\nspec:\n  source:\n    git:\n      url: http://127.0.0.1:1/app.git\n      ref: main\n      sourceRef: gl-{ns}\n  destination: default\n",
        ns = w.ns
    ));
    let path = format!("/hooks/apps/{}/built", w.ns);
    let annotation = || {
        let (_, app) = w.get(Some(&w.ns), "applications", "built");
        app.pointer("/metadata/annotations/berth.dev~1requested-at")
            .cloned()
    };
    let other = br#"{"ref":"refs/heads/feature"}"#;
    let main = br#"{"ref":"refs/heads/main"}"#;
    assert_eq!(w.hook(&path, main, &[("X-Gitlab-Token", "wrong".into())]), 401);
    assert_eq!(
        w.hook(
            &path,
            main,
            &[("X-Hub-Signature-256", github_signature(hook_secret, main))]
        ),
        401
    );
    assert_eq!(
        w.hook(&path, other, &[("X-Gitlab-Token", hook_secret.into())]),
        202
    );
    assert_eq!(annotation(), None, "a push to another branch is ignored");
    assert_eq!(
        w.hook(&path, main, &[("X-Gitlab-Token", hook_secret.into())]),
        202
    );
    assert!(annotation().is_some(), "a push to main requests a build");
}

#[test]
fn one_invalid_manifest_applies_nothing_until_it_is_fixed() {
    let w = World::without_docker();
    let git = GitServer::start();
    let repo = git.create_repo("strict");
    let bad_app = "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: bad\nspec:\n  source:\n    image: x\n  destination: default\n  replicas: many\n";
    let c1 = commit_files(
        &repo,
        &[
            ("a.yaml".into(), secret("first", "1")),
            (
                "nested/b.yml".into(),
                format!("{}---\n{bad_app}", secret("second", "2")),
            ),
            ("c.yaml".into(), secret("third", "3")),
        ],
    );
    w.git_repository("strict", &repo.url, "  interval: 5s\n");
    let message = w.condition_reason("strict", "ValidationFailed", Duration::from_secs(20));
    assert!(
        message.contains("nested/b.yml, document 2 (Application bad)"),
        "{message}"
    );
    assert!(message.contains("spec.replicas"), "{message}");
    assert!(message.contains(&c1[..7]), "{message}");
    for name in ["first", "second", "third"] {
        assert!(
            !w.exists("secrets", name),
            "{name} was applied from an invalid commit"
        );
    }
    let described =
        w.s.run(&["describe", "gitrepository", "strict", "-n", &w.ns])
            .ok();
    assert!(
        described.contains("ValidationFailed"),
        "no warning event:\n{described}"
    );
    let obj = w.repo("strict");
    assert_eq!(obj["status"]["lastAttemptedCommit"], json!(c1));
    assert!(obj.pointer("/status/lastAppliedCommit").is_none());

    // Another namespace is refused too, naming the field.
    let foreign = "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: elsewhere\n  namespace: other-production\nspec:\n  data: {}\n";
    commit_files(
        &repo,
        &[
            ("a.yaml".into(), secret("first", "1")),
            ("x.yaml".into(), foreign.into()),
        ],
    );
    w.until("the namespace refusal", Duration::from_secs(20), || {
        let (_, _, m) = ready(&w.repo("strict"));
        m.contains("x.yaml, document 1 (Secret elsewhere): metadata.namespace")
            .then_some(())
    });
    assert!(!w.exists("secrets", "first"));

    // Fixed: the next poll applies everything.
    let fixed = commit_files(
        &repo,
        &[
            ("a.yaml".into(), secret("first", "1")),
            ("nested/b.yml".into(), secret("second", "2")),
        ],
    );
    w.synced("strict", &fixed, Duration::from_secs(20));
    let described =
        w.s.run(&["describe", "gitrepository", "strict", "-n", &w.ns])
            .ok();
    let synced_event = format!(
        "applied commit {}: 2 created, 0 configured, 0 unchanged, 0 pruned",
        &fixed[..7]
    );
    assert!(described.contains(&synced_event), "no Synced event:\n{described}");
    assert_eq!(w.secret_value("first", "value").as_deref(), Some("1"));
    assert_eq!(w.secret_value("second", "value").as_deref(), Some("2"));
}

#[test]
fn without_self_heal_only_new_commits_are_applied() {
    let w = World::without_docker();
    let git = GitServer::start();
    let repo = git.create_repo("manual");
    let c1 = commit_files(&repo, &[("s.yaml".into(), secret("tuned", "1"))]);
    w.git_repository("manual", &repo.url, "  interval: 5s\n  selfHeal: false\n");
    let first = w.synced("manual", &c1, Duration::from_secs(20));
    w.patch(
        "secrets",
        "tuned",
        &json!({"spec": {"data": {"value": "edited"}}}),
    );
    // The next poll happens (lastSyncTime moves) and leaves the edit alone.
    let polled = w.until("the next poll", Duration::from_secs(20), || {
        let r = w.repo("manual");
        (r["status"]["lastSyncTime"] != first["status"]["lastSyncTime"]).then_some(r)
    });
    assert!(ready(&polled).2.contains("self-heal is off"), "{polled}");
    assert_eq!(w.secret_value("tuned", "value").as_deref(), Some("edited"));
    // A new commit is applied.
    let c2 = commit_files(&repo, &[("s.yaml".into(), secret("tuned", "2"))]);
    w.synced("manual", &c2, Duration::from_secs(20));
    assert_eq!(w.secret_value("tuned", "value").as_deref(), Some("2"));
}

#[test]
fn basic_auth_credentials_come_from_a_secret_and_a_wrong_password_says_so() {
    let w = World::without_docker();
    let git = GitServer::start_with_basic_auth("deploy", "correct-horse");
    let repo = git.create_repo("private");
    let commit = commit_files(&repo, &[("s.yaml".into(), secret("from-private", "ok"))]);
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: good-creds\n  namespace: {ns}\nspec:\n  data:\n    username: deploy\n    password: correct-horse\n\
         ---\napiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: bad-creds\n  namespace: {ns}\nspec:\n  data:\n    username: deploy\n    password: wrong-battery\n",
        ns = w.ns
    ));
    w.git_repository(
        "good",
        &repo.url,
        "  interval: 5s\n  credentialsSecretRef: good-creds\n",
    );
    w.git_repository(
        "bad",
        &repo.url,
        "  interval: 5s\n  credentialsSecretRef: bad-creds\n",
    );
    w.synced("good", &commit, Duration::from_secs(20));
    assert_eq!(w.secret_value("from-private", "value").as_deref(), Some("ok"));
    let message = w.condition_reason("bad", "AuthFailed", Duration::from_secs(20));
    assert!(message.contains("authentication failed"), "{message}");
    assert!(!message.contains("wrong-battery"), "{message}");
}
