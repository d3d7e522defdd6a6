//! Applications built from Git, end to end: a bare repository served over smart HTTP by
//! `git http-backend` ([`GitServer`]), `berth serve` against the real Docker daemon and the
//! real Traefik v3, an Application with `source.git`. The Dockerfile builds `FROM` the local
//! busybox httpd test image, so nothing is pulled.
//!
//! One test walks the whole story, since each step starts from the previous one's state:
//! v1 built and Ready → v2 pushed and announced by a signed GitHub push webhook → built and
//! rolled out under load with zero failed requests → a broken Dockerfile pushed → `BuildFailed` with Docker's words while v2
//! keeps serving → `berth logs --build` → deletion removes the built images.
//!
//! The [`TestRun`] is declared before the server, so the server is killed first and then
//! everything with the run label (containers, networks, volumes, built images) is removed,
//! also on panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use berth_controllers::docker::{Labels, label};
use common::{
    docker_run::TestRun,
    git_http::GitServer,
    http::{Client, object},
    images,
    server::{BerthServer, OutputExt},
    traffic::{Load, Proxied, Traffic, app_containers, get, plain_client, run_server},
    webhook::github_signature,
};
use serde_json::{Value, json};

/// Upper bound for anything this test waits on (a build included).
const DEADLINE: Duration = Duration::from_secs(120);

/// Requests that must be answered during the rollout for the count to mean anything.
const MIN_REQUESTS: usize = 300;

/// The Dockerfile of the app: the busybox httpd serving `index.html` (the version).
fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base}\nCOPY index.html /www/index.html\n\
         ENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    )
}

/// `(status, reason, message)` of condition `type_`.
fn condition(app: &Value, type_: &str) -> Option<(String, String, String)> {
    app.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("reason"), s("message"))
        })
}

/// A wait with [`DEADLINE`] that fails with the server's log.
struct Deadline<'a> {
    what: String,
    started: Instant,
    server: &'a BerthServer,
}

