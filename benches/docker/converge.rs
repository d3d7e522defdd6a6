//! Figures 2, 4 and 6: N Applications from one apply until all are Ready, against the raw
//! Docker API with berth's parallelism and against docker compose; berth's rest cost once
//! converged; how both grow with N.
//!
//! # Guarantees
//! - Each berth run starts a fresh `berth serve` (fresh store), so RSS at each N is that N's.
//! - Apps have no health check and berth runs with `--app-min-ready 0s`: Ready means
//!   running, as compose's `--wait` means for services without one, and as the raw script's
//!   successful start does.
//! - Between runs every container of the previous one is removed (not timed).
//!
//! # Caveats
//! - Each side's run uses the daemon alone, but other users of the daemon are not paused.

use std::time::{Duration, Instant};

use berth_controllers::docker::{Action, Labels, label};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    berth::{Berth, app_yaml},
    compose::{Broke, Compose},
    raw,
    report::{Better, Report, Row, Stats},
    rest::{self, Rest},
    setup::Bench,
};

/// What the converge figures need to know.
pub struct Plan<'a> {
    /// The sizes, smallest first.
    pub sizes: &'a [usize],
    /// Runs of each side at size N.
    pub repeats: &'a (dyn Fn(usize) -> usize + Sync),
    /// berth's Application workers: the raw script's parallelism.
    pub workers: usize,
    /// The rest-cost window.
    pub rest_window: Duration,
    /// The compose baseline, when a compose tool exists.
    pub compose: Option<&'a Compose>,
    /// Whether to run the baselines at all (berth's own figures only, when not).
    pub baselines: bool,
}

/// Tries of one compose run before it counts as broken.
const COMPOSE_ATTEMPTS: usize = 2;

/// One size's figures.
struct Size {
    n: usize,
    berth: Stats,
    raw: Option<Stats>,
    compose: Option<Stats>,
    /// Compose runs that broke (each retried once, unless it timed out).
    compose_failures: usize,
    /// Each run's phases (see [`Starts`]).
    split: Vec<Value>,
    rest: Rest,
}

/// Runs every size and adds the rows of figures 2, 4 and 6.
pub async fn run(bench: &Bench, plan: &Plan<'_>, report: &mut Report) -> Value {
    let mut sizes = Vec::new();
    for &n in plan.sizes {
        let size = one_size(bench, plan, n).await;
        let row = match size.raw {
            Some(raw) => Row::vs(
                &format!("2 converge N={n}"),
                "s",
                size.berth,
                "raw API, same parallelism",
                raw,
            )
            .target(1.1, Better::Lower),
            None => Row::alone(&format!("2 converge N={n}"), "s", size.berth),
        };
        report.push(row.note(format!("{} at once", plan.workers)));
        if let Some(c) = size.compose {
            report.push(
                Row::vs(
                    &format!("2 converge N={n}"),
                    "s",
                    size.berth,
                    "docker compose up",
                    c,
                )
                .target(1.0, Better::Lower)
                .note(match size.compose_failures {
                    0 => "target: faster than compose".to_string(),
                    k => format!("target: faster than compose; {k} compose run(s) broke, retried"),
                }),
            );
        }
        if size.compose.is_none() && size.compose_failures > 0 {
            report.push(
                Row::alone(&format!("2 converge N={n}"), "s", size.berth).note(format!(
                    "docker compose broke in all {} attempts: no compose figure",
                    size.compose_failures
                )),
            );
        }
        let r = &size.rest;
        report.push(
            Row::vs_target(
                &format!("4 rest N={n} CPU"),
                "s/min",
                Stats::one(r.cpu_s_per_min),
                0.6,
            )
            .note(format!("{:.0} s window; 1% of a core = 0.6 s/min", r.window_s)),
        );
        report.push(
            Row::vs_target(
                &format!("4 rest N={n} docker calls"),
                "calls/min",
                Stats::one(r.calls_per_min),
                0.0,
            )
            .note(format!("events stream apart; {:?}", r.calls)),
        );
        report.push(Row::vs_target(
            &format!("4 rest N={n} RSS"),
            "MiB",
            Stats::one(r.rss_mib),
            150.0,
        ));
        sizes.push(size);
    }
    if let [first, .., last] = sizes.as_slice() {
        scaling(first, last, &sizes, report);
    }
    json!(
        sizes
            .iter()
            .map(|s| json!({"n": s.n, "berth_s": s.berth, "raw_s": s.raw, "compose_s": s.compose, "compose_failures": s.compose_failures, "phases": s.split, "rest": s.rest}))
            .collect::<Vec<_>>()
    )
}

