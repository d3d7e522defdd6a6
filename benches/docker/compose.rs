//! The docker compose baseline: the same N services in one compose file, brought up with
//! `docker compose up -d --wait` (Compose v2) or `docker-compose up -d` (Debian's v1, which
//! has no `--wait`; its `up -d` returns once every container is started, which is what
//! `--wait` waits for when services have no health check).
//!
//! # Guarantees
//! - Services get the bench image, the same env and port, the bench's run label, and the
//!   service alias on the baselines' (external) network, so compose creates no network.
//!
//! # Caveats
//! - Compose's own parallelism is unbounded, as v2's default. For Debian's v1 the bench sets
//!   `COMPOSE_PARALLEL_LIMIT` above 2N: v1's default (64) is one semaphore shared by the
//!   per-service tasks and the per-container tasks they start, so with more than 64 services
//!   every slot is held by a service waiting for a slot for its container, and `up` deadlocks
//!   (docker/compose#5864, #8226; seen here at N = 200). With all N requests in flight at
//!   once, v1's 60 s HTTP read timeout fails `up` on a busy daemon (seen at N = 200), so
//!   `COMPOSE_HTTP_TIMEOUT` is raised to the bench's own limit.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use berth_controllers::docker::label;

use crate::{raw::ROLE, setup::Bench};

/// Why a compose run gave no figure.
#[derive(Debug)]
pub enum Broke {
    /// `up` ran past the bench's limit and was killed.
    TimedOut(Duration),
    /// `up` could not run or exited non-zero, with its words.
    Failed(String),
}

impl std::fmt::Display for Broke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broke::TimedOut(limit) => write!(f, "compose up did not finish within {limit:?}; killed"),
            Broke::Failed(why) => f.write_str(why),
        }
    }
}

/// A compose command found on this machine.
pub struct Compose {
    program: Vec<String>,
    /// Whether `up` takes `--wait` (Compose v2).
    waits: bool,
    /// `docker compose version` or `docker-compose version` output, first line.
    pub version: String,
}

impl Compose {
    /// `docker compose` when it works, else `docker-compose`, else `None`.
    pub fn find() -> Option<Compose> {
        for (program, waits) in [(vec!["docker", "compose"], true), (vec!["docker-compose"], false)] {
            let out = Command::new(program[0])
                .args(&program[1..])
                .arg("version")
                .output();
            if let Ok(out) = out
                && out.status.success()
            {
                return Some(Compose {
                    program: program.iter().map(|s| s.to_string()).collect(),
                    waits,
                    version: String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                });
            }
        }
        None
    }

    /// Brings up `n` services as project `project`; returns the wall time of `up`, or why
    /// compose did not finish: a baseline that breaks is reported, it does not break the run.
    pub async fn up(&self, bench: &Bench, project: &str, n: usize) -> Result<Duration, Broke> {
        let dir = tempfile::tempdir().expect("compose dir");
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, compose_file(bench, project, n)).expect("write compose file");
        let mut cmd = tokio::process::Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .args(["-p", project, "-f"])
            .arg(&file)
            .args(["up", "-d"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // berth's own converge limit is 0.5 s an app; compose, all N at once, gets twice that.
        let limit = Duration::from_secs(60) + Duration::from_secs(1) * n as u32;
        if self.waits {
            cmd.arg("--wait");
        } else {
            for (var, value) in [
                ("COMPOSE_PARALLEL_LIMIT", 2 * n + 64),
                ("COMPOSE_HTTP_TIMEOUT", limit.as_secs() as usize),
            ] {
                if std::env::var_os(var).is_none() {
                    cmd.env(var, value.to_string());
                }
            }
        }
        let t0 = Instant::now();
        let out = match tokio::time::timeout(limit, cmd.output()).await {
            Ok(out) => out.map_err(|e| Broke::Failed(format!("cannot run compose: {e}")))?,
            Err(_) => return Err(Broke::TimedOut(limit)),
        };
        let took = t0.elapsed();
        if !out.status.success() {
            return Err(Broke::Failed(format!(
                "compose up failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(took)
    }
}

fn compose_file(bench: &Bench, project: &str, n: usize) -> String {
    let mut y = String::from("version: \"3.7\"\nservices:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  s{i}:\n    image: {image}\n    environment:\n      MESSAGE: s{i}\n    expose:\n      - \"8080\"\n    labels:\n      {run}: {id}\n      {role}: compose\n    networks:\n      default:\n        aliases:\n          - s{i}.{project}\n",
            image = bench.image,
            run = label::RUN,
            id = bench.id,
            role = ROLE,
        ));
    }
    y.push_str(&format!(
        "networks:\n  default:\n    external: true\n    name: {}\n",
        bench.raw_net
    ));
    y
}
