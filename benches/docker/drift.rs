//! Figure 3: drift repair. A managed container is removed (`docker rm -f`) or killed
//! (`docker kill`); timed until its replacement runs and until it is healthy. The baseline is
//! a script that reacts at once (no event detection) with the same calls by hand: start again
//! after a kill, create + start after a removal.
//!
//! # Guarantees
//! - Trials go round-robin over a few apps, each left running for longer than berth's
//!   `--app-min-ready` before it is hit again, so no trial measures crash-loop backoff.
//! - A trial starts only from a converged state: the container runs and is healthy.
//!
//! # Caveats
//! - "Healthy" includes the 1 s probe interval on both sides.

use std::time::{Duration, Instant};

use berth_controllers::docker::{Action, Health, Labels, label};

use crate::{
    berth::{Berth, app_yaml},
    raw,
    report::{Report, Row, Stats},
    setup::Bench,
};

/// Apps the trials rotate over.
const APPS: usize = 3;
/// How long a container must have run before it is hit (berth's `--app-min-ready` + margin).
const SETTLED: Duration = Duration::from_millis(1300);
/// How long a repair may take before the run counts as broken.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Remove,
    Kill,
}

/// Times of one repair: until the replacement runs, until it is healthy.
#[derive(Default)]
struct Times {
    running: Vec<Duration>,
    healthy: Vec<Duration>,
}

/// Runs `trials` berth trials (half of each kind) and `baseline_trials` raw ones of each
/// kind, adding the rows of figure 3.
pub async fn run(bench: &Bench, berth: &Berth, trials: usize, baseline_trials: usize, report: &mut Report) {
    let names: Vec<String> = (0..APPS).map(|i| format!("drift-{i}")).collect();
    let watch = berth.ready_watch(names.clone()).await;
    let yaml: Vec<String> = names
        .iter()
        .map(|n| app_yaml(&berth.ns, n, &bench.image, true))
        .collect();
    berth.apply(yaml.join("---\n")).await;
    if let Err(left) = watch.wait(REPAIR_TIMEOUT).await {
        panic!("{left:?} not Ready\n{}", berth.log_tail());
    }
    let (mut rm, mut kill) = (Times::default(), Times::default());
    for i in 0..trials {
        let app = &names[i % APPS];
        let how = if (i / APPS).is_multiple_of(2) {
            How::Remove
        } else {
            How::Kill
        };
        let selector = Labels::from([
            (label::RUN.to_string(), bench.id.clone()),
            (label::NAME.to_string(), app.clone()),
        ]);
        let container = settled(bench, &selector).await;
        let times = if how == How::Remove { &mut rm } else { &mut kill };
        let (running, healthy) = hit(
            bench,
            &container,
            how,
            |ev| ev.attributes.get(label::NAME) == Some(app),
            || async {},
        )
        .await;
        times.running.push(running);
        times.healthy.push(healthy);
    }

    // The baseline: the same container, repaired by a script the moment it is hit.
    let name = format!("bench-{}-drift", bench.id);
    let spec = raw::spec(bench, &yaml[0], &name);
    let mut events = raw::events(&bench.docker);
    raw::create_start(&bench.docker, &spec)
        .await
        .expect("raw drift container");
    raw::until(&mut events, REPAIR_TIMEOUT, |ev| raw::healthy(ev, &name))
        .await
        .expect("raw drift container healthy");
    let (mut raw_rm, mut raw_kill) = (Times::default(), Times::default());
    let selector = Labels::from([
        (label::RUN.to_string(), bench.id.clone()),
        (raw::ROLE.to_string(), "raw".to_string()),
    ]);
    for i in 0..baseline_trials * 2 {
        let how = if i.is_multiple_of(2) {
            How::Remove
        } else {
            How::Kill
        };
        let container = settled(bench, &selector).await;
        let times = if how == How::Remove {
            &mut raw_rm
        } else {
            &mut raw_kill
        };
        let repair = || async {
            let result = match how {
                How::Remove => raw::create_start(&bench.docker, &spec).await,
                How::Kill => bench.docker.start_container(&name).await,
            };
            result.expect("raw repair");
        };
        let (running, healthy) = hit(
            bench,
            &container,
            how,
            |ev| ev.name.as_deref() == Some(name.as_str()),
            repair,
        )
        .await;
        times.running.push(running);
        times.healthy.push(healthy);
    }
    if let Err(e) = bench.docker.remove_container(&name).await {
        eprintln!("removing {name}: {e}");
    }

    let stats = |d: &[Duration]| Stats::of_secs(d).expect("trials");
    for (what, ours, theirs) in [("rm -f", &rm, &raw_rm), ("kill", &kill, &raw_kill)] {
        report.push(Row::vs(
            &format!("3 drift {what} → running again"),
            "s",
            stats(&ours.running),
            "script repairing at once",
            stats(&theirs.running),
        ));
        report.push(Row::vs(
            &format!("3 drift {what} → healthy again"),
            "s",
            stats(&ours.healthy),
            "script repairing at once",
            stats(&theirs.healthy),
        ));
    }
    let all: Vec<Duration> = rm.running.iter().chain(&kill.running).copied().collect();
    report.push(
        Row::vs_target("3 drift, all trials → running again", "s", stats(&all), 1.0)
            .note("issue target: p50 < 1 s"),
    );
}

/// The container matching `selector` once it has run, healthy, for [`SETTLED`].
async fn settled(bench: &Bench, selector: &Labels) -> String {
    let deadline = Instant::now() + REPAIR_TIMEOUT;
    loop {
        let list = bench
            .docker
            .list_containers(selector)
            .await
            .expect("list containers");
        if let [c] = list.as_slice()
            && let Ok(s) = bench.docker.inspect_container(&c.id).await
            && s.running
            && s.health == Some(Health::Healthy)
            && s.started_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| {
                    chrono::Utc::now()
                        .signed_duration_since(t)
                        .to_std()
                        .unwrap_or_default()
                        >= SETTLED
                })
        {
            return s.name;
        }
        assert!(Instant::now() < deadline, "no settled container for {selector:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Hits `container`, runs `repair` (nothing for berth: it repairs on its own), and waits
/// for the `start` and then the `healthy` event of a container `mine` accepts.
async fn hit<F, Fut>(
    bench: &Bench,
    container: &str,
    how: How,
    mine: impl Fn(&berth_controllers::docker::Event) -> bool,
    repair: F,
) -> (Duration, Duration)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut events = raw::events(&bench.docker);
    let t0 = Instant::now();
    match how {
        How::Remove => bench.docker.remove_container(container).await,
        How::Kill => bench.docker.kill_container(container, "SIGKILL").await,
    }
    .unwrap_or_else(|e| panic!("{how:?} {container}: {e}"));
    repair().await;
    let started = raw::until(&mut events, REPAIR_TIMEOUT, |ev| {
        ev.action == Action::Start && mine(ev)
    })
    .await
    .unwrap_or_else(|| panic!("{container} not started again after {how:?}"));
    let healthy = raw::until(&mut events, REPAIR_TIMEOUT, |ev| {
        ev.action == Action::HealthStatus(Health::Healthy) && mine(ev)
    })
    .await
    .unwrap_or_else(|| panic!("{container} not healthy again after {how:?}"));
    (started - t0, healthy - t0)
}
