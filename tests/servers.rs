//! The Server controller end to end: the `localhost` daemon reached through a socket the
//! test can cut, so that losing and regaining the daemon is observable without stopping
//! the real one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use berth_controllers::docker::label;
use common::{
    docker_run::TestRun,
    http::Client,
    server::{Backend, BerthServer},
};
use serde_json::Value;
use tokio::{net::UnixListener, task::JoinSet};

/// A unix socket forwarding every connection to the real daemon; dropping it (or
/// [`Forwarder::cut`]) closes the socket and every connection through it.
struct Forwarder {
    tasks: JoinSet<()>,
}

impl Forwarder {
    fn start(path: &Path) -> Forwarder {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { tasks }
    }

    /// Closes the socket and every connection through it (the daemon "goes away").
    fn cut(&mut self, path: &Path) {
        self.tasks.abort_all();
        let _ = std::fs::remove_file(path);
    }
}

fn ready(server: &Value) -> Option<(String, String)> {
    server["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

async fn wait_ready(c: &Client, status: &str, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let (code, server) = c.get("/apis/berth.dev/v1/servers/localhost").await;
        if code == 200 && ready(&server).is_some_and(|(s, _)| s == status) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "server not Ready={status} within {limit:?}: {server}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Docker API calls berth made so far, by operation (the event stream apart).
async fn docker_calls(c: &Client) -> Vec<String> {
    let (_, text) = c.get("/metrics").await;
    let text = text.as_str().unwrap_or_default().to_owned();
    text.lines()
        .filter(|l| l.starts_with("berth_docker_api_calls_total{") && !l.contains("\"events\""))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_daemon_is_noticed_from_its_event_stream_and_costs_nothing_while_there() {
    let dir = tempfile::tempdir().unwrap();
    let sock: PathBuf = dir.path().join("docker.sock");
    let mut forwarder = Forwarder::start(&sock);
    // Dropped last: removes what berth created for the run (its default network).
    let cleanup = TestRun::start().await;
    let uri = format!("unix://{}", sock.display());
    let label = format!("{}={}", label::RUN, cleanup.id);
    let net = format!("berth-{}", cleanup.id);
    let s = BerthServer::start(
        Backend::Embedded,
        &[
            "--docker",
            &uri,
            "--docker-label",
            &label,
            "--default-network",
            &net,
        ],
    );
    let c = Client::new(&s.url, Some(&s.token));
    wait_ready(&c, "True", Duration::from_secs(30)).await;

    // Reachable and nothing changing: no Docker call at all, heartbeat included.
    let t0 = Instant::now();
    let mut settled = docker_calls(&c).await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = docker_calls(&c).await;
        if now == settled {
            break;
        }
        settled = now;
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "docker calls did not settle"
        );
    }
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(5) {
        assert_eq!(docker_calls(&c).await, settled, "docker calls at rest");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The daemon goes away: noticed from the event stream, not at the next heartbeat.
    forwarder.cut(&sock);
    let noticed = wait_ready(&c, "False", Duration::from_secs(5)).await;
    let (_, server) = c.get("/apis/berth.dev/v1/servers/localhost").await;
    assert_eq!(ready(&server).unwrap().1, "Unreachable", "{server}");
    println!("daemon lost -> Server Ready=False in {noticed:?}");

    // It comes back: the probe's retries find it.
    let _forwarder = Forwarder::start(&sock);
    let back = wait_ready(&c, "True", Duration::from_secs(30)).await;
    println!("daemon back -> Server Ready=True in {back:?}");
}
