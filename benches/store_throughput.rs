//! Store throughput probe: writes/s from concurrent writers and watch events/s, per backend.
//!
//! Not an assertion: it prints figures for `make bench`. Each backend gets the same
//! [`measure`] run; add a backend by opening it in `main` and calling `measure` once more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/etcd.rs"]
#[allow(dead_code)]
mod etcd;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use berth::store::etcd::EtcdStore;
use berth_crds::store::Store;
use futures::StreamExt;

/// Writes per run.
const WRITES: usize = 20_000;
/// Concurrent writers sharing them.
const WRITERS: usize = 16;
/// Bytes per value: a small berth object.
const VALUE_BYTES: usize = 512;
/// Longest wait for one watch event before the probe gives up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the probe against one store and prints its figures under `label`.
async fn measure(label: &str, store: Arc<dyn Store>) {
    let prefix = format!("/bench/{}/", uuid::Uuid::new_v4().simple());
    let start_rev = store.current_revision().await.expect("current revision");
    let mut stream = store.watch(&prefix, start_rev).await.expect("watch");

    let started = Instant::now();
    let watcher = tokio::spawn(async move {
        for seen in 0..WRITES {
            match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
                Ok(Some(Ok(_))) => {}
                other => panic!("watch failed after {seen} events: {other:?}"),
            }
        }
        Instant::now()
    });
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, prefix) = (store.clone(), prefix.clone());
            tokio::spawn(async move {
                for i in (w..WRITES).step_by(WRITERS) {
                    let key = format!("{prefix}{i:06}");
                    store.create(&key, vec![b'x'; VALUE_BYTES]).await.expect("create");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer task");
    }
    let written = started.elapsed();
    let watched = watcher.await.expect("watcher task") - started;

    // Replay: a fresh watch reads the same history back as fast as the store serves it.
    let replay_started = Instant::now();
    let mut replay = store.watch(&prefix, start_rev).await.expect("replay watch");
    for seen in 0..WRITES {
        match tokio::time::timeout(EVENT_TIMEOUT, replay.next()).await {
            Ok(Some(Ok(_))) => {}
            other => panic!("replay failed after {seen} events: {other:?}"),
        }
    }
    let replayed = replay_started.elapsed();

    let rate = |d: Duration| WRITES as f64 / d.as_secs_f64();
    println!(
        "{label:>10}: {WRITES} writes from {WRITERS} writers: {:.0} writes/s; live watch: \
         {:.0} events/s; replay watch: {:.0} events/s",
        rate(written),
        rate(watched),
        rate(replayed),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let server = etcd::start().await;
        let store = EtcdStore::connect(&server.endpoints())
            .await
            .expect("connect to etcd");
        measure("etcd", Arc::new(store)).await;
    });
}
