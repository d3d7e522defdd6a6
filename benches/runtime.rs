//! Controller runtime probe: queue throughput and memory per cached object, printed, never
//! asserted.
//!
//! Run with `make bench` (or `cargo bench --bench runtime`). Figures:
//! - work queue keys/s through 4 workers with a no-op "reconcile", as a ratio to a plain
//!   tokio mpsc channel moving the same keys (the baseline, same run);
//! - keys/s through a whole controller (informer cache → queue → no-op reconciler);
//! - resident memory per cached object, for 10,000 Environments in an informer.

use std::{
    error::Error,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use berth::{
    api::{Api, WriteOptions},
    store::embedded::EmbeddedStore,
};
use berth_crds::{Object, kinds::EnvironmentSpec};
use berth_runtime::{
    Action, Controller, Manager, Metrics, ObjectRef, Reconciler,
    queue::{QueueConfig, WorkQueue},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn Error + Send + Sync>;

const KEYS: usize = 200_000;
const WORKERS: usize = 4;
const OBJECTS: usize = 10_000;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let baseline = mpsc_keys_per_sec().await;
    let queue = queue_keys_per_sec().await;
    println!("work queue:  {queue:>12.0} keys/s ({WORKERS} workers, no-op reconcile)");
    println!(
        "mpsc chan:   {baseline:>12.0} keys/s (baseline)  ratio {:.2}",
        queue / baseline
    );

    let dir = tempfile::tempdir()?;
    let api = Api::new(Arc::new(EmbeddedStore::open(dir.path().join("data"))?));
    let project = berth_crds::lookup("Project").ok_or("no Project kind")?;
    let envs = berth_crds::lookup("Environment").ok_or("no Environment kind")?;
    api.create(
        project,
        None,
        json!({"metadata": {"name": "bench"}, "spec": {}}),
        WriteOptions::default(),
    )
    .await?;
    let mut writers = Vec::new();
    for w in 0..16 {
        let api = api.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..OBJECTS).step_by(16) {
                let body = json!({"metadata": {"name": format!("bench-env-{i}"), "labels": {"tier": "bench"}},
                    "spec": {"project": "bench", "displayName": format!("environment {i}")}});
                api.create(envs, None, body, WriteOptions::default()).await?;
            }
            Ok::<_, berth::api::Error>(())
        }));
    }
    for w in writers {
        w.await??;
    }
    // Warm the allocator with one list of the same objects, dropped before measuring.
    drop(
        api.list(envs, None, &Default::default(), &Default::default())
            .await?,
    );

    let metrics = Metrics::new();
    let mut manager = Manager::new(Arc::new(api.clone()), metrics.clone());
    let informer = manager.informer::<EnvironmentSpec>();
    let count = Arc::new(AtomicU64::new(0));
    manager.add(
        Controller::new("noop", informer.clone()).workers(WORKERS),
        Noop(count.clone()),
    );
    let before = rss_bytes();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(manager.run(stop.clone()));
    informer.wait_ready().await;
    let cached = informer.len();
    let after = rss_bytes();
    while count.load(Ordering::Relaxed) < cached as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    task.await?;
    println!(
        "controller:  {:>12.0} keys/s ({cached} cached objects, list + cache + queue + no-op reconcile, {elapsed:?})",
        cached as f64 / elapsed.as_secs_f64()
    );
    match (before, after) {
        (Some(b), Some(a)) => println!(
            "cache memory: {:>11.0} bytes/object (RSS {} MiB → {} MiB for {cached} Environments)",
            a.saturating_sub(b) as f64 / cached as f64,
            b / (1 << 20),
            a / (1 << 20)
        ),
        _ => println!("cache memory: RSS not available on this platform"),
    }
    let sample = informer
        .list()
        .first()
        .and_then(|o| serde_json::to_string(&**o).ok())
        .map_or(0, |s| s.len());
    println!("              (one object is {sample} bytes of JSON)");
    Ok(())
}

struct Noop(Arc<AtomicU64>);

#[async_trait::async_trait]
impl Reconciler<EnvironmentSpec> for Noop {
    type Error = std::convert::Infallible;
    async fn reconcile(&self, _obj: Arc<Object<EnvironmentSpec>>) -> Result<Action, Self::Error> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Action::await_change())
    }
}

async fn queue_keys_per_sec() -> f64 {
    let q = Arc::new(WorkQueue::new(QueueConfig::default(), Default::default()));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (q, done) = (q.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while let Some(k) = q.get().await {
                q.done(&k);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let keys: Vec<ObjectRef> = (0..KEYS)
        .map(|i| ObjectRef::new(Some("ns"), &format!("obj-{i}")))
        .collect();
    let start = Instant::now();
    for k in keys {
        q.add(k);
    }
    while done.load(Ordering::Relaxed) < KEYS as u64 {
        tokio::task::yield_now().await;
    }
    let elapsed = start.elapsed();
    q.shut_down();
    for w in workers {
        let _ = w.await;
    }
    KEYS as f64 / elapsed.as_secs_f64()
}

async fn mpsc_keys_per_sec() -> f64 {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ObjectRef>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (rx, done) = (rx.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let k = rx.lock().await.recv().await;
                if k.is_none() {
                    break;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let keys: Vec<ObjectRef> = (0..KEYS)
        .map(|i| ObjectRef::new(Some("ns"), &format!("obj-{i}")))
        .collect();
    let start = Instant::now();
    for k in keys {
        let _ = tx.send(k);
    }
    while done.load(Ordering::Relaxed) < KEYS as u64 {
        tokio::task::yield_now().await;
    }
    let elapsed = start.elapsed();
    drop(tx);
    for w in workers {
        let _ = w.await;
    }
    KEYS as f64 / elapsed.as_secs_f64()
}

/// Resident set size from /proc/self/statm (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
