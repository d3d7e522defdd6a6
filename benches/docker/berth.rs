//! berth under test: a `berth serve` scoped to the bench's run label, Applications applied
//! through the real CLI, and the moment each one turns Ready read from a live watch.
//!
//! # Guarantees
//! - [`Berth::start`] returns once the `localhost` Server, the `default` Destination (its
//!   network created) and the bench's namespace exist, so a timed apply measures only the
//!   apply and the convergence.
//! - A [`ReadyWatch`] is opened before the apply it times, so no transition is missed; an
//!   app counts as Ready when `Ready=True` and `observedGeneration` is its generation.
//!
//! # Caveats
//! - The server runs with `BERTH_LOG=info`: request-level debug logs would cost CPU that a
//!   real deployment does not spend.

use std::{
    collections::{HashMap, HashSet},
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{
    http::{self, Client, Next},
    server::{Backend, BerthServer, OutputExt},
    setup::Bench,
};

/// A running berth and the namespace the bench applies to.
pub struct Berth {
    /// The server process.
    pub server: BerthServer,
    /// An API client with the admin token.
    pub client: Client,
    /// The namespace (`<project>-production`).
    pub ns: String,
    /// Name of the copy of the server log kept under `target/bench/` when this ends.
    log_name: String,
}

impl Berth {
    /// Starts berth scoped to the bench's run with `extra` serve arguments, and waits until
    /// it can run Applications.
    /// Its log is kept as `target/bench/berth-<what>.log` (the profile's raw material).
    pub async fn start(bench: &Bench, extra: &[&str], what: &str) -> Berth {
        let scope = bench.scope_arg();
        let mut args = vec![
            "--docker-label",
            scope.as_str(),
            "--default-network",
            bench.berth_net.as_str(),
        ];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let server = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            BerthServer::start_with_log(Backend::Embedded, &args, "info")
        })
        .await
        .expect("start berth");
        let client = Client::new(&server.url, Some(&server.token));
        let project = format!("p{}", bench.id);
        let berth = Berth {
            ns: format!("{project}-production"),
            server,
            client,
            log_name: format!("berth-{what}.log"),
        };
        for what in ["server/localhost", "destination/default"] {
            berth
                .cli(&["wait", what, "--for=condition=Ready", "--timeout", "60s"], None)
                .await
                .ok();
        }
        berth
            .cli(
                &["apply", "-f", "-"],
                Some(format!(
                    "apiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: {project}\nspec: {{}}\n"
                )),
            )
            .await
            .ok();
        let env = http::object(None, "environments", &berth.ns);
        http::eventually(&format!("environment {} exists", berth.ns), || async {
            (berth.client.get(&env).await.0 == 200).then_some(())
        })
        .await;
        berth
    }

    /// Runs the CLI against this server, with `stdin` when given.
    pub async fn cli(&self, args: &[&str], stdin: Option<String>) -> std::process::Output {
        let mut cmd = tokio::process::Command::from(self.server.cli());
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run berth");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).await.expect("write stdin");
            drop(pipe);
        }
        child.wait_with_output().await.expect("wait for berth")
    }

    /// `berth apply -f -` of `yaml`; panics (a broken run) when it fails.
    pub async fn apply(&self, yaml: String) {
        self.cli(&["apply", "-f", "-"], Some(yaml)).await.ok();
    }

    /// Opens a watch on the namespace's Applications that reports when each of `names`
    /// turns Ready.
    pub async fn ready_watch(&self, names: impl IntoIterator<Item = String>) -> ReadyWatch {
        let path = http::collection(Some(&self.ns), "applications");
        let (code, list) = self.client.get(&path).await;
        assert_eq!(code, 200, "list applications: {list}");
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let watch = self.client.watch(&path, &format!("resourceVersion={rv}")).await;
        let waiting: HashSet<String> = names.into_iter().collect();
        ReadyWatch {
            watch,
            waiting,
            ready: HashMap::new(),
        }
    }

    /// The server's log tail, for failure messages.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    /// The `berth serve` process id.
    pub fn pid(&self) -> u32 {
        self.server.pid().expect("berth runs")
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.server.kill();
        let dir = crate::report::bench_dir();
        let copied = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::copy(self.server.dir().join("server.log"), dir.join(&self.log_name)));
        if let Err(e) = copied {
            eprintln!("cannot keep the berth log {}: {e}", self.log_name);
        }
    }
}

/// Waits for Applications to turn Ready, recording when each did.
pub struct ReadyWatch {
    watch: http::Watch,
    waiting: HashSet<String>,
    ready: HashMap<String, Instant>,
}

impl ReadyWatch {
    /// Reads the watch until every awaited app is Ready (or `timeout` passes: `Err` with
    /// the names still waiting); returns when each turned Ready.
    pub async fn wait(mut self, timeout: Duration) -> Result<HashMap<String, Instant>, Vec<String>> {
        let deadline = Instant::now() + timeout;
        while !self.waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.watch.next_within(left).await {
                Next::Event(ev) => {
                    let obj = &ev["object"];
                    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                    if is_ready(obj) && self.waiting.remove(name) {
                        self.ready.insert(name.to_string(), Instant::now());
                    }
                }
                Next::Closed | Next::TimedOut => {
                    let mut left: Vec<String> = self.waiting.into_iter().collect();
                    left.sort();
                    return Err(left);
                }
            }
        }
        Ok(self.ready)
    }
}

/// `Ready=True` for the current generation.
pub fn is_ready(app: &Value) -> bool {
    let generation = app.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = app.pointer("/status/observedGeneration").and_then(Value::as_i64);
    generation.is_some()
        && generation == observed
        && app
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// An Application manifest of the bench image; `health` adds an HTTP health check probed
/// every second (the shortest interval berth passes to Docker).
pub fn app_yaml(ns: &str, name: &str, image: &str, health: bool) -> String {
    let mut y = format!(
        "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  source:\n    image: {image}\n  destination: default\n  ports:\n  - containerPort: 8080\n\
         \x20 env:\n  - name: MESSAGE\n    value: {name}\n"
    );
    if health {
        y.push_str(HEALTH_YAML);
    }
    y
}

/// The health check of [`app_yaml`].
pub const HEALTH_YAML: &str =
    "  healthCheck:\n    http:\n      port: 8080\n    interval: 1s\n    timeout: 1s\n    retries: 3\n";
