//! berth against raw Docker and docker compose, on the real daemon: apply→Ready of one app
//! (figure 1), converging N apps (2), drift repair (3), rest cost (4) and scaling (6) of
//! issue 8. Figure 5 (the API) is `benches/api.rs`.
//!
//! Run with `make bench` (or `cargo bench --bench docker`). Prints one table and writes
//! `target/bench/docker.json`; figures are never asserted: the process fails only when a run
//! breaks (a timeout, a failed Docker call), and cleans up in every case.
//!
//! Knobs (environment): `BENCH_SIZES` (default `50,200,500`), `BENCH_SINGLE_TRIALS` (10),
//! `BENCH_DRIFT_TRIALS` (50), `BENCH_REST_SECS` (20), `BENCH_REPEATS` (runs per size; by
//! default 3 for N ≤ 50, else 1), `BENCH_WORKERS` (berth's
//! `--controller-workers`, and the raw script's parallelism; default berth's own default),
//! `BENCH_BASELINES=0` (converge berth only: no raw script, no compose).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/common/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../../tests/common/images.rs"]
#[allow(dead_code)]
mod images;
#[path = "../report.rs"]
#[allow(dead_code)]
mod report;
#[path = "../../tests/common/server.rs"]
#[allow(dead_code)]
mod server;

mod berth;
mod compose;
mod converge;
mod drift;
mod raw;
mod rest;
mod setup;
mod single;

use std::time::Duration;

use serde_json::json;

/// berth's default `--controller-workers`.
const BERTH_DEFAULT_WORKERS: usize = 2;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let code = rt.block_on(async {
        let (bench, cleanup) = setup::Bench::start().await;
        println!("bench run {} (label dev.berth.run={})", bench.id, bench.id);
        let outcome = tokio::select! {
            r = tokio::spawn(run(bench)) => match r {
                Ok(()) => 0,
                Err(e) => { eprintln!("bench run broke: {e}"); 1 }
            },
            _ = tokio::signal::ctrl_c() => { eprintln!("interrupted; cleaning up"); 130 }
        };
        drop(cleanup);
        outcome
    });
    std::process::exit(code);
}

/// Prints how long the run has taken so far, after each phase: where `make bench` spends its time.
fn phase(t0: std::time::Instant, done: &str) {
    println!("[{:>6.1} s] {done}", t0.elapsed().as_secs_f64());
}

async fn run(bench: setup::Bench) {
    let t0 = std::time::Instant::now();
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![50, 200, 500]);
    let workers = env_usize("BENCH_WORKERS", BERTH_DEFAULT_WORKERS);
    let fixed_repeats = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    let repeats = move |n: usize| fixed_repeats.unwrap_or(if n <= 50 { 3 } else { 1 });
    let workers_arg = workers.to_string();
    let serve_args = [
        "--controller-workers",
        workers_arg.as_str(),
        "--app-min-ready",
        "1s",
    ];
    let compose = compose::Compose::find();
    let mut report = report::Report::new();

    let single_trials = env_usize("BENCH_SINGLE_TRIALS", 10);
    let drift_trials = env_usize("BENCH_DRIFT_TRIALS", 50);
    let single_berth = berth::Berth::start(&bench, &serve_args, "single").await;
    let mut split = json!(null);
    if single_trials > 0 {
        split = single::run(&bench, &single_berth, single_trials, &mut report).await;
        phase(t0, "figure 1 (one app)");
    }
    if drift_trials > 0 {
        drift::run(
            &bench,
            &single_berth,
            drift_trials,
            (drift_trials / 10).max(2),
            &mut report,
        )
        .await;
        phase(t0, "figure 3 (drift)");
    }
    drop(single_berth);
    bench
        .remove_containers(&berth_controllers::docker::Labels::from([(
            berth_controllers::docker::label::KIND.to_string(),
            "Application".to_string(),
        )]))
        .await;

    if compose.is_none() {
        println!("no docker compose nor docker-compose: the compose baseline is skipped");
    }
    let plan = converge::Plan {
        sizes: &sizes,
        repeats: &repeats,
        workers,
        rest_window: Duration::from_secs(env_usize("BENCH_REST_SECS", 20) as u64),
        compose: compose.as_ref(),
        baselines: env_usize("BENCH_BASELINES", 1) != 0,
    };
    let converge = converge::run(&bench, &plan, &mut report).await;
    phase(t0, "figures 2, 4, 6 (converge, rest, scaling)");
    let extra = json!({
        "run": bench.id,
        "compose": compose.as_ref().map(|c| c.version.clone()),
        "workers": workers,
        "single_app_phases": split,
        "converge": converge,
    });
    report
        .finish("docker", extra)
        .expect("write target/bench/docker.json");
}
