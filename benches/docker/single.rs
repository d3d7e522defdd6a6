//! Figure 1: `berth apply` of one Application → Ready, against a raw create + start + wait
//! healthy of the same container; berth's time split into the phases Docker's events show.
//!
//! # Guarantees
//! - Trials alternate berth and raw, so background load on the shared machine weighs on both
//!   alike; each trial's container is removed before the next one starts.
//! - Phases of a berth trial: apply → Docker `start` event (the control plane before Docker
//!   runs the container), `start` → `health_status: healthy` (Docker and the probe interval),
//!   healthy → Ready seen on a watch (the control plane after).
//!
//! # Caveats
//! - The probe interval (1 s, berth's shortest) dominates both sides: Docker runs the first
//!   probe one interval after the start.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use berth_controllers::docker::{Action, Health, label};
use futures::StreamExt;

use crate::{
    berth::{Berth, app_yaml},
    raw,
    report::{Better, Report, Row, Stats},
    setup::Bench,
};

/// How long one trial may take before the run counts as broken.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a berth trial's time went, in seconds.
#[derive(Debug, Default, Clone, Copy)]
struct Phases {
    before_start: f64,
    start_to_healthy: f64,
    healthy_to_ready: f64,
}

/// Runs `trials` trials of each and adds the rows of figure 1.
pub async fn run(bench: &Bench, berth: &Berth, trials: usize, report: &mut Report) -> serde_json::Value {
    let mut ours = Vec::new();
    let mut phases = Vec::new();
    let mut theirs = Vec::new();
    let mut reattach = Vec::new();
    for i in 0..trials {
        let name = format!("single-{i}");
        let yaml = app_yaml(&berth.ns, &name, &bench.image, true);
        let (took, p) = berth_trial(bench, berth, &name, &yaml).await;
        ours.push(took);
        phases.push(p);
        let (took, alias) = raw_trial(bench, &yaml, &format!("bench-{}-single-{i}", bench.id)).await;
        theirs.push(took);
        reattach.push(alias);
        berth
            .cli(
                &[
                    "delete",
                    "app",
                    &name,
                    "-n",
                    &berth.ns,
                    "--wait",
                    "--timeout",
                    "60s",
                ],
                None,
            )
            .await;
    }
    let row = Row::vs(
        "1 apply→Ready, one app",
        "s",
        Stats::of_secs(&ours).expect("trials"),
        "raw create+start+healthy",
        Stats::of_secs(&theirs).expect("trials"),
    )
    .target(1.2, Better::Lower)
    .note("HTTP health check every 1 s");
    report.push(row);
    let pick = |f: fn(&Phases) -> f64| Stats::of(&phases.iter().map(f).collect::<Vec<_>>());
    let split = serde_json::json!({
        "apply_to_docker_start_s": pick(|p| p.before_start),
        "docker_start_to_healthy_s": pick(|p| p.start_to_healthy),
        "healthy_to_ready_s": pick(|p| p.healthy_to_ready),
        "raw_alias_reattach_s": Stats::of_secs(&reattach),
    });
    println!("  where berth's time goes (p50/p95): {split}");
    split
}

async fn berth_trial(bench: &Bench, berth: &Berth, name: &str, yaml: &str) -> (Duration, Phases) {
    // Docker's view of the app's container, collected while the trial runs.
    let seen: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
    let mut events = raw::events(&bench.docker);
    let (collected, app) = (seen.clone(), name.to_string());
    let collector = tokio::spawn(async move {
        while let Some(Ok(ev)) = events.next().await {
            if ev.attributes.get(label::NAME) != Some(&app) {
                continue;
            }
            let mut s = collected.lock().expect("phases lock");
            match ev.action {
                Action::Start if s.0.is_none() => s.0 = Some(Instant::now()),
                Action::HealthStatus(Health::Healthy) if s.1.is_none() => s.1 = Some(Instant::now()),
                _ => {}
            }
        }
    });
    let watch = berth.ready_watch([name.to_string()]).await;
    let t0 = Instant::now();
    berth.apply(yaml.to_string()).await;
    let ready = match watch.wait(TRIAL_TIMEOUT).await {
        Ok(r) => r[name],
        Err(left) => panic!("{left:?} not Ready in {TRIAL_TIMEOUT:?}\n{}", berth.log_tail()),
    };
    collector.abort();
    let (start, healthy) = *seen.lock().expect("phases lock");
    let secs =
        |a: Instant, b: Option<Instant>| b.map_or(f64::NAN, |b| b.saturating_duration_since(a).as_secs_f64());
    let phases = Phases {
        before_start: secs(t0, start),
        start_to_healthy: start.map_or(f64::NAN, |s| secs(s, healthy)),
        healthy_to_ready: healthy.map_or(f64::NAN, |h| ready.saturating_duration_since(h).as_secs_f64()),
    };
    (ready - t0, phases)
}

/// A raw trial's time to healthy, and what re-attaching the container to its network with
/// the service alias then costs (berth does that once a container is ready, so that the
/// alias only resolves to ready containers; not part of the baseline's time).
async fn raw_trial(bench: &Bench, yaml: &str, name: &str) -> (Duration, Duration) {
    let spec = raw::spec(bench, yaml, name);
    let mut events = raw::events(&bench.docker);
    let t0 = Instant::now();
    raw::create_start(&bench.docker, &spec)
        .await
        .unwrap_or_else(|e| panic!("raw create+start of {name}: {e}"));
    let healthy = raw::until(&mut events, TRIAL_TIMEOUT, |ev| raw::healthy(ev, name))
        .await
        .unwrap_or_else(|| panic!("{name} not healthy in {TRIAL_TIMEOUT:?}"));
    let aliases = spec
        .network
        .as_ref()
        .map(|n| n.aliases.clone())
        .unwrap_or_default();
    let t1 = Instant::now();
    bench
        .docker
        .disconnect_network(&bench.raw_net, name)
        .await
        .unwrap_or_else(|e| panic!("disconnect {name}: {e}"));
    bench
        .docker
        .connect_network(&bench.raw_net, name, &aliases)
        .await
        .unwrap_or_else(|e| panic!("connect {name}: {e}"));
    let reattach = t1.elapsed();
    if let Err(e) = bench.docker.remove_container(name).await {
        eprintln!("removing {name}: {e}");
    }
    (healthy - t0, reattach)
}