async fn one_size(bench: &Bench, plan: &Plan<'_>, n: usize) -> Size {
    let (mut ours, mut theirs, mut compose) = (Vec::new(), Vec::new(), Vec::new());
    let mut compose_failures = 0;
    let mut split = Vec::new();
    let mut rest = None;
    for r in 0..(plan.repeats)(n).max(1) {
        let workers = plan.workers.to_string();
        let berth = Berth::start(
            bench,
            &["--controller-workers", &workers, "--app-min-ready", "0s"],
            &format!("converge-{n}-{r}"),
        )
        .await;
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let yaml: Vec<String> = names
            .iter()
            .map(|name| app_yaml(&berth.ns, name, &bench.image, false))
            .collect();
        let watch = berth.ready_watch(names).await;
        let starts = Starts::record(bench, label::KIND, "Application");
        let t0 = Instant::now();
        berth.apply(yaml.join("---\n")).await;
        let timeout = Duration::from_secs(60) + Duration::from_millis(500) * n as u32;
        let ready = match watch.wait(timeout).await {
            Ok(ready) => ready,
            Err(left) => panic!(
                "{} of {n} apps not Ready in {timeout:?}\n{}",
                left.len(),
                berth.log_tail()
            ),
        };
        let last = ready.values().max().copied().unwrap_or(t0);
        ours.push(last - t0);
        let phases = starts.split(t0, last).await;
        println!(
            "  N={n} run {r}: berth {:.2} s {phases}",
            (last - t0).as_secs_f64()
        );
        split.push(json!({"side": "berth", "run": r, "phases": phases}));
        if rest.is_none() {
            let during = rest::calls(&berth).await;
            println!("  N={n} run {r}: docker calls while converging {during:?}");
            rest = Some(rest::measure(&berth, plan.rest_window).await);
        }
        drop(berth);
        clear(bench, label::KIND, "Application").await;

        if !plan.baselines {
            continue;
        }
        let specs: Vec<_> = yaml
            .iter()
            .enumerate()
            .map(|(i, y)| raw::spec(bench, y, &format!("bench-{}-n{n}-{r}-{i}", bench.id)))
            .collect();
        let starts = Starts::record(bench, raw::ROLE, "raw");
        let t0 = Instant::now();
        futures::stream::iter(&specs)
            .for_each_concurrent(plan.workers, |spec| async move {
                raw::create_start(&bench.docker, spec)
                    .await
                    .unwrap_or_else(|e| panic!("raw create+start of {}: {e}", spec.name));
            })
            .await;
        let (took, done) = (t0.elapsed(), Instant::now());
        theirs.push(took);
        let phases = starts.split(t0, done).await;
        println!("  N={n} run {r}: raw {:.2} s {phases}", took.as_secs_f64());
        split.push(json!({"side": "raw", "run": r, "phases": phases}));
        clear(bench, raw::ROLE, "raw").await;

        if let Some(c) = plan.compose {
            // Debian's docker-compose 1.29 sometimes fails a run on its own ("Pool is closed",
            // seen at N = 50): one more attempt from a clean daemon, and both are reported.
            for attempt in 0..COMPOSE_ATTEMPTS {
                let project = format!("bench{}n{n}r{r}a{attempt}", bench.id);
                let outcome = c.up(bench, &project, n).await;
                clear(bench, raw::ROLE, "compose").await;
                match outcome {
                    Ok(took) => {
                        compose.push(took);
                        println!("  N={n} run {r}: compose {:.2} s", took.as_secs_f64());
                        break;
                    }
                    Err(why) => {
                        compose_failures += 1;
                        println!("  N={n} run {r}: compose attempt {attempt} broke: {why}");
                        if matches!(why, Broke::TimedOut(_)) {
                            break; // a hang would hang again: no second wait
                        }
                    }
                }
            }
        }
    }
    Size {
        n,
        berth: Stats::of_secs(&ours).expect("runs"),
        raw: Stats::of_secs(&theirs),
        compose: Stats::of_secs(&compose),
        compose_failures,
        split,
        rest: rest.expect("one rest window"),
    }
}

