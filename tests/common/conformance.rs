//! The store conformance suite: one set of cases every `Store` backend must pass.
//!
//! Each case takes a fresh, empty store and asserts etcd's semantics as the `Store` trait
//! documents them. `tests/store_<backend>.rs` instantiates the suite with `conformance_suite!`.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use berth_crds::store::{Error, EventKind, Revision, Store, WatchEvent, WatchStream};
use futures::StreamExt;
use tokio::sync::Barrier;

/// Upper bound for any single wait on a watch event; a healthy store delivers in milliseconds.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts a watch, accepting a `Compacted` error either from `watch` itself or as the
/// stream's first item (backends may learn of compaction only once the stream runs).
pub async fn start_watch(store: &dyn Store, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
    store.watch(prefix, after).await
}

/// Takes the next `n` events, failing the test on timeout or stream error.
pub async fn next_events(stream: &mut WatchStream, n: usize) -> Vec<WatchEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(ev))) => out.push(ev),
            Ok(Some(Err(e))) => panic!("watch failed after {} of {n} events: {e}", out.len()),
            Ok(None) => panic!("watch ended after {} of {n} events", out.len()),
            Err(_) => panic!("timed out waiting for event {} of {n}", out.len() + 1),
        }
    }
    out
}

/// The first item of a watch that must fail with `Compacted`, from either place.
pub async fn expect_compacted(store: &dyn Store, prefix: &str, after: Revision) -> Error {
    match start_watch(store, prefix, after).await {
        Err(e) => e,
        Ok(mut s) => match tokio::time::timeout(EVENT_TIMEOUT, s.next()).await {
            Ok(Some(Err(e))) => e,
            Ok(Some(Ok(ev))) => panic!("expected a compaction error, got event at {}", ev.revision()),
            Ok(None) => panic!("expected a compaction error, the watch ended"),
            Err(_) => panic!("expected a compaction error, the watch stayed silent"),
        },
    }
}

/// Create, get, update, delete and their failure modes.
pub async fn crud_and_cas_errors(store: Arc<dyn Store>) {
    let r0 = store.current_revision().await.unwrap();
    let r1 = store.create("/t/a", b"one".to_vec()).await.unwrap();
    assert!(r1 > r0, "create must advance the revision");
    assert_eq!(
        store.create("/t/a", b"dup".to_vec()).await,
        Err(Error::AlreadyExists { key: "/t/a".into() })
    );
    let kv = store.get("/t/a").await.unwrap().expect("created key is readable");
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"one"[..], r1, r1)
    );

    let r2 = store.update("/t/a", b"two".to_vec(), r1).await.unwrap();
    assert!(r2 > r1);
    match store.update("/t/a", b"stale".to_vec(), r1).await {
        Err(Error::Conflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!((key.as_str(), expected, actual), ("/t/a", r1, r2))
        }
        other => panic!("stale update must conflict, got {other:?}"),
    }
    let kv = store.get("/t/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"two"[..], r1, r2)
    );

    assert!(matches!(
        store.update("/t/missing", b"x".to_vec(), 1).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("/t/missing", None).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("/t/a", Some(r1)).await,
        Err(Error::Conflict { actual, .. }) if actual == r2
    ));
    let (r3, last) = store.delete("/t/a", Some(r2)).await.unwrap();
    assert!(r3 > r2);
    assert_eq!(last.value, b"two");
    assert_eq!(store.get("/t/a").await.unwrap(), None);
    assert_eq!(store.current_revision().await.unwrap(), r3);

    // A recreated key starts a new life: new create_revision.
    let r4 = store.create("/t/a", b"again".to_vec()).await.unwrap();
    let kv = store.get("/t/a").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (r4, r4));
    let (r5, _) = store.delete("/t/a", None).await.unwrap();
    assert!(r5 > r4);
}

