//! End-to-end tests of the Server, Destination and Application controllers against the real
//! Docker daemon. Each test runs its own `berth serve` scoped by a unique run label
//! (`--docker-label dev.berth.run=<id>`), so tests run in parallel and a guard removes every
//! container, network and volume carrying the label, also on panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use berth_controllers::docker::{Docker, Labels, label};
use common::{
    images::busybox_httpd,
    registry::Registry,
    server::{Backend, BerthServer, OutputExt},
};
use serde_json::Value;

/// A test's world: its server, run label, namespace and network.
struct World {
    s: BerthServer,
    image: String,
    run: String,
    ns: String,
    net: String,
    rt: tokio::runtime::Runtime,
    docker: Docker,
}

impl World {
    fn start(extra: &[&str]) -> World {
        let run = format!(
            "t{}{}",
            std::process::id(),
            RUN_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let net = format!("berth-{run}");
        let label_arg = format!("{}={run}", label::RUN);
        let mut args = vec![
            "--docker-label",
            &label_arg,
            "--default-network",
            &net,
            "--app-min-ready",
            "1s",
        ];
        args.extend_from_slice(extra);
        let s = BerthServer::start(Backend::Embedded, &args);
        let p = format!("p{run}");
        s.run_stdin(
            &["apply", "-f", "-"],
            &format!("apiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: {p}\nspec: {{}}\n"),
        )
        .ok();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let docker = rt
            .block_on(Docker::connect(berth_controllers::docker::DEFAULT_URI))
            .unwrap();
        let image = rt.block_on(busybox_httpd(&docker));
        World {
            s,
            image,
            ns: format!("{p}-production"),
            run,
            net,
            rt,
            docker,
        }
    }

    fn apply(&self, yaml: &str) {
        self.s.run_stdin(&["apply", "-f", "-"], yaml).ok();
    }

    /// An Application manifest on `dest` with `extra` spec lines (indented two spaces).
    fn app(&self, name: &str, dest: &str, extra: &str) -> String {
        format!(
            "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
             spec:\n  source:\n    image: {img}\n  destination: {dest}\n  ports:\n  - containerPort: 8080\n{extra}",
            ns = self.ns,
            img = self.image,
        )
    }

    fn get(&self, kind: &str, name: &str) -> Value {
        let out = self
            .s
            .run(&["get", kind, name, "-n", &self.ns, "-o", "json"])
            .ok();
        serde_json::from_str(&out).unwrap()
    }

    fn wait_ready(&self, name: &str, timeout: &str) {
        self.s
            .run(&[
                "wait",
                &format!("app/{name}"),
                "-n",
                &self.ns,
                "--for=condition=Ready",
                "--timeout",
                timeout,
            ])
            .ok();
    }

    /// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`.
    fn until<T>(&self, what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
        self.s.until(what, timeout, f)
    }

    /// The app's containers: (name, running, id, startedAt).
    fn containers(&self, app: &str) -> Vec<(String, bool, String, String)> {
        let selector = Labels::from([
            (label::RUN.to_string(), self.run.clone()),
            (label::NAME.to_string(), app.to_string()),
            (label::NAMESPACE.to_string(), self.ns.clone()),
        ]);
        let list = self.rt.block_on(self.docker.list_containers(&selector)).unwrap();
        list.into_iter()
            .filter_map(|c| {
                let s = self.rt.block_on(self.docker.inspect_container(&c.id)).ok()?;
                Some((s.name, s.running, s.id, s.started_at.unwrap_or_default()))
            })
            .collect()
    }

    /// `wget` from a helper container on `net`.
    fn fetch(&self, net: &str, url: &str) -> Option<String> {
        let out = Command::new("docker")
            .args(["run", "--rm", "--label", &format!("{}={}", label::RUN, self.run)])
            .args(["--network", net, "--entrypoint", "/bin/busybox", &self.image])
            .args(["wget", "-qO-", url])
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "fetch {url} on {net} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn metric(&self, needle: &str) -> u64 {
        let out = Command::new("curl")
            .args(["-s", &format!("{}/metrics", self.s.url)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }
}

static RUN_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Drop for World {
    fn drop(&mut self) {
        self.s.kill();
        let filter = format!("label={}={}", label::RUN, self.run);
        for (what, list) in [
            ("container", vec!["ps", "-aq", "--filter", &filter]),
            ("network", vec!["network", "ls", "-q", "--filter", &filter]),
            ("volume", vec!["volume", "ls", "-q", "--filter", &filter]),
            ("image", vec!["images", "-q", "--filter", &filter]),
        ] {
            let out = Command::new("docker").args(&list).output().unwrap();
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let mut rm = Command::new("docker");
            match what {
                "container" => rm.args(["rm", "-f"]),
                "image" => rm.args(["rmi", "-f"]),
                other => rm.args([other, "rm"]),
            };
            let _ = rm.args(&ids).output();
        }
        let _ = Command::new("docker").args(["network", "rm", &self.net]).output();
    }
}

fn condition(obj: &Value, type_: &str) -> Option<(String, String, String)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find_map(|c| {
            (c["type"] == type_).then(|| {
                (
                    c["status"].as_str().unwrap_or_default().to_string(),
                    c["reason"].as_str().unwrap_or_default().to_string(),
                    c["message"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
}

fn env(message: &str) -> String {
    format!("  env:\n  - name: MESSAGE\n    value: {message}\n")
}

#[test]
fn apply_serves_rolls_and_deletes() {
    let w = World::start(&[]);
    // The localhost Server and default Destination appear on their own.
    w.s.run(&[
        "wait",
        "server/localhost",
        "--for=condition=Ready",
        "--timeout",
        "20s",
    ])
    .ok();
    w.s.run(&[
        "wait",
        "destination/default",
        "--for=condition=Ready",
        "--timeout",
        "20s",
    ])
    .ok();
    let server = w.get("server", "localhost");
    assert!(server.pointer("/status/dockerVersion").is_some(), "{server}");

    let t0 = Instant::now();
    w.apply(&w.app("web", "default", &env("v1")));
    w.wait_ready("web", "10s");
    println!("apply -> Ready: {:?}", t0.elapsed());
    let alias = format!("http://web.{}:8080/", w.ns);
    assert_eq!(w.fetch(&w.net, &alias).as_deref(), Some("v1"));
    // A first deploy: nothing else serves, so the alias was given at creation (no re-attach).
    let disconnects = "berth_docker_api_calls_total{operation=\"network_disconnect\"}";
    assert_eq!(w.metric(disconnects), 0, "first deploy re-attached the alias");

    // Rest cost: once converged, berth makes no Docker call at all (the Server's heartbeat
    // is minutes apart; a lost daemon is noticed from the event stream).
    let calls = |w: &World| {
        let out = Command::new("curl")
            .args(["-s", &format!("{}/metrics", w.s.url)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("berth_docker_api_calls_total{") && !l.contains("\"events\""))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let settled = w.until("docker calls to settle", Duration::from_secs(10), || {
        let a = calls(&w);
        std::thread::sleep(Duration::from_millis(500));
        (calls(&w) == a).then_some(a)
    });
    let window = Instant::now();
    w.until("a rest window", Duration::from_secs(5), || {
        (window.elapsed() >= Duration::from_secs(3)).then_some(())
    });
    assert_eq!(calls(&w), settled, "docker calls at rest");
    let before = w.containers("web");
    assert_eq!(before.len(), 1);

    // Rolling update: the new container replaces the old one.
    w.apply(&w.app("web", "default", &env("v2")));
    w.until("only the new container", Duration::from_secs(20), || {
        let now = w.containers("web");
        (now.len() == 1 && now[0].0 != before[0].0 && now[0].1).then_some(())
    });
    w.wait_ready("web", "10s");
    assert_eq!(w.fetch(&w.net, &alias).as_deref(), Some("v2"));
    // While v1 served, v2's container got the alias only once ready (a re-attach).
    assert!(
        w.metric(disconnects) >= 1,
        "the rolling update did not re-attach the alias"
    );
    let app = w.get("app", "web");
    let containers = app.pointer("/status/containers").unwrap().as_array().unwrap();
    assert_eq!(containers.len(), 1, "{app}");
    assert_eq!(containers[0]["ready"], true);

    // Delete: no container or attachment with the test's labels remains.
    w.s.run(&["delete", "app", "web", "-n", &w.ns]).ok();
    w.s.run(&["wait", "app/web", "-n", &w.ns, "--for=delete", "--timeout", "20s"])
        .ok();
    assert!(w.containers("web").is_empty());
    let net = w.rt.block_on(w.docker.inspect_network(&w.net)).unwrap();
    assert!(net.containers.is_empty(), "{:?}", net.containers);
}

#[test]
fn drift_is_repaired_for_kill_stop_and_rm() {
    let w = World::start(&[]);
    w.apply(&w.app("drift", "default", &env("d")));
    w.wait_ready("drift", "15s");
    for how in ["kill", "stop", "rm"] {
        // Let the container run past min-ready so the crash-loop count resets.
        let (name, id, started) = w.until("a settled container", Duration::from_secs(10), || {
            let c = w.containers("drift");
            let (name, running, id, started) = c.first()?.clone();
            let up = chrono::DateTime::parse_from_rfc3339(&started).ok()?;
            let age = chrono::Utc::now().signed_duration_since(up);
            (running && c.len() == 1 && age > chrono::Duration::milliseconds(1300))
                .then_some((name, id, started))
        });
        let t = Instant::now();
        match how {
            "kill" => w.rt.block_on(w.docker.kill_container(&name, "SIGKILL")).unwrap(),
            "stop" => w.rt.block_on(w.docker.stop_container(&name, Some(0))).unwrap(),
            _ => w.rt.block_on(w.docker.remove_container(&name)).unwrap(),
        }
        let t_action = t.elapsed();
        w.until(&format!("repair after {how}"), Duration::from_secs(10), || {
            let c = w.containers("drift");
            c.iter()
                .any(|(_, running, cid, st)| *running && (cid != &id || st != &started))
                .then_some(())
        });
        let took = t.elapsed();
        println!("drift repair after docker {how}: {took:?} (the {how} call itself took {t_action:?})");
        assert!(took < Duration::from_secs(5), "{how}: {took:?}");
    }
}

#[test]
fn broken_update_keeps_the_old_version_serving() {
    let w = World::start(&["--app-progress-deadline", "4s"]);
    let hc = |port: u16| {
        format!(
            "  healthCheck:\n    http:\n      port: {port}\n    interval: 1s\n    timeout: 1s\n    retries: 1\n"
        )
    };
    w.apply(&w.app("br", "default", &(env("v1") + &hc(8080))));
    w.wait_ready("br", "15s");
    w.apply(&w.app("br", "default", &(env("v2") + &hc(9999))));
    w.s.run(&[
        "wait",
        "app/br",
        "-n",
        &w.ns,
        "--for=condition=Progressing=false",
        "--timeout",
        "30s",
    ])
    .ok();
    let app = w.until("HealthCheckFailed", Duration::from_secs(20), || {
        let app = w.get("app", "br");
        let (status, reason, _) = condition(&app, "Progressing")?;
        (status == "False" && reason == "HealthCheckFailed").then_some(app)
    });
    let (_, _, message) = condition(&app, "Progressing").unwrap();
    assert!(message.contains("last log lines"), "{message}");
    assert_eq!(
        w.fetch(&w.net, &format!("http://br.{}:8080/", w.ns)).as_deref(),
        Some("v1"),
        "the old version keeps serving"
    );
    let events = w.s.run(&["get", "events", "-o", "json"]).ok();
    assert!(
        events.contains("HealthCheckFailed") && events.contains("Warning"),
        "{events}"
    );
}

/// Runs the docker CLI; panics with its stderr on failure.
fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_missing_image_is_pulled_and_its_digest_recorded() {
    let registry = Registry::start();
    let w = World::start(&[]);
    // An image that exists only in the registry: a unique layer on the test image, pushed,
    // then removed locally.
    let image = format!("{}/berth-test/pull-{}:v1", registry.host, w.run);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {}\nCOPY blob /blob\n", w.image),
    )
    .unwrap();
    let blob: Vec<u8> = format!("{} ", w.run).bytes().cycle().take(4 << 20).collect();
    std::fs::write(dir.path().join("blob"), blob).unwrap();
    let run_label = format!("{}={}", label::RUN, w.run);
    docker_cli(&[
        "build",
        "-q",
        "--label",
        &run_label,
        "-t",
        &image,
        dir.path().to_str().unwrap(),
    ]);
    let pushed = docker_cli(&["push", &image]);
    let digest = pushed
        .split_whitespace()
        .find(|t| t.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in the push output: {pushed}"))
        .to_string();
    docker_cli(&["rmi", &image]);
    assert!(w.rt.block_on(w.docker.inspect_image(&image)).is_err());

    let app = w.app("pulled", "default", "").replace(&w.image, &image);
    w.apply(&app);
    w.wait_ready("pulled", "60s");
    let app = w.get("app", "pulled");
    let repo = image.trim_end_matches(":v1");
    assert_eq!(
        app["status"]["imageDigest"],
        format!("{repo}@{digest}"),
        "{}",
        app["status"]
    );
    let events = w.s.run(&["get", "events", "-o", "json"]).ok();
    let events: Value = serde_json::from_str(&events).unwrap();
    let pulled = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["spec"]["reason"] == "Pulled" || e["reason"] == "Pulled")
        .unwrap_or_else(|| panic!("no Pulled event: {events}"));
    let message = pulled.to_string();
    assert!(
        message.contains(&format!("digest {digest}")) && message.contains(" layers, "),
        "{message}"
    );
}

#[test]
fn destinations_isolate_and_aliases_resolve() {
    let w = World::start(&[]);
    let (a, b) = (format!("{}-a", w.net), format!("{}-b", w.net));
    for (name, net) in [("da", &a), ("db", &b)] {
        w.apply(&format!(
            "apiVersion: berth.dev/v1\nkind: Destination\nmetadata:\n  name: {name}{run}\nspec:\n  server: localhost\n  network: {net}\n",
            run = w.run
        ));
    }
    w.s.run(&[
        "wait",
        "server/localhost",
        "--for=condition=Ready",
        "--timeout",
        "20s",
    ])
    .ok();
    let (da, db) = (format!("da{}", w.run), format!("db{}", w.run));
    w.apply(&w.app("one", &da, &env("one")));
    w.apply(&w.app("two", &da, &env("two")));
    w.apply(&w.app("three", &db, &env("three")));
    for n in ["one", "two", "three"] {
        w.wait_ready(n, "20s");
    }
    assert_eq!(
        w.fetch(&a, &format!("http://two.{}:8080/", w.ns)).as_deref(),
        Some("two")
    );
    assert_eq!(
        w.fetch(&a, &format!("http://one.{}:8080/", w.ns)).as_deref(),
        Some("one")
    );
    assert_eq!(w.fetch(&a, &format!("http://three.{}:8080/", w.ns)), None);
    assert_eq!(w.fetch(&b, &format!("http://one.{}:8080/", w.ns)), None);
    for n in ["one", "two", "three"] {
        w.s.run(&["delete", "app", n, "-n", &w.ns]).ok();
    }
    for n in ["one", "two", "three"] {
        w.s.run(&[
            "wait",
            &format!("app/{n}"),
            "-n",
            &w.ns,
            "--for=delete",
            "--timeout",
            "30s",
        ])
        .ok();
    }
    for d in [&da, &db] {
        w.s.run(&["delete", "destination", d]).ok();
        let waited = w.s.run(&[
            "wait",
            &format!("destination/{d}"),
            "--for=delete",
            "--timeout",
            "30s",
        ]);
        assert!(
            waited.status.success(),
            "{}\nserver log:\n{}",
            waited.err(),
            w.s.log_tail()
        );
    }
    assert!(
        w.rt.block_on(w.docker.inspect_network(&a)).is_err(),
        "network removed with its destination"
    );
}

#[test]
fn crash_loop_backs_off() {
    let w = World::start(&[]);
    w.apply(&w.app(
        "crash",
        "default",
        "  command: [\"/bin/sh\", \"-c\", \"echo boom; exit 3\"]\n",
    ));
    let app = w.until("CrashLoopBackOff", Duration::from_secs(20), || {
        let app = w.get("app", "crash");
        let (status, reason, _) = condition(&app, "Degraded")?;
        (status == "True" && reason == "CrashLoopBackOff").then_some(app)
    });
    let (_, _, message) = condition(&app, "Degraded").unwrap();
    assert!(
        message.contains("restarts") && message.contains("boom"),
        "{message}"
    );
    let starts = "berth_docker_api_calls_total{operation=\"container_start\"}";
    let first = w.metric(starts);
    let window = Instant::now();
    // Observe for a window: with delays doubling from 1 s, only a few starts fit in it.
    w.until("an observation window", Duration::from_secs(10), || {
        (window.elapsed() >= Duration::from_secs(6)).then_some(())
    });
    let during = w.metric(starts) - first;
    println!("container starts in 6 s of crash loop: {during}");
    assert!(during <= 4, "{during} starts in 6 s");
    let restarts = w.get("app", "crash")["status"]["containers"][0]["restarts"]
        .as_u64()
        .unwrap();
    assert!(restarts >= 2, "{restarts}");
}

#[test]
fn secret_change_rolls_the_app() {
    let w = World::start(&[]);
    let secret = |v: &str| {
        format!(
            "apiVersion: berth.dev/v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: {}\nspec:\n  data:\n    msg: {v}\n",
            w.ns
        )
    };
    w.apply(&secret("one"));
    let env = "  env:\n  - name: MESSAGE\n    secretKeyRef:\n      name: s\n      key: msg\n";
    w.apply(&w.app("sec", "default", env));
    w.wait_ready("sec", "15s");
    let url = format!("http://sec.{}:8080/", w.ns);
    assert_eq!(w.fetch(&w.net, &url).as_deref(), Some("one"));
    w.apply(&secret("two"));
    w.until("the app serving the new secret", Duration::from_secs(20), || {
        let c = w.containers("sec");
        (c.len() == 1 && w.fetch(&w.net, &url).as_deref() == Some("two")).then_some(())
    });
}

#[test]
fn kill_9_while_converging_leaves_no_duplicates_or_orphans() {
    let mut w = World::start(&[]);
    let all: String = (0..20)
        .map(|i| w.app(&format!("m{i}"), "default", &env(&format!("m{i}"))))
        .collect::<Vec<_>>()
        .join("---\n");
    // An orphan: a berth container of an Application that does not exist.
    let orphan = format!("orphan-{}", w.run);
    let out = Command::new("docker")
        .args(["create", "--name", &orphan])
        .args(["--label", &format!("{}={}", label::RUN, w.run)])
        .args([
            "--label",
            "dev.berth.managed=true",
            "--label",
            "dev.berth.kind=Application",
        ])
        .args(["--label", &format!("dev.berth.namespace={}", w.ns)])
        .args(["--label", "dev.berth.name=ghost", "--label", "dev.berth.uid=nope"])
        .arg(&w.image)
        .output()
        .unwrap();
    assert!(out.status.success());
    w.apply(&all);
    let count = |w: &World| {
        let selector = Labels::from([
            (label::RUN.to_string(), w.run.clone()),
            (label::KIND.to_string(), "Application".to_string()),
        ]);
        w.rt.block_on(w.docker.list_containers(&selector)).unwrap()
    };
    w.until("some containers", Duration::from_secs(20), || {
        (count(&w).len() >= 5).then_some(())
    });
    w.s.restart_hard();
    for i in 0..20 {
        w.wait_ready(&format!("m{i}"), "60s");
    }
    let list = w.until("exactly 20 containers", Duration::from_secs(20), || {
        let l = count(&w);
        (l.len() == 20).then_some(l)
    });
    let mut names: Vec<&str> = list.iter().map(|c| c.labels[label::NAME].as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20, "one container per app");
    assert!(!list.iter().any(|c| c.name == orphan), "orphan removed");
}

#[test]
fn image_pull_failure_is_reported_with_the_registry_error() {
    let w = World::start(&[]);
    let yaml = w
        .app("nopull", "default", "")
        // A registry on a closed loopback port: the pull fails without leaving this machine.
        .replace(&w.image, &format!("127.0.0.1:9/berth-test/absent-{}:1", w.run));
    w.apply(&yaml);
    let (_, _, message) = w.until("ImagePullFailed", Duration::from_secs(20), || {
        let (status, reason, message) = condition(&w.get("app", "nopull"), "Ready")?;
        (status == "False" && reason == "ImagePullFailed").then_some((status, reason, message))
    });
    assert!(message.contains("absent-"), "{message}");
    assert!(w.containers("nopull").is_empty());
    let events = w.s.run(&["get", "events", "-o", "json"]).ok();
    assert!(events.contains("ImagePullFailed"), "{events}");
}

#[test]
fn container_settings_files_and_network_aliases_reach_the_container() {
    let root = tempfile::tempdir().unwrap();
    let w = World::start(&["--host-root", root.path().to_str().unwrap()]);
    let alias = format!("alias-{}", w.run);
    let manifest = |message: &str| {
        let extra = format!(
            "  user: \"65534:65534\"\n  workingDir: /www\n\
             \x20 command: [/bin/busybox, httpd, -f, -p, \"8080\", -h, /www]\n\
             \x20 networkAliases: [{alias}]\n  labels:\n    com.example.test: {run}\n\
             \x20 healthCheck:\n    shell: test -r /www/index.html && wget -q -O /dev/null http://127.0.0.1:8080/\n\
             \x20   interval: 1s\n\
             \x20 files:\n  - mountPath: /www/index.html\n    content: seeded\n    readOnly: true\n{env}",
            run = w.run,
            env = env(message),
        );
        w.app("files", "default", &extra)
    };
    w.apply(&manifest("one"));
    w.wait_ready("files", "30s");
    let [(name, true, id, _)] = &w.containers("files")[..] else {
        panic!("one running container expected: {:?}", w.containers("files"));
    };
    let config = docker_cli(&["inspect", "-f", "{{.Config.User}} {{.Config.WorkingDir}}", id]);
    assert_eq!(config.trim(), "65534:65534 /www");
    let state = w.rt.block_on(w.docker.inspect_container(id)).unwrap();
    assert_eq!(state.labels.get("com.example.test"), Some(&w.run));
    assert_eq!(state.health, Some(berth_controllers::docker::Health::Healthy));
    let aliases = state.aliases.get(&w.net).cloned().unwrap_or_default();
    let service = format!("files.{}", w.ns);
    assert!(
        aliases.contains(&alias) && aliases.contains(&service),
        "{aliases:?}"
    );
    let seen = |id: &str| {
        docker_cli(&[
            "exec",
            id,
            "sh",
            "-c",
            "stat -c %F /www/index.html; cat /www/index.html",
        ])
    };
    assert_eq!(seen(id), "regular file\nseeded");
    assert_eq!(
        w.fetch(&w.net, &format!("http://{alias}:8080/")).as_deref(),
        Some("seeded"),
        "the extra alias resolves to the ready container"
    );

    // The file was seeded on the server; an edit there survives a recreate.
    let host = root.path().join(format!("files/{}/files/www/index.html", w.ns));
    assert!(std::fs::symlink_metadata(&host).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "seeded");
    std::fs::write(&host, "edited").unwrap();
    w.apply(&manifest("two"));
    let new = w.until("the new container alone", Duration::from_secs(30), || {
        match &w.containers("files")[..] {
            [(n, true, id, _)] if n != name => Some(id.clone()),
            _ => None,
        }
    });
    w.wait_ready("files", "30s");
    assert_eq!(
        seen(&new),
        "regular file\nedited",
        "seeded once: the server's edit wins"
    );
    assert_eq!(std::fs::read_to_string(&host).unwrap(), "edited");
    w.s.run(&["delete", "app", "files", "-n", &w.ns]).ok();
}
