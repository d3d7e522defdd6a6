//! Figure 4: what a converged berth costs at rest — CPU seconds per minute and RSS of the
//! process (from `/proc`), Docker API calls per minute (from its `/metrics`).
//!
//! # Guarantees
//! - The window starts only once berth's Docker call counters have stopped moving for
//!   [`QUIET`], so the tail of the convergence is not counted as rest.
//! - Calls are reported per operation; `events` (the one long-lived stream) is counted apart.
//!
//! # Caveats
//! - Linux only (`/proc/<pid>/stat`, `/proc/<pid>/status`).
//! - A window shorter than the resync period (10 min) shows no resync: the figure is the
//!   cost between resyncs, which is what the issue asks.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use crate::berth::Berth;

/// How long the counters must stand still before the window opens.
const QUIET: Duration = Duration::from_secs(3);
/// The longest wait for that quiet.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What one window measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rest {
    /// CPU seconds (user + system) per minute of wall time.
    pub cpu_s_per_min: f64,
    /// Docker API calls per minute, `events` excluded.
    pub calls_per_min: f64,
    /// Those calls by operation (total over the window).
    pub calls: BTreeMap<String, f64>,
    /// Resident set size at the end of the window, MiB.
    pub rss_mib: f64,
    /// The window's length, seconds.
    pub window_s: f64,
}

/// Waits for berth to settle, then measures a `window`.
pub async fn measure(berth: &Berth, window: Duration) -> Rest {
    let pid = berth.pid();
    let started = Instant::now();
    let mut last = calls(berth).await;
    let mut still_since = Instant::now();
    while still_since.elapsed() < QUIET {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = calls(berth).await;
        if now != last {
            last = now;
            still_since = Instant::now();
        }
        assert!(
            started.elapsed() < SETTLE_TIMEOUT,
            "berth did not settle:\n{}",
            berth.log_tail()
        );
    }
    let cpu0 = cpu_secs(pid);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let cpu1 = cpu_secs(pid);
    let elapsed = t0.elapsed().as_secs_f64();
    let after = calls(berth).await;
    let delta: BTreeMap<String, f64> = after
        .iter()
        .map(|(op, v)| (op.clone(), v - last.get(op).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d > 0.0)
        .collect();
    let total = delta
        .iter()
        .filter(|(op, _)| *op != "events")
        .map(|(_, d)| d)
        .sum::<f64>()
        + 0.0;
    Rest {
        cpu_s_per_min: (cpu1 - cpu0) / elapsed * 60.0,
        calls_per_min: total / elapsed * 60.0,
        calls: delta,
        rss_mib: rss_mib(pid),
        window_s: elapsed,
    }
}

/// `berth_docker_api_calls_total` by operation.
pub async fn calls(berth: &Berth) -> BTreeMap<String, f64> {
    let (_, body) = berth.client.get("/metrics").await;
    let text = body
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
    text.lines()
        .filter_map(|l| l.strip_prefix("berth_docker_api_calls_total{"))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            let op = labels.split("operation=\"").nth(1)?.split('"').next()?;
            Some((op.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// User + system CPU seconds of `pid` so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// VmRSS of `pid`, MiB.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
