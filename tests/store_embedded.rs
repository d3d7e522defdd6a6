//! The embedded store against the conformance suite, plus a kill -9 crash test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::Arc,
};

use berth::store::embedded::EmbeddedStore;
use berth_crds::store::{Revision, Store};
use common::conformance::next_events;
use tempfile::TempDir;

/// A fresh embedded store in its own temporary directory.
struct Embedded {
    // Declared first: the store closes before the directory is removed.
    store: Arc<dyn Store>,
    _dir: TempDir,
}

impl Embedded {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

async fn open() -> Embedded {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    Embedded {
        store: Arc::new(store),
        _dir: dir,
    }
}

conformance_suite!(open);

/// Set in the writer child of [`crash_keeps_acknowledged_writes`]: its data directory.
const CRASH_WRITER_DIR: &str = "BERTH_CRASH_WRITER_DIR";
/// Acknowledgements the parent reads before it kills the writer.
const ACKS_BEFORE_KILL: usize = 2_000;
/// Concurrent writer tasks in the child.
const CHILD_WRITERS: usize = 16;
/// Keys per writer task: each is rewritten many times.
const KEYS_PER_WRITER: usize = 32;

/// Kills a writer process (SIGKILL) in the middle of its writes, then checks that every write
/// it acknowledged is in the reopened store, with its value and revision.
#[test]
fn crash_keeps_acknowledged_writes() {
    if let Some(dir) = std::env::var_os(CRASH_WRITER_DIR) {
        return crash_writer(dir.into());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_keeps_acknowledged_writes", "--nocapture"])
        .env(CRASH_WRITER_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acks: Vec<(String, Revision, String)> = Vec::new();
    let mut line = String::new();
    let mut read_ack = |out: &mut BufReader<_>, acks: &mut Vec<_>| -> bool {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            return false;
        }
        // A line cut short by the kill was never a complete acknowledgement.
        if let Some(ack) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ack ")) {
            let mut parts = ack.split(' ');
            let (key, rev, value) = (parts.next(), parts.next(), parts.next());
            acks.push((
                key.unwrap().to_owned(),
                rev.unwrap().parse().unwrap(),
                value.unwrap().to_owned(),
            ));
        }
        true
    };
    while acks.len() < ACKS_BEFORE_KILL {
        assert!(
            read_ack(&mut out, &mut acks),
            "the writer exited after {} acks",
            acks.len()
        );
    }
    child.kill().unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    while read_ack(&mut out, &mut acks) {}
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the writer must have been killed, not finished: {status}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let current = store.current_revision().await.unwrap();
        let max_acked = acks.iter().map(|a| a.1).max().unwrap();
        assert!(
            current >= max_acked,
            "revision {current} is behind acknowledged {max_acked}"
        );

        // Every acknowledged write is in the history at its revision, with its value.
        let mut stream = store.watch("/crash/", 0).await.unwrap();
        let history: HashMap<Revision, (String, Vec<u8>)> = next_events(&mut stream, current as usize)
            .await
            .into_iter()
            .map(|e| (e.revision(), (e.kv.key, e.kv.value)))
            .collect();
        for (key, rev, value) in &acks {
            assert_eq!(
                history.get(rev),
                Some(&(key.clone(), value.clone().into_bytes())),
                "acknowledged write {key}@{rev} is missing or different"
            );
        }

        // Each key holds its last acknowledged write, or a later one.
        let mut last: BTreeMap<&str, (Revision, &str)> = BTreeMap::new();
        for (key, rev, value) in &acks {
            let entry = last.entry(key).or_insert((*rev, value));
            if *rev > entry.0 {
                *entry = (*rev, value);
            }
        }
        for (key, (rev, value)) in last {
            let kv = store.get(key).await.unwrap().unwrap();
            assert!(
                kv.mod_revision >= rev,
                "{key} went back from {rev} to {}",
                kv.mod_revision
            );
            if kv.mod_revision == rev {
                assert_eq!(kv.value, value.as_bytes(), "{key}@{rev} has another value");
            }
        }
        store.close().await;
    });
}

/// The child's side of the crash test: writes until killed, printing each acknowledgement.
fn crash_writer(dir: std::path::PathBuf) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(&dir).unwrap());
        let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let tasks: Vec<_> = (0..CHILD_WRITERS)
            .map(|w| {
                let (store, stdout) = (store.clone(), stdout.clone());
                tokio::spawn(async move {
                    let mut revs: HashMap<String, Revision> = HashMap::new();
                    for i in 0.. {
                        let key = format!("/crash/{w}/{}", i % KEYS_PER_WRITER);
                        let value = format!("{w}-{i}");
                        let rev = match revs.get(&key) {
                            None => store.create(&key, value.clone().into_bytes()).await,
                            Some(&rev) => store.update(&key, value.clone().into_bytes(), rev).await,
                        }
                        .unwrap();
                        revs.insert(key.clone(), rev);
                        let mut out = stdout.lock().unwrap();
                        // The parent stops reading once it has killed us: stop writing too.
                        if writeln!(out, "ack {key} {rev} {value}")
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            return;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}
