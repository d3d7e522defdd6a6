//! API throughput and watch latency: creates/s, gets/s and write→watch delivery, per backend.
//!
//! Run with `make bench`. Each backend gets the same [`measure`] run against a real
//! `berth serve` process over HTTP; figures are printed, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/etcd.rs"]
#[allow(dead_code)]
mod etcd;
#[path = "../tests/common/server.rs"]
#[allow(dead_code)]
mod server;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use futures::StreamExt;
use serde_json::{Value, json};
use server::{Backend, BerthServer};

/// Objects created (and read) per backend.
const OBJECTS: usize = 2_000;
/// Concurrent HTTP clients.
const CLIENTS: usize = 16;
/// Sequential writes whose watch delivery latency is sampled.
const LATENCY_SAMPLES: usize = 500;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let embedded = measure("embedded", BerthServer::start(Backend::Embedded, &[])).await;
        let etcd = etcd::start().await;
        let baseline = measure("etcd", BerthServer::start(Backend::Etcd(etcd.endpoints()), &[])).await;
        println!(
            "ratio embedded/etcd creates/s {:>6.2}",
            embedded.creates / baseline.creates
        );
        println!(
            "ratio embedded/etcd gets/s    {:>6.2}",
            embedded.gets / baseline.gets
        );
        println!(
            "ratio embedded/etcd watch p50 {:>6.2}",
            embedded.p50 / baseline.p50
        );
        println!(
            "ratio embedded/etcd watch p99 {:>6.2}",
            embedded.p99 / baseline.p99
        );
    });
}

struct Figures {
    creates: f64,
    gets: f64,
    p50: f64,
    p99: f64,
}

async fn measure(label: &str, server: BerthServer) -> Figures {
    let client = reqwest::Client::new();
    let base = format!("{}/apis/berth.dev/v1", server.url);
    let auth = format!("Bearer {}", server.token);
    let project = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let ns = format!("{project}-production");
    post(
        &client,
        &auth,
        &format!("{base}/projects"),
        json!({"kind": "Project", "metadata": {"name": project}, "spec": {}}),
    )
    .await;
    let secrets = format!("{base}/namespaces/{ns}/secrets");

    let started = Instant::now();
    let (c, a, u) = (client.clone(), auth.clone(), secrets.clone());
    run_concurrently(OBJECTS, move |i| {
        let (client, auth, url) = (c.clone(), a.clone(), u.clone());
        async move { post(&client, &auth, &url, secret(i)).await }
    })
    .await;
    let creates = OBJECTS as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (c, a, u) = (client.clone(), auth.clone(), secrets.clone());
    run_concurrently(OBJECTS, move |i| {
        let (client, auth, url) = (c.clone(), a.clone(), format!("{u}/s{i}"));
        async move {
            let resp = client
                .get(&url)
                .header("Authorization", &auth)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "get {url}: {}", resp.status());
            resp.bytes().await.unwrap();
        }
    })
    .await;
    let gets = OBJECTS as f64 / started.elapsed().as_secs_f64();

    // Watch latency: time from sending a write to its event arriving on a live watch.
    let list: Value = client
        .get(&secrets)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let resp = client
        .get(format!("{secrets}?watch=true&resourceVersion={rv}"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    let watch_sent = sent.clone();
    let watcher = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
        let mut body = resp.bytes_stream();
        let mut buf = Vec::new();
        while latencies.len() < LATENCY_SAMPLES {
            let chunk = body.next().await.expect("watch ended").unwrap();
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let ev: Value = serde_json::from_slice(&line).unwrap();
                if ev["type"] != "ADDED" {
                    continue;
                }
                let name = ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Some(t0) = watch_sent.lock().unwrap().get(&name) {
                    latencies.push(t0.elapsed());
                }
            }
        }
        latencies
    });
    let mut writes = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let obj = secret(OBJECTS + i);
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        let t0 = Instant::now();
        sent.lock().unwrap().insert(name, t0);
        post(&client, &auth, &secrets, obj).await;
        writes.push(t0.elapsed());
    }
    writes.sort();
    let write_p50 = writes[writes.len() / 2].as_secs_f64() * 1e3;
    let mut latencies = watcher.await.unwrap();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3
    };
    let figures = Figures {
        creates,
        gets,
        p50: pct(0.50),
        p99: pct(0.99),
    };
    println!(
        "{label:>9}: creates/s {:>7.0}  gets/s {:>7.0}  ({OBJECTS} objects, {CLIENTS} clients)  watch latency p50 {:.2} ms  p99 {:.2} ms  ({LATENCY_SAMPLES} sequential writes, each {write_p50:.2} ms p50)",
        figures.creates, figures.gets, figures.p50, figures.p99
    );
    drop(server);
    figures
}

fn secret(i: usize) -> Value {
    json!({"kind": "Secret", "metadata": {"name": format!("s{i}")}, "spec": {"data": {"k": "v"}}})
}

async fn post(client: &reqwest::Client, auth: &str, url: &str, body: Value) {
    let resp = client
        .post(url)
        .header("Authorization", auth)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(
        status.is_success(),
        "POST {url}: {status} {}",
        resp.text().await.unwrap_or_default()
    );
}

async fn run_concurrently<F, Fut>(n: usize, f: F)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = Arc::new(f);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, f) = (next.clone(), f.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    f(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}
