//! The etcd backend against a real etcd: the conformance suite, plus what only etcd can do
//! (restart under a live watch, unreachable endpoints, server-side watch cancellation).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use berth::store::etcd::{EtcdOptions, EtcdStore};
use berth_crds::store::{Error, Revision, Store, WatchEvent};
use common::{
    conformance::{next_events, start_watch},
    etcd::EtcdServer,
};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An etcd server and a store connected to it; dropping it stops the server.
struct Backend {
    store: Arc<EtcdStore>,
    server: EtcdServer,
}

impl Backend {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

async fn open() -> Backend {
    open_with(EtcdOptions::default()).await
}

async fn open_with(options: EtcdOptions) -> Backend {
    let server = common::etcd::start().await;
    let store = EtcdStore::connect_with(&server.endpoints(), options)
        .await
        .unwrap();
    Backend {
        store: Arc::new(store),
        server,
    }
}

conformance_suite!(open);

/// Creates `keys` under `prefix`, returning their revisions.
async fn create_all(store: &dyn Store, prefix: &str, keys: std::ops::Range<usize>) -> Vec<Revision> {
    let mut revs = Vec::new();
    for i in keys {
        revs.push(
            store
                .create(&format!("{prefix}{i}"), vec![i as u8])
                .await
                .unwrap(),
        );
    }
    revs
}

/// Retries a store call while it reports `Unavailable` (the client reconnecting), for at most
/// `limit`.
async fn until_available<T, F, Fut>(limit: Duration, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(Error::Unavailable(e)) if Instant::now() < deadline => {
                eprintln!("still unavailable: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("store call failed: {e}"),
        }
    }
}

/// A watch outlives an etcd crash and restart on the same data: it reconnects from the last
/// revision it delivered and continues with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_resumes_across_etcd_restart() {
    let mut backend = open().await;
    let store = backend.store();
    let start = store.current_revision().await.unwrap();
    let mut stream = start_watch(store.as_ref(), "/restart/", start).await.unwrap();

    let seen_before = create_all(store.as_ref(), "/restart/", 0..3).await;
    let read: Vec<_> = next_events(&mut stream, 3)
        .await
        .iter()
        .map(WatchEvent::revision)
        .collect();
    assert_eq!(read, seen_before);
    // Written but not yet read when etcd dies: delivered before or after the reconnect.
    let mut expected = create_all(store.as_ref(), "/restart/", 3..6).await;

    backend.server.kill();
    backend.server.restart().await;

    let after_restart =
        until_available(Duration::from_secs(30), || store.create("/restart/6", vec![6])).await;
    expected.push(after_restart);
    expected.extend(create_all(store.as_ref(), "/restart/", 7..10).await);

    let rest: Vec<_> = next_events(&mut stream, expected.len())
        .await
        .iter()
        .map(WatchEvent::revision)
        .collect();
    assert_eq!(rest, expected, "no gap and no duplicate across the restart");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err(),
        "nothing after the last write"
    );
}

/// When etcd stays down past the reconnect window, the watch ends with `Unavailable`, and
/// requests fail with `Unavailable` within the request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_ends_unavailable_when_etcd_stays_down() {
    let options = EtcdOptions {
        request_timeout: Duration::from_secs(2),
        reconnect_timeout: Duration::from_secs(2),
        ..EtcdOptions::default()
    };
    let mut backend = open_with(options).await;
    let store = backend.store();
    let mut stream = start_watch(store.as_ref(), "/down/", 0).await.unwrap();
    backend.server.kill();

    match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
        Ok(Some(Err(Error::Unavailable(_)))) => {}
        other => panic!("expected the watch to end with Unavailable, got {other:?}"),
    }
    assert!(stream.next().await.is_none(), "the stream ends after its error");

    let started = Instant::now();
    assert!(matches!(store.get("/down/x").await, Err(Error::Unavailable(_))));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a request fails within its timeout"
    );
}

/// Connecting to an endpoint where nothing listens fails with `Unavailable`, promptly.
#[tokio::test]
async fn connect_to_dead_endpoint_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = EtcdOptions {
        connect_timeout: Duration::from_secs(2),
        ..EtcdOptions::default()
    };
    let started = Instant::now();
    let result = EtcdStore::connect_with(&[format!("http://127.0.0.1:{port}")], options).await;
    assert!(matches!(result, Err(Error::Unavailable(_))), "got {result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// Dropping a watch stream cancels the watch inside etcd: no watcher outlives its consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_watch_is_cancelled_in_etcd() {
    let backend = open().await;
    let store = backend.store();
    let streams: Vec<_> = futures::future::try_join_all((0..3).map(|_| store.watch("/drop/", 0)))
        .await
        .unwrap();
    wait_for_watchers(&backend.server, |n| n == 3).await;
    drop(streams);
    wait_for_watchers(&backend.server, |n| n == 0).await;
}

/// Compaction edge cases: a future revision is refused, compacting twice is a no-op.
#[tokio::test]
async fn compaction_edges() {
    let backend = open().await;
    let store = backend.store();
    let rev = store.create("/c/a", b"1".to_vec()).await.unwrap();
    assert_eq!(
        store.compact(rev + 10).await,
        Err(Error::FutureRevision {
            requested: rev + 10,
            current: rev
        })
    );
    store.compact(rev).await.unwrap();
    store.compact(rev).await.unwrap();
    store.compact(rev - 1).await.unwrap();
    store.compact(0).await.unwrap();
}

/// Waits until etcd's count of live watchers satisfies `ok`.
async fn wait_for_watchers(server: &EtcdServer, ok: impl Fn(u64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = watcher_count(server).await;
        if ok(n) {
            return;
        }
        assert!(Instant::now() < deadline, "etcd still has {n} watchers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// etcd's `etcd_debugging_mvcc_watcher_total` gauge, read from its metrics endpoint.
async fn watcher_count(server: &EtcdServer) -> u64 {
    let addr = server.client_url().trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    body.lines()
        .find_map(|line| line.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("etcd exports etcd_debugging_mvcc_watcher_total")
}