impl Deadline<'_> {
    /// Whether `done`; panics with `detail` once the deadline passed without it.
    fn done(&self, done: bool, detail: &dyn Fn() -> String) -> bool {
        assert!(
            done || self.started.elapsed() < DEADLINE,
            "timed out waiting until {}: {}\nserver log:\n{}",
            self.what,
            detail(),
            self.server.log_tail()
        );
        done
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_is_built_from_git_rolled_on_push_and_kept_on_a_broken_build() {
    let run = TestRun::start().await;
    let Proxied {
        server,
        http_port,
        ns,
    } = Proxied::start(&run).await;
    let api = Client::new(&server.url, Some(&server.token));
    let base = images::busybox_httpd(&run.docker).await;
    let git = GitServer::start();
    let repo = git.create_repo("shop");
    let host = format!("build-{}.test", run.id);
    let apply = |yaml: &str| server.run_stdin(&["apply", "-f", "-"], yaml).ok();
    let app_path = object(Some(&ns), "applications", "web");
    let read_app = || async { api.get(&app_path).await.1 };
    let server = &server;
    let until = |what: &str| Deadline {
        what: what.to_string(),
        started: Instant::now(),
        server,
    };
    let push = |version: &str, dockerfile: &str| {
        repo.commit(
            "main",
            &[
                ("README.md", "the shop\n"),
                ("web/index.html", version),
                ("web/build/Dockerfile", dockerfile),
            ],
        )
    };
    // A push is announced by GitHub's push webhook, signed with the Source's secret.
    let hook_secret = "hook-s3cret";
    let hook = |body: String, signature: String| {
        let url = format!("{}/hooks/apps/{ns}/web", server.url);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("X-GitHub-Event", "push")
                .header("X-Hub-Signature-256", signature)
                .body(body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let announce = |branch: &str, commit: &str| {
        let body = json!({"ref": format!("refs/heads/{branch}"), "after": commit}).to_string();
        let signature = github_signature(hook_secret, body.as_bytes());
        hook(body, signature)
    };

    // 1. v1: built from the repository and Ready, served through the proxy.
    let c1 = push("v1\n", &dockerfile(&base));
    let t0 = Instant::now();
    apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: webhook\n  namespace: {ns}\n\
         spec:\n  data:\n    secret: {hook_secret}\n---\n\
         apiVersion: berth.dev/v1\nkind: Source\nmetadata:\n  name: gh-{id}\nspec:\n  provider: github\n  \
         webhookSecretRef:\n    namespace: {ns}\n    name: webhook\n    key: secret\n---\n\
         apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: web\n  namespace: {ns}\n\
         spec:\n  source:\n    git:\n      url: {url}\n      ref: main\n      path: web\n      \
         dockerfile: build/Dockerfile\n      sourceRef: gh-{id}\n  destination: default\n  ports:\n  - containerPort: 8080\n  \
         healthCheck:\n    http:\n      port: 8080\n    interval: 1s\n    timeout: 1s\n    retries: 1\n  \
         domains:\n  - host: {host}\n    https: false\n",
        url = repo.url,
        id = run.id
    ));
    server
        .run(&[
            "wait",
            "app/web",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=120s",
        ])
        .ok();
    let first_ready = t0.elapsed();
    let http = plain_client();
    assert_eq!(get(&http, http_port, &host).await, Ok((200, "v1".to_owned())));
    let app = read_app().await;
    let build = &app["status"]["build"];
    assert_eq!(build["phase"], "Succeeded", "{app}");
    assert_eq!(build["commit"], c1.as_str());
    assert_eq!(app["status"]["commit"], c1.as_str());
    let image_v1 = build["image"].as_str().unwrap().to_string();
    assert!(
        image_v1.starts_with(&format!("berth.local/{ns}-web:{}-", &c1[..12])),
        "{image_v1}"
    );
    assert_eq!(build["latestImage"], image_v1.as_str());
    let built_images = || async {
        let selector = Labels::from([
            (label::RUN.to_string(), run.id.clone()),
            (label::NAME.to_string(), "web".to_string()),
            (label::NAMESPACE.to_string(), ns.clone()),
        ]);
        let mut tags: Vec<String> = run
            .docker
            .list_images(&selector)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .collect();
        tags.sort();
        tags
    };
    assert_eq!(
        built_images().await,
        vec![image_v1.clone()],
        "labelled like everything berth makes"
    );
    println!("apply (first build) -> Ready and serving v1: {first_ready:?}");
    let containers = || app_containers(&run, &ns, "web");
    let before = containers().await;
    assert_eq!(before.len(), 1, "{before:?}");

    // Reconciles that change nothing of the spec (Docker events, resyncs, metadata) do not
    // fetch: with nothing announced, a push is not seen.
    let c_unseen = push("v1\n", &format!("{}# unannounced\n", dockerfile(&base)));
    assert_ne!(c_unseen, c1);
    let reconciles = || async {
        let text = reqwest::get(format!("{}/metrics", server.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("berth_reconcile_total{controller=\"application\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let n0 = reconciles().await;
    let (code, body) = api
        .patch(&app_path, &json!({"metadata": {"labels": {"touched": "yes"}}}))
        .await;
    assert_eq!(code, 200, "{body}");
    let check = until("the application is reconciled again");
    loop {
        let n = reconciles().await;
        if check.done(n >= n0 + 1.0, &|| format!("{n} reconciles, {n0} before")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let unseen = read_app().await;
    assert_eq!(
        unseen["status"]["build"]["commit"],
        c1.as_str(),
        "no fetch without a request"
    );
    // A wrongly signed hook is refused and changes nothing; a push to another branch is
    // accepted and ignored.
    let body = json!({"ref": "refs/heads/main", "after": c_unseen}).to_string();
    let (code, _) = hook(body.clone(), github_signature("not-the-secret", body.as_bytes())).await;
    assert_eq!(code, 401);
    let (code, _) = hook(body, String::new()).await;
    assert_eq!(code, 401);
    let (code, answer) = announce("feature", &c_unseen).await;
    assert_eq!(code, 202, "{answer}");
    assert!(answer.contains("ignored"), "{answer}");
    let app = read_app().await;
    assert!(
        app["metadata"]["annotations"]["berth.dev/requested-at"].is_null(),
        "no request recorded: {app}"
    );

    // 2. v2 pushed and announced: built, rolled out under load, zero failed requests.
    let load = Load::start(http_port, &host, "v1", "v2");
    let t_push = Instant::now();
    let c2 = push("v2\n", &dockerfile(&base));
    let (code, answer) = announce("main", &c2).await;
    assert_eq!(code, 202, "{answer}");
    assert!(answer.contains("accepted"), "{answer}");
    let check = until("v2 is rolled out under load");
    let rolled_after = loop {
        let now = containers().await;
        let rolled = now.len() == 1 && now[0].name != before[0].name;
        let Traffic {
            answered,
            last_is_new: last_is_v2,
            ..
        } = load.seen();
        if check.done(rolled && answered >= MIN_REQUESTS && last_is_v2, &|| {
            format!("containers {now:?}, {answered} answered, last v2: {last_is_v2}")
        }) {
            break t_push.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let push_to_v2 = {
        let t = load.stop().await;
        let first_v2 = t.first_new.map(|at| at - t_push);
        println!(
            "push v2 -> first v2 answer: {first_v2:?}; push -> old container gone: {rolled_after:?}; \
             {} requests, {} failed",
            t.answered,
            t.failed.len()
        );
        assert!(
            t.failed.is_empty(),
            "{} of {} requests failed during the switch, first ones: {:#?}\nserver log:\n{}",
            t.failed.len(),
            t.answered,
            &t.failed[..t.failed.len().min(10)],
            server.log_tail()
        );
        first_v2.expect("v2 was served")
    };
    let app = read_app().await;
    assert_eq!(app["status"]["build"]["commit"], c2.as_str());
    assert_eq!(app["status"]["commit"], c2.as_str());
    let image_v2 = app["status"]["build"]["image"].as_str().unwrap().to_string();
    assert_ne!(image_v2, image_v1);
    let events = server.run(&["describe", "app", "web", "-n", &ns]).ok();
    assert!(events.contains("Building"), "{events}");
    assert!(events.contains(&format!("built {image_v2}")), "{events}");

    // 3. A broken Dockerfile: BuildFailed with Docker's words; v2 keeps serving, Ready stays.
    let broken = format!("FROM {base}\nRUN echo about to fail && exit 3\n");
    let c3 = push("v3\n", &broken);
    let (code, answer) = announce("main", &c3).await;
    assert_eq!(code, 202, "{answer}");
    let check = until("the broken build is reported");
    let app = loop {
        let app = read_app().await;
        let failed = condition(&app, "Progressing").is_some_and(|(_, reason, _)| reason == "BuildFailed");
        if check.done(failed, &|| format!("{app}")) {
            break app;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, _, message) = condition(&app, "Progressing").unwrap();
    assert_eq!(status, "False");
    assert!(
        message.contains("returned a non-zero code: 3"),
        "Docker's message: {message}"
    );
    assert!(message.contains(&c3[..12]), "{message}");
    assert_eq!(app["status"]["build"]["phase"], "Failed");
    assert_eq!(app["status"]["commit"], c2.as_str(), "the running version");
    let (ready, _, _) = condition(&app, "Ready").unwrap();
    assert_eq!(ready, "True", "Ready is about the running version: {app}");
    let (built, reason, _) = condition(&app, "Built").unwrap();
    assert_eq!((built.as_str(), reason.as_str()), ("False", "BuildFailed"));
    for _ in 0..5 {
        assert_eq!(get(&http, http_port, &host).await, Ok((200, "v2".to_owned())));
    }
    let events = server.run(&["describe", "app", "web", "-n", &ns]).ok();
    assert!(events.contains("BuildFailed"), "{events}");

    // 4. The build log of the failed build, through the API server.
    let log = server.run(&["logs", "app/web", "-n", &ns, "--build"]).ok();
    assert!(log.contains("RUN echo about to fail && exit 3"), "{log}");
    assert!(log.contains("about to fail"), "the step's own output: {log}");
    assert!(log.contains("returned a non-zero code: 3"), "{log}");
    let last = server
        .run(&["logs", "app/web", "-n", &ns, "--build", "--tail", "1"])
        .ok();
    assert_eq!(last.lines().count(), 1, "{last}");
    // Followed, the log of a build that ended ends too.
    let mut follow = server
        .cli()
        .args(["logs", "app/web", "-n", &ns, "--build", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let check = until("berth logs --build -f ends after a finished build");
    loop {
        let exited = follow.try_wait().unwrap();
        if check.done(exited.is_some(), &|| "still running".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut followed = String::new();
    std::io::Read::read_to_string(&mut follow.stdout.take().unwrap(), &mut followed).unwrap();
    assert_eq!(followed, log);

    // 5. Deletion removes the containers and the built images.
    server
        .run(&["delete", "app/web", "-n", &ns, "--wait", "--timeout=60s"])
        .ok();
    assert_eq!(containers().await.len(), 0);
    assert_eq!(built_images().await, Vec::<String>::new());
    println!("MEASURE push -> new version serving (one run): {push_to_v2:?}");
}

/// A build holds no reconcile worker (one worker here: an image app becomes Ready while the
/// build runs), and a build cut short by `kill -9` of berth is finished after the restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_holds_no_worker_and_survives_a_restart() {
    let run = TestRun::start().await;
    let mut server = run_server(&run, &["--controller-workers", "1"]).await;
    let base = images::busybox_httpd(&run.docker).await;
    let git = GitServer::start();
    let repo = git.create_repo("slow");
    let ns = format!("p{}-production", run.id);
    let slow = format!(
        "FROM {base}\nRUN sleep 12\nCOPY index.html /www/index.html\n\
         ENTRYPOINT [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    );
    let commit = repo.commit("main", &[("index.html", "slow\n"), ("Dockerfile", &slow)]);
    let health =
        "healthCheck:\n    http:\n      port: 8080\n    interval: 1s\n    timeout: 1s\n    retries: 1\n";
    let yaml = format!(
        "apiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: p{id}\nspec: {{}}\n---\n\
         apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: built\n  namespace: {ns}\n\
         spec:\n  source:\n    git:\n      url: {url}\n  destination: default\n  {health}",
        id = run.id,
        url = repo.url
    );
    server.run_stdin(&["apply", "-f", "-"], &yaml).ok();
    let api = Client::new(&server.url, Some(&server.token));
    let built_path = object(Some(&ns), "applications", "built");
    let phase = |app: &Value| {
        app["status"]["build"]["phase"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let check = Deadline {
        what: "the build starts".into(),
        started: Instant::now(),
        server: &server,
    };
    loop {
        let app = api.get(&built_path).await.1;
        if check.done(phase(&app) == "Building", &|| format!("{app}")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The one worker is free while the image builds.
    let image_app = format!(
        "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: plain\n  namespace: {ns}\n\
         spec:\n  source:\n    image: {base}\n  destination: default\n  {health}"
    );
    server.run_stdin(&["apply", "-f", "-"], &image_app).ok();
    server
        .run(&[
            "wait",
            "app/plain",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=60s",
        ])
        .ok();
    let app = api.get(&built_path).await.1;
    assert_eq!(
        phase(&app),
        "Building",
        "the image app was Ready before the build ended: {app}"
    );

    // Killed mid-build: the restarted server finds `Building` in status and builds again.
    server.restart_hard();
    server
        .run(&[
            "wait",
            "app/built",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=120s",
        ])
        .ok();
    let app = Client::new(&server.url, Some(&server.token))
        .get(&built_path)
        .await
        .1;
    assert_eq!(phase(&app), "Succeeded", "{app}");
    assert_eq!(app["status"]["commit"], commit.as_str());
    assert_eq!(app_containers(&run, &ns, "built").await.len(), 1);
}
