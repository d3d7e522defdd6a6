//! Bench results: samples reduced to median, p95 and p99, a figure beside its baseline and the
//! ratio, printed as a plain-text table and written as JSON under `target/bench/`.
//!
//! # Guarantees
//! - Every row carries the figure, its baseline (measured in the same run, or a target when
//!   the issue names one instead) and the ratio figure / baseline; `met` says whether the
//!   issue's target holds, and is only reported, never asserted.
//! - The JSON file is written whole (temp file + rename), so a reader never sees half a run.
//!
//! # Caveats
//! - p95 of fewer than 20 samples is the largest sample.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;
use serde_json::{Value, json};

/// Median and p95 of a set of samples.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Stats {
    /// The median.
    pub p50: f64,
    /// The 95th percentile (nearest rank).
    pub p95: f64,
    /// The 99th percentile (nearest rank).
    pub p99: f64,
    /// How many samples.
    pub n: usize,
}

impl Stats {
    /// Stats of `samples` (any order); `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Some(Stats {
            p50: rank(0.5),
            p95: rank(0.95),
            p99: rank(0.99),
            n: s.len(),
        })
    }

    /// Stats of durations, in seconds.
    pub fn of_secs(samples: &[Duration]) -> Option<Stats> {
        Stats::of(&samples.iter().map(Duration::as_secs_f64).collect::<Vec<_>>())
    }

    /// A single measurement.
    pub fn one(v: f64) -> Stats {
        Stats {
            p50: v,
            p95: v,
            p99: v,
            n: 1,
        }
    }
}

/// Whether a smaller or a larger figure is better (decides how a target reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Times, costs.
    Lower,
    /// Rates.
    Higher,
}

/// One figure of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The issue's figure number and what it measures, e.g. `1 apply→Ready`.
    pub figure: String,
    /// Unit of `value` and `baseline`.
    pub unit: String,
    /// berth's figure.
    pub value: Stats,
    /// What it is compared with.
    pub baseline_name: String,
    /// The baseline's figure (same unit), when there is one.
    pub baseline: Option<Stats>,
    /// value.p50 / baseline.p50.
    pub ratio: Option<f64>,
    /// The issue's target on the ratio (or on the value when there is no baseline).
    pub target: Option<f64>,
    /// Whether smaller or larger is better.
    pub better: Better,
    /// Whether the target holds (`None` without a target).
    pub met: Option<bool>,
    /// A short note (conditions of the measurement).
    pub note: String,
}

impl Row {
    /// A figure compared with a baseline; `target` applies to the ratio of medians.
    pub fn vs(figure: &str, unit: &str, value: Stats, baseline_name: &str, baseline: Stats) -> Row {
        let ratio = (baseline.p50 != 0.0).then(|| value.p50 / baseline.p50);
        Row {
            figure: figure.into(),
            unit: unit.into(),
            value,
            baseline_name: baseline_name.into(),
            baseline: Some(baseline),
            ratio,
            target: None,
            better: Better::Lower,
            met: None,
            note: String::new(),
        }
    }

    /// A figure with nothing to compare it with.
    pub fn alone(figure: &str, unit: &str, value: Stats) -> Row {
        Row {
            figure: figure.into(),
            unit: unit.into(),
            value,
            baseline_name: "-".into(),
            baseline: None,
            ratio: None,
            target: None,
            better: Better::Lower,
            met: None,
            note: String::new(),
        }
    }

    /// A figure compared with a fixed target (the ratio is value / target).
    pub fn vs_target(figure: &str, unit: &str, value: Stats, target: f64) -> Row {
        Row {
            figure: figure.into(),
            unit: unit.into(),
            value,
            baseline_name: "target".into(),
            baseline: Some(Stats::one(target)),
            ratio: (target != 0.0).then(|| value.p50 / target),
            target: Some(target),
            better: Better::Lower,
            met: Some(value.p50 <= target),
            note: String::new(),
        }
    }

