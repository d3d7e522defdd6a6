//! Leader election end to end: two real `berth serve` processes on one real etcd.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::server::{Backend, BerthServer};
use serde_json::{Value, json};

/// One scrape of a server's `/metrics`: (leader gauge, project reconciles); `None` when it
/// does not answer (killed).
async fn scrape(http: &reqwest::Client, url: &str) -> Option<(u64, u64)> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    Some((
        value("berth_leader "),
        value("berth_reconcile_total{controller=\"project\"}"),
    ))
}

async fn create_project(http: &reqwest::Client, s: &BerthServer, name: &str) {
    let resp = http
        .post(format!("{}/apis/berth.dev/v1/projects", s.url))
        .bearer_auth(&s.token)
        .json(&json!({"metadata": {"name": name}, "spec": {}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "create {name}: {}", resp.status());
}

async fn project_ready(http: &reqwest::Client, s: &BerthServer, name: &str) -> bool {
    let Ok(resp) = http
        .get(format!("{}/apis/berth.dev/v1/projects/{name}", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
    else {
        return false;
    };
    let Ok(p) = resp.json::<Value>().await else {
        return false;
    };
    p.pointer("/status/conditions/0/reason").and_then(Value::as_str) == Some("EnvironmentsReady")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_server_runs_controllers_and_another_takes_over_when_it_dies() {
    let etcd = common::etcd::start().await;
    let endpoints = etcd.endpoints();
    let start =
        |eps: Vec<String>| tokio::task::spawn_blocking(move || BerthServer::start(Backend::Etcd(eps), &[]));
    let (a, b) = (start(endpoints.clone()), start(endpoints));
    let mut servers = [a.await.unwrap(), b.await.unwrap()];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Wait for a leader, checking on every sample that there is never more than one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let a = scrape(&http, &servers[0].url).await.unwrap();
        let b = scrape(&http, &servers[1].url).await.unwrap();
        assert!(!(a.0 == 1 && b.0 == 1), "two leaders at once");
        match (a.0, b.0) {
            (1, _) => break 0,
            (_, 1) => break 1,
            _ => {}
        }
        assert!(Instant::now() < deadline, "no leader elected in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let follower = 1 - leader;

    // Work arrives through the follower's API; only the leader reconciles it.
    create_project(&http, &servers[follower], "before-failover").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !project_ready(&http, &servers[follower], "before-failover").await {
        assert!(Instant::now() < deadline, "the leader never reconciled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..20 {
        let l = scrape(&http, &servers[leader].url).await.unwrap();
        let f = scrape(&http, &servers[follower].url).await.unwrap();
        assert_eq!((l.0, f.0), (1, 0), "leadership moved or doubled");
        assert!(l.1 > 0, "the leader did not reconcile");
        assert_eq!(f.1, 0, "the follower reconciled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // kill -9 the leader: the follower takes over within the lease TTL (15 s) and reconciles.
    servers[leader].kill();
    let killed = Instant::now();
    create_project(&http, &servers[follower], "after-failover").await;
    loop {
        let f = scrape(&http, &servers[follower].url).await.unwrap();
        if f.0 == 1 && f.1 > 0 && project_ready(&http, &servers[follower], "after-failover").await {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "no takeover within 20 s:\n{}",
            servers[follower].log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("takeover after kill -9 of the leader: {:?}", killed.elapsed());
}
