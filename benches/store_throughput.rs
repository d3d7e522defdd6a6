//! Store throughput probe: writes/s and watch events/s per backend, printed, never asserted.
//!
//! Run with `make bench` (or `cargo bench --bench store_throughput`). Each backend is measured
//! by [`measure`] on its own `Arc<dyn Store>`, under a unique key prefix, in the same run; the
//! embedded store's figures are printed as ratios to etcd's (the baseline).

use std::{
    error::Error,
    sync::Arc,
    time::{Duration, Instant},
};

#[path = "../tests/common/etcd.rs"]
#[allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
mod etcd;

use berth::store::{embedded::EmbeddedStore, etcd::EtcdStore};
use berth_crds::store::{Revision, Store};
use futures::StreamExt;

/// Writes per measurement.
const WRITES: usize = 20_000;
/// Concurrent writers sharing them.
const WRITERS: usize = 16;
/// Bytes per value.
const VALUE_SIZE: usize = 256;

type BoxError = Box<dyn Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let embedded: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path())?);
    let ours = measure("embedded", embedded).await?;
    let server = etcd::start().await;
    let baseline = measure("etcd", Arc::new(EtcdStore::connect(&server.endpoints()).await?)).await?;
    for (name, a, b) in [
        ("writes/s", ours.0, baseline.0),
        ("live watch events/s", ours.1, baseline.1),
        ("replay watch events/s", ours.2, baseline.2),
    ] {
        println!("ratio embedded/etcd {name:<22} {:>6.2}", a / b);
    }
    Ok(())
}

/// Measures one backend, prints one line per figure prefixed with `label`, and returns
/// (writes/s, live watch events/s, replay watch events/s).
async fn measure(label: &str, store: Arc<dyn Store>) -> Result<(f64, f64, f64), BoxError> {
    let prefix = format!("/bench/{}/", uuid::Uuid::new_v4());
    let start = store.current_revision().await?;

    // A watcher consuming the events while the writes run.
    let mut live = store.watch(&prefix, start).await?;
    let started = Instant::now();
    let live_task = tokio::spawn(async move {
        for _ in 0..WRITES {
            match live.next().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(BoxError::from(e)),
                None => return Err("the live watch ended early".into()),
            }
        }
        Ok(started.elapsed())
    });

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, prefix) = (store.clone(), prefix.clone());
            tokio::spawn(async move {
                for i in (w..WRITES).step_by(WRITERS) {
                    store
                        .create(&format!("{prefix}{i:06}"), vec![b'x'; VALUE_SIZE])
                        .await?;
                }
                Ok::<_, BoxError>(())
            })
        })
        .collect();
    for w in writers {
        w.await??;
    }
    let writing = started.elapsed();
    let live_watch = live_task.await??;
    let replay = replay(store.as_ref(), &prefix, start).await?;
    let (p50, p99) = sequential_latency(store.as_ref(), &prefix).await?;

    println!(
        "{label}: writes/s {:>9.0}  ({WRITES} creates of {VALUE_SIZE} B, {WRITERS} concurrent writers)",
        rate(WRITES, writing)
    );
    println!(
        "{label}: watch events/s (live, during the writes) {:>9.0}",
        rate(WRITES, live_watch)
    );
    println!(
        "{label}: watch events/s (replay from history) {:>9.0}",
        rate(WRITES, replay)
    );
    println!("{label}: one writer, write latency p50 {p50:.2} ms  p99 {p99:.2} ms");
    Ok((
        rate(WRITES, writing),
        rate(WRITES, live_watch),
        rate(WRITES, replay),
    ))
}

/// Time for a new watch to deliver the `WRITES` events after `start` from history.
async fn replay(store: &dyn Store, prefix: &str, start: Revision) -> Result<Duration, BoxError> {
    let began = Instant::now();
    let mut stream = store.watch(prefix, start).await?;
    for _ in 0..WRITES {
        match stream.next().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the replay watch ended early".into()),
        }
    }
    Ok(began.elapsed())
}

/// p50 and p99 in milliseconds of single, sequential writes (the latency one apply sees).
async fn sequential_latency(store: &dyn Store, prefix: &str) -> Result<(f64, f64), BoxError> {
    let mut took = Vec::with_capacity(500);
    for i in 0..500 {
        let began = Instant::now();
        store
            .create(&format!("{prefix}seq/{i:06}"), vec![b'x'; VALUE_SIZE])
            .await?;
        took.push(began.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    Ok((took[took.len() / 2], took[took.len() * 99 / 100]))
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}