/// Listing is prefix-exact, sorted, and carries the revision it was read at.
pub async fn list_by_prefix(store: Arc<dyn Store>) {
    for k in ["/l/b", "/l/a", "/l/c", "/lx/a", "/k/a"] {
        store.create(k, k.as_bytes().to_vec()).await.unwrap();
    }
    let listing = store.list("/l/").await.unwrap();
    let keys: Vec<_> = listing.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/l/a", "/l/b", "/l/c"]);
    assert_eq!(listing.revision, store.current_revision().await.unwrap());
    for kv in &listing.items {
        assert_eq!(kv.value, kv.key.as_bytes());
    }
    assert!(store.list("/nothing/").await.unwrap().items.is_empty());
}

/// Concurrent compare-and-swap writers on one key: exactly one wins each round.
pub async fn concurrent_cas_one_winner(store: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 40;
    let mut rev = store.create("/cas/k", b"0".to_vec()).await.unwrap();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(WRITERS));
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .update("/cas/k", format!("{round}-{w}").into_bytes(), rev)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => winners.push(r),
                Err(Error::Conflict { expected, actual, .. }) => {
                    assert_eq!(expected, rev);
                    assert!(actual > rev, "a loser sees the winner's revision");
                }
                Err(e) => panic!("unexpected error in round {round}: {e}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one writer wins, got {winners:?}"
        );
        rev = winners[0];
        assert_eq!(store.get("/cas/k").await.unwrap().unwrap().mod_revision, rev);
    }
}

/// 10,000 writes from concurrent writers, observed by one watcher in revision order with no
/// gap: the watcher sees exactly the acknowledged revisions, each with its value.
pub async fn watch_sees_every_write_in_order(store: Arc<dyn Store>) {
    const WRITERS: usize = 10;
    const PER_WRITER: usize = 1_000;
    let start = store.current_revision().await.unwrap();
    let mut stream = start_watch(store.as_ref(), "/w/", start).await.unwrap();
    // Noise outside the prefix must not show up.
    store.create("/other/x", b"noise".to_vec()).await.unwrap();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("/w/{w}");
                let mut acked = Vec::with_capacity(PER_WRITER);
                let mut rev = store.create(&key, b"0".to_vec()).await.unwrap();
                acked.push((rev, key.clone(), b"0".to_vec()));
                for i in 1..PER_WRITER {
                    let value = i.to_string().into_bytes();
                    rev = store.update(&key, value.clone(), rev).await.unwrap();
                    acked.push((rev, key.clone(), value));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    acked.sort();

    let events = next_events(&mut stream, WRITERS * PER_WRITER).await;
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.revision(), e.kv.key.clone(), e.kv.value.clone()))
        .collect();
    assert!(
        seen.windows(2).all(|p| p[0].0 < p[1].0),
        "events must arrive in strictly increasing revision order"
    );
    assert_eq!(seen.len(), acked.len());
    assert!(seen == acked, "the watcher saw exactly the acknowledged writes");
    assert!(events.iter().all(|e| e.kind == EventKind::Put));
}

/// Deletes are delivered with the last value; a watch dropped and resumed from its last
/// revision misses nothing and repeats nothing.
pub async fn resume_watch_after_drop(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut stream = start_watch(store.as_ref(), "/r/", start).await.unwrap();
    let mut revs = Vec::new();
    for i in 0..10 {
        revs.push(store.create(&format!("/r/{i}"), vec![i as u8]).await.unwrap());
    }
    let first = next_events(&mut stream, 4).await;
    let last_seen = first.last().unwrap().revision();
    drop(stream);

    let (del_rev, _) = store.delete("/r/0", None).await.unwrap();
    revs.push(del_rev);
    for i in 10..15 {
        revs.push(store.create(&format!("/r/{i}"), vec![i as u8]).await.unwrap());
    }
    let mut resumed = start_watch(store.as_ref(), "/r/", last_seen).await.unwrap();
    let rest = next_events(&mut resumed, revs.len() - 4).await;
    let all: Vec<_> = first.iter().chain(&rest).map(WatchEvent::revision).collect();
    assert_eq!(
        all, revs,
        "resumed watch continues exactly after the last seen revision"
    );
    let delete = rest
        .iter()
        .find(|e| e.kind == EventKind::Delete)
        .expect("delete event");
    assert_eq!(
        (delete.kv.key.as_str(), delete.kv.value.as_slice()),
        ("/r/0", &[0u8][..])
    );
    assert_eq!(delete.revision(), del_rev);
    // Nothing more: no duplicates trail behind.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), resumed.next())
            .await
            .is_err(),
        "no further events after the last write"
    );
}