/// Records when the daemon reports each `start` of a container carrying `key=value` (and the
/// run label): the split of a converge into the wait before the first container starts, the
/// stretch in which the daemon starts all N, and the tail after the last start.
struct Starts {
    task: tokio::task::JoinHandle<Vec<Instant>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Starts {
    fn record(bench: &Bench, key: &str, value: &str) -> Starts {
        let mut events = raw::events(&bench.docker);
        let (key, value, run) = (key.to_string(), value.to_string(), bench.id.clone());
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut at = Vec::new();
            loop {
                tokio::select! {
                    biased; // what the daemon already sent is read before stopping
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => {
                            if ev.action == Action::Start
                                && ev.attributes.get(&key) == Some(&value)
                                && ev.attributes.get(label::RUN) == Some(&run)
                            {
                                // The daemon's own time of the start, not the time it
                                // reached us (the stream may connect after the first).
                                let wall = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap_or_default();
                                let ago = wall.saturating_sub(Duration::from_nanos(ev.time_nanos.max(0) as u64));
                                at.push(Instant::now() - ago);
                            }
                        }
                        Some(Err(e)) => panic!("docker event stream failed: {e}"),
                        None => return at,
                    },
                    _ = &mut stopped => return at,
                }
            }
        });
        Starts { task, stop }
    }

    /// Seconds from `t0` to the first start, first to last start, last start to `end`.
    async fn split(self, t0: Instant, end: Instant) -> Value {
        let _ = self.stop.send(());
        let mut at = self.task.await.expect("start recorder");
        at.sort();
        match (at.first(), at.last()) {
            (Some(&first), Some(&last)) => json!({
                "starts": at.len(),
                "to_first_start_s": (first - t0).as_secs_f64(),
                "first_to_last_start_s": (last - first).as_secs_f64(),
                "last_start_to_done_s": end.saturating_duration_since(last).as_secs_f64(),
            }),
            _ => json!({"starts": 0}),
        }
    }
}

/// Removes one side's containers (not timed as part of any figure; printed, as the bench's
/// own overhead).
async fn clear(bench: &Bench, key: &str, value: &str) {
    let t0 = Instant::now();
    let n = bench
        .remove_containers(&Labels::from([(key.to_string(), value.to_string())]))
        .await;
    println!(
        "  removed {n} containers ({key}={value}) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Figure 6: per-app slopes from the smallest to the largest N, and whether the last segment
/// costs more per app than the first (worse than linear).
fn scaling(first: &Size, last: &Size, sizes: &[Size], report: &mut Report) {
    let dn = (last.n - first.n) as f64;
    let slope = |a: f64, b: f64| (b - a) / dn;
    let growth = |f: &dyn Fn(&Size) -> f64| {
        let per_app: Vec<String> = sizes
            .windows(2)
            .map(|w| format!("{:.4}", (f(&w[1]) - f(&w[0])) / (w[1].n - w[0].n) as f64))
            .collect();
        let exponent = (f(last) / f(first)).ln() / (last.n as f64 / first.n as f64).ln();
        format!(
            "per-app cost by segment [{}], growth exponent {exponent:.2} (1 = linear)",
            per_app.join(", ")
        )
    };
    let figure = format!("6 converge slope N={}→{}", first.n, last.n);
    let ours = Stats::one(slope(first.berth.p50, last.berth.p50));
    let row = match (first.raw, last.raw) {
        (Some(a), Some(b)) => Row::vs(
            &figure,
            "s/app",
            ours,
            "raw API slope",
            Stats::one(slope(a.p50, b.p50)),
        )
        .target(1.1, Better::Lower),
        _ => Row::alone(&figure, "s/app", ours),
    };
    report.push(row.note(growth(&|s: &Size| s.berth.p50)));
    report.push(
        Row::alone(
            &format!("6 RSS slope N={}→{}", first.n, last.n),
            "MiB/app",
            Stats::one(slope(first.rest.rss_mib, last.rest.rss_mib)),
        )
        .note(growth(&|s: &Size| s.rest.rss_mib)),
    );
}
