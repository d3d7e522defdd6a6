//! Behaviour specific to the embedded backend: persistence, bounded history, the directory
//! lock, and watchers that never hold the writer up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use berth_crds::store::{Error, Store};
use futures::StreamExt;
use redb::ReadableTableMetadata;

use super::{EmbeddedOptions, EmbeddedStore, tables};

/// Bound on any wait in these tests; a healthy store answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);

fn history_len(store: &EmbeddedStore) -> u64 {
    let shared = store.db.upgrade().unwrap();
    let txn = shared.db.begin_read().unwrap();
    txn.open_table(tables::HISTORY).unwrap().len().unwrap()
}

#[tokio::test]
async fn data_persists_across_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let r1 = store.create("/p/a", b"one".to_vec()).await.unwrap();
    let r2 = store.update("/p/a", b"two".to_vec(), r1).await.unwrap();
    let r3 = store.create("/p/b", b"bee".to_vec()).await.unwrap();
    let (r4, _) = store.delete("/p/b", Some(r3)).await.unwrap();
    store.compact(r3).await.unwrap();
    store.close().await;

    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.current_revision().await.unwrap(),
        r4,
        "the revision survives"
    );
    let kv = store.get("/p/a").await.unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.create_revision, kv.mod_revision),
        (&b"two"[..], r1, r2)
    );
    assert_eq!(store.get("/p/b").await.unwrap(), None);
    match store.watch("/p/", r1).await.map(|_| ()) {
        Err(Error::Compacted {
            requested,
            compacted,
            current,
        }) => {
            assert_eq!(
                (requested, compacted, current),
                (r1, r3, r4),
                "the compaction point survives"
            )
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // History from the compaction point is still there, and the revision continues.
    let mut stream = store.watch("/p/", r3 - 1).await.unwrap();
    let r5 = store.create("/p/c", b"see".to_vec()).await.unwrap();
    assert_eq!(r5, r4 + 1);
    let mut revs = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        revs.push(ev.revision());
    }
    assert_eq!(revs, [r3, r4, r5]);
}

#[tokio::test]
async fn auto_compaction_keeps_history_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        history_limit: 10,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
    let mut rev = store.create("/h/k", b"0".to_vec()).await.unwrap();
    for i in 1..50 {
        rev = store
            .update("/h/k", i.to_string().into_bytes(), rev)
            .await
            .unwrap();
        assert!(
            history_len(&store) <= 10,
            "history grew past its limit at write {i}"
        );
    }
    assert_eq!((rev, history_len(&store)), (50, 10));
    match store.watch("/h/", 0).await.map(|_| ()) {
        Err(Error::Compacted {
            requested: 0,
            compacted: 41,
            current: 50,
        }) => {}
        other => panic!("expected Compacted at 41, got {other:?}"),
    }
    // The last ten changes are still replayed.
    let mut stream = store.watch("/h/", 40).await.unwrap();
    for expected in 41..=50 {
        let ev = tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            (ev.revision(), ev.kv.value),
            (expected, (expected - 1).to_string().into_bytes())
        );
    }
}

#[tokio::test]
async fn second_open_of_a_directory_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    match EmbeddedStore::open(dir.path()) {
        Err(Error::Unavailable(msg)) => assert_eq!(
            msg,
            format!(
                "data directory {} is in use by another berth process",
                dir.path().display()
            )
        ),
        other => panic!("a second open must fail, got {other:?}"),
    }
    store.close().await;
    EmbeddedStore::open(dir.path()).expect("a closed store's directory opens again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_watch_does_not_block_writers() {
    const WRITERS: usize = 16;
    const PER_WRITER: usize = 320;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    // Never polled while the writes run: its buffer fills up after 1,024 events.
    let mut stream = store.watch("/s/", 0).await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    store.create(&format!("/s/{w}/{i}"), vec![1]).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        tokio::time::timeout(TIMEOUT, w)
            .await
            .expect("writes must complete")
            .unwrap();
    }
    // The stalled watcher then catches up on everything, in order.
    for expected in 1..=(WRITERS * PER_WRITER) as i64 {
        let ev = tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ev.revision(), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_ends_its_task() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let mut live = store.watchers.subscribe();

    // A watcher that only ever sees other prefixes' commits.
    let idle = store.watch("/x/", 0).await.unwrap();
    // A watcher whose buffer fills up (1,100 events for 1,024 places).
    let full = store.watch("/d/", 0).await.unwrap();
    for i in 0..1_100 {
        store.create(&format!("/d/{i}"), vec![]).await.unwrap();
    }
    // A watcher started after the writes, waiting for the next commit.
    let idle_too = store
        .watch("/e/", store.current_revision().await.unwrap())
        .await
        .unwrap();
    tokio::time::timeout(TIMEOUT, live.wait_for(|n| *n == 3))
        .await
        .unwrap()
        .unwrap();

    drop((idle, full, idle_too));
    tokio::time::timeout(TIMEOUT, live.wait_for(|n| *n == 0))
        .await
        .expect("every watch task ends once its stream is dropped")
        .unwrap();
}

#[tokio::test]
async fn closing_the_store_ends_watches_with_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let rev = store.create("/c/a", vec![]).await.unwrap();
    let mut stream = store.watch("/c/", 0).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().revision(), rev);
    store.close().await;
    let end = tokio::time::timeout(TIMEOUT, stream.next()).await.unwrap();
    assert!(matches!(end, Some(Err(Error::Unavailable(_)))), "got {end:?}");
    assert!(
        tokio::time::timeout(TIMEOUT, stream.next())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn compaction_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let r1 = store.create("/b/a", vec![]).await.unwrap();
    let r2 = store.update("/b/a", vec![1], r1).await.unwrap();
    assert_eq!(
        store.compact(r2 + 1).await,
        Err(Error::FutureRevision {
            requested: r2 + 1,
            current: r2
        })
    );
    store.compact(r2).await.unwrap();
    store.compact(r1).await.unwrap(); // below the point: nothing happens
    assert_eq!(history_len(&store), 1);
    assert!(
        store.watch("/b/", r2 - 1).await.is_ok(),
        "watching from the compaction point works"
    );
}