/// After compaction, watching from before the compaction point fails with `Compacted`
/// carrying the current revision; watching from the compaction point works.
pub async fn gone_after_compaction(store: Arc<dyn Store>) {
    let early = store.create("/g/a", b"1".to_vec()).await.unwrap();
    let mut rev = early;
    for i in 0..20 {
        rev = store
            .update("/g/a", i.to_string().into_bytes(), rev)
            .await
            .unwrap();
    }
    store.compact(rev).await.unwrap();
    let current = store.current_revision().await.unwrap();
    match expect_compacted(store.as_ref(), "/g/", early).await {
        Error::Compacted {
            requested,
            compacted,
            current: c,
        } => {
            assert_eq!(
                requested, early,
                "requested is the revision the watch starts after"
            );
            assert_eq!(compacted, rev);
            assert!(c >= current);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // A relist and a watch from its revision work.
    let listing = store.list("/g/").await.unwrap();
    assert_eq!(listing.items.len(), 1);
    let mut stream = start_watch(store.as_ref(), "/g/", listing.revision)
        .await
        .unwrap();
    let next = store.update("/g/a", b"after".to_vec(), rev).await.unwrap();
    assert_eq!(next_events(&mut stream, 1).await[0].revision(), next);
}

/// 1 MiB values survive create, get, list and watch intact.
pub async fn large_values(store: Arc<dyn Store>) {
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let start = store.current_revision().await.unwrap();
    let mut stream = start_watch(store.as_ref(), "/big/", start).await.unwrap();
    let rev = store.create("/big/one", value.clone()).await.unwrap();
    assert_eq!(store.get("/big/one").await.unwrap().unwrap().value, value);
    assert_eq!(store.list("/big/").await.unwrap().items[0].value, value);
    let ev = &next_events(&mut stream, 1).await[0];
    assert_eq!((ev.revision(), &ev.kv.value), (rev, &value));
}

/// Distinct keys a watcher on one prefix must not see.
pub async fn watch_is_prefix_scoped(store: Arc<dyn Store>) {
    let start = store.current_revision().await.unwrap();
    let mut stream = start_watch(store.as_ref(), "/p/a/", start).await.unwrap();
    store.create("/p/ab", b"x".to_vec()).await.unwrap();
    store.create("/p/b/1", b"x".to_vec()).await.unwrap();
    let mine = store.create("/p/a/1", b"y".to_vec()).await.unwrap();
    let ev = &next_events(&mut stream, 1).await[0];
    assert_eq!((ev.kv.key.as_str(), ev.revision()), ("/p/a/1", mine));
    let seen: BTreeSet<_> = [ev.kv.key.clone()].into();
    assert!(!seen.contains("/p/ab"));
}

/// Instantiates every conformance case as a `#[tokio::test]` for one backend.
///
/// `$open` is an async fn returning a guard that hands out an `Arc<dyn Store>` via `.store()`
/// and cleans the backend up when dropped. The calling test crate declares `mod common;` at
/// its root (as `tests/store_<backend>.rs` do); the cases are reached through
/// `$crate::common`, so the macro works from any module of that crate.
#[macro_export]
macro_rules! conformance_suite {
    ($open:path) => {
        $crate::conformance_suite!(@case $open,
            crud_and_cas_errors, list_by_prefix, concurrent_cas_one_winner,
            watch_sees_every_write_in_order, resume_watch_after_drop, gone_after_compaction,
            large_values, watch_is_prefix_scoped);
    };
    (@case $open:path, $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backend = $open().await;
                $crate::common::conformance::$case(backend.store()).await;
            }
        )*
    };
}