    /// Sets the target on the ratio (with `better` deciding the direction).
    pub fn target(mut self, target: f64, better: Better) -> Row {
        self.target = Some(target);
        self.better = better;
        self.met = self.ratio.map(|r| match better {
            Better::Lower => r <= target,
            Better::Higher => r >= target,
        });
        self
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

/// A bench's rows, printed and saved together.
#[derive(Debug, Default)]
pub struct Report {
    rows: Vec<Row>,
    machine: Value,
}

impl Report {
    /// An empty report about this machine.
    pub fn new() -> Report {
        Report {
            rows: Vec::new(),
            machine: machine(),
        }
    }

    /// Adds a row and prints it at once (a long run shows progress).
    pub fn push(&mut self, row: Row) {
        println!("{}", line(&row));
        self.rows.push(row);
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Prints the whole table and writes `target/bench/<name>.json`; returns its path.
    pub fn finish(&self, name: &str, extra: Value) -> std::io::Result<PathBuf> {
        println!();
        println!("{}", header());
        for r in &self.rows {
            println!("{}", line(r));
        }
        if let Some(worst) = self
            .rows
            .iter()
            .filter(|r| r.baseline_name != "target")
            .filter_map(|r| {
                let ratio = r.ratio?;
                Some((
                    if r.better == Better::Lower {
                        ratio
                    } else {
                        1.0 / ratio
                    },
                    r,
                ))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
        {
            // Ranked as a cost (a throughput's ratio inverted), printed as the table shows it.
            println!(
                "worst ratio to a measured baseline: {} ({:.2})",
                worst.1.figure,
                worst.1.ratio.unwrap_or(worst.0)
            );
        }
        let dir = bench_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.json"));
        let doc = json!({
            "bench": name,
            "finished": chrono::Utc::now().to_rfc3339(),
            "machine": self.machine,
            "rows": self.rows,
            "extra": extra,
        });
        let tmp = path.with_extension("json.part");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)?;
        std::fs::rename(&tmp, &path)?;
        println!("wrote {}", path.display());
        Ok(path)
    }
}

/// `target/bench/` of this build (honours `CARGO_TARGET_DIR`).
pub fn bench_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench")
}

fn header() -> String {
    format!(
        "{:<44} {:>10} {:>10}  {:<26} {:>10} {:>10} {:>7}  {:<6} {}",
        "figure", "p50", "p95", "baseline", "p50", "p95", "ratio", "target", "unit / note"
    )
}

fn line(r: &Row) -> String {
    let num = |v: f64| {
        if v.abs() >= 1000.0 {
            format!("{v:.0}")
        } else if v.abs() >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.3}")
        }
    };
    let (bp50, bp95) = r
        .baseline
        .map_or(("-".into(), "-".into()), |b| (num(b.p50), num(b.p95)));
    let ratio = r.ratio.map_or("-".into(), |x| format!("{x:.2}"));
    let target = match (r.target, r.met) {
        (Some(t), Some(true)) => format!("{}{t} ok", if r.better == Better::Lower { "≤" } else { "≥" }),
        (Some(t), _) => format!("{}{t} MISS", if r.better == Better::Lower { "≤" } else { "≥" }),
        (None, _) => "-".into(),
    };
    format!(
        "{:<44} {:>10} {:>10}  {:<26} {:>10} {:>10} {:>7}  {:<6} {} (n={}) {}",
        r.figure,
        num(r.value.p50),
        num(r.value.p95),
        r.baseline_name,
        bp50,
        bp95,
        ratio,
        target,
        r.unit,
        r.value.n,
        r.note
    )
}

/// CPUs, memory, kernel and Docker version of this machine.
fn machine() -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let cmd = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    json!({
        "cpus": cpus,
        "cpu_model": cpu_model,
        "memory_mib": mem_kib / 1024,
        "kernel": cmd(&["uname", "-r"]),
        "docker": cmd(&["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]),
    })
}
