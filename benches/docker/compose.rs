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
//! - Compose's own parallelism is its default (v1: 64 at once).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use berth_controllers::docker::label;

use crate::{raw::ROLE, setup::Bench};

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
    /// compose did not finish: a baseline that breaks is reported, it does not break the run
    /// (Debian's docker-compose 1.29 was seen to deadlock with 200 services).
    pub async fn up(&self, bench: &Bench, project: &str, n: usize) -> Result<Duration, String> {
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
        if self.waits {
            cmd.arg("--wait");
        }
        let limit = Duration::from_secs(60) + Duration::from_millis(500) * n as u32;
        let t0 = Instant::now();
        let out = match tokio::time::timeout(limit, cmd.output()).await {
            Ok(out) => out.map_err(|e| format!("cannot run compose: {e}"))?,
            Err(_) => return Err(format!("compose up did not finish within {limit:?}; killed")),
        };
        let took = t0.elapsed();
        if !out.status.success() {
            return Err(format!(
                "compose up failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
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
