//! API throughput and watch fan-out (issue 8, figure 5): creates/s with 10,000 objects while
//! 50 watchers follow the collection, gets/s, and write→watch delivery latency at every
//! watcher — embedded store against etcd (the baseline, same run).
//!
//! Run with `make bench`. Each backend gets the same [`measure`] run against a real
//! `berth serve` process over HTTP; prints a table and writes `target/bench/api.json`;
//! figures are never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/etcd.rs"]
#[allow(dead_code)]
mod etcd;
#[path = "report.rs"]
#[allow(dead_code)]
mod report;
#[path = "../tests/common/server.rs"]
#[allow(dead_code)]
mod server;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use report::{Better, Report, Row, Stats};
use serde_json::{Value, json};
use server::{Backend, BerthServer};

/// Objects created (and read) per backend.
const OBJECTS: usize = 10_000;
/// Concurrent HTTP clients writing them.
const CLIENTS: usize = 16;
/// Watchers following the collection throughout.
const WATCHERS: usize = 50;
/// Sequential writes whose delivery latency is sampled at every watcher.
const LATENCY_SAMPLES: usize = 200;
/// Longest a watcher may lag behind the last write before the run counts as broken.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut report = Report::new();
        let embedded = measure(
            "embedded",
            BerthServer::start_with_log(Backend::Embedded, &[], "info"),
        )
        .await;
        let etcd = etcd::start().await;
        let baseline = measure(
            "etcd",
            BerthServer::start_with_log(Backend::Etcd(etcd.endpoints()), &[], "info"),
        )
        .await;
        let note = format!("{OBJECTS} objects, {CLIENTS} writers, {WATCHERS} watchers");
        report.push(
            Row::vs(
                "5 API creates/s",
                "1/s",
                Stats::one(embedded.creates),
                "etcd",
                Stats::one(baseline.creates),
            )
            .target(1.0, Better::Higher)
            .note(&note),
        );
        report.push(
            Row::vs(
                "5 API gets/s",
                "1/s",
                Stats::one(embedded.gets),
                "etcd",
                Stats::one(baseline.gets),
            )
            .target(1.0, Better::Higher),
        );
        report.push(
            Row::vs(
                "5 watch delivery latency",
                "ms",
                embedded.latency,
                "etcd",
                baseline.latency,
            )
            .note(format!(
                "{LATENCY_SAMPLES} sequential writes × {WATCHERS} watchers"
            )),
        );
        report.push(
            Row::vs(
                "5 watch fan-out drain",
                "s",
                Stats::one(embedded.drain),
                "etcd",
                Stats::one(baseline.drain),
            )
            .note("last bulk create → every watcher has every event"),
        );
        let extra = json!({"embedded": embedded.extra, "etcd": baseline.extra});
        report.finish("api", extra).expect("write target/bench/api.json");
    });
}

struct Figures {
    creates: f64,
    gets: f64,
    latency: Stats,
    drain: f64,
    extra: Value,
}

/// What one watcher saw: ADDED events, latencies of the sampled writes, when it had all
/// bulk events, and whether the server closed it.
#[derive(Default)]
struct Seen {
    added: usize,
    latencies: Vec<f64>,
    bulk_done: Option<Instant>,
    closed: bool,
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
    wait_for(&client, &auth, &secrets).await;

    // Watchers from the current revision, before any write.
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
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let resp = client
            .get(format!("{secrets}?watch=true&resourceVersion={rv}"))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "watch: {}", resp.status());
        watchers.push(tokio::spawn(watch(resp, sent.clone())));
    }

    let started = Instant::now();
    let (c, a, u) = (client.clone(), auth.clone(), secrets.clone());
    run_concurrently(OBJECTS, move |i| {
        let (client, auth, url) = (c.clone(), a.clone(), u.clone());
        async move { post(&client, &auth, &url, secret(&format!("s{i}"))).await }
    })
    .await;
    let bulk_end = Instant::now();
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

    // Delivery latency: sequential writes, each timed at every watcher.
    for i in 0..LATENCY_SAMPLES {
        let name = format!("lat-{i}");
        sent.lock().unwrap().insert(name.clone(), Instant::now());
        post(&client, &auth, &secrets, secret(&name)).await;
    }
    let mut seen = Vec::new();
    for w in watchers {
        match tokio::time::timeout(DRAIN_TIMEOUT, w).await {
            Ok(s) => seen.push(s.unwrap()),
            Err(_) => panic!("{label}: a watcher did not get every event within {DRAIN_TIMEOUT:?}"),
        }
    }
    let closed = seen.iter().filter(|s| s.closed).count();
    let latencies: Vec<f64> = seen.iter().flat_map(|s| s.latencies.iter().copied()).collect();
    let drain = seen
        .iter()
        .filter_map(|s| s.bulk_done)
        .max()
        .map_or(f64::NAN, |t| t.saturating_duration_since(bulk_end).as_secs_f64());
    let latency = Stats::of(&latencies).unwrap_or(Stats::one(f64::NAN));
    println!(
        "{label:>9}: creates/s {creates:>7.0}  gets/s {gets:>7.0}  watch latency p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms  drain {drain:.2} s  ({closed} watchers closed by the server)",
        latency.p50, latency.p95, latency.p99
    );
    drop(server);
    Figures {
        creates,
        gets,
        latency,
        drain,
        extra: json!({"creates_per_s": creates, "gets_per_s": gets, "latency_ms": latency, "drain_s": drain, "watchers_closed": closed}),
    }
}

/// Follows one watch until it has every ADDED event (bulk and sampled) or the server ends
/// it. Only sampled writes' lines are parsed: 50 watchers parsing 10,000 events each would
/// take the CPU the server needs.
async fn watch(resp: reqwest::Response, sent: Arc<Mutex<HashMap<String, Instant>>>) -> Seen {
    let mut seen = Seen::default();
    let mut body = resp.bytes_stream();
    let mut buf = Vec::new();
    while seen.added < OBJECTS + LATENCY_SAMPLES {
        let Some(Ok(chunk)) = body.next().await else {
            seen.closed = true;
            break;
        };
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + pos];
            start += pos + 1;
            if !contains(line, br#""type":"ADDED""#) {
                continue;
            }
            seen.added += 1;
            if seen.added == OBJECTS {
                seen.bulk_done = Some(Instant::now());
            }
            if contains(line, br#""name":"lat-"#) {
                let ev: Value = serde_json::from_slice(line).unwrap();
                let name = ev["object"]["metadata"]["name"].as_str().unwrap_or_default();
                if let Some(t0) = sent.lock().unwrap().get(name) {
                    seen.latencies.push(t0.elapsed().as_secs_f64() * 1e3);
                }
            }
        }
        buf.drain(..start);
    }
    seen
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn secret(name: &str) -> Value {
    json!({"kind": "Secret", "metadata": {"name": name}, "spec": {"data": {"k": "v"}}})
}

/// Waits until the namespace accepts reads (its Environment exists).
async fn wait_for(client: &reqwest::Client, auth: &str, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = client
            .get(url)
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        if resp.status().is_success() {
            return;
        }
        assert!(Instant::now() < deadline, "GET {url}: {}", resp.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
