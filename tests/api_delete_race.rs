//! A delete racing a controller's write: the API layer over a store that lets another
//! writer in between the delete's read and its write, exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth::api::objects::{Api, DeleteOptions, WriteOptions};
use berth::store::embedded::EmbeddedStore;
use berth_crds::kinds::ProjectSpec;
use berth_crds::registry;
use berth_crds::store::{self, KeyValue, Listing, Revision, Store, WatchStream};
use serde_json::{Value, json};

/// Before the first `update` or `delete` it forwards, writes the same key once more (as a
/// controller writing status would), so that write's compare-and-swap fails.
struct Racing {
    inner: EmbeddedStore,
    armed: AtomicBool,
}

impl Racing {
    async fn interleave(&self, key: &str) {
        if self.armed.swap(false, Ordering::SeqCst) {
            let kv = self.inner.get(key).await.unwrap().unwrap();
            let mut obj: Value = serde_json::from_slice(&kv.value).unwrap();
            obj["metadata"]["labels"] = json!({"written-by": "a-controller"});
            self.inner
                .update(key, serde_json::to_vec(&obj).unwrap(), kv.mod_revision)
                .await
                .unwrap();
        }
    }
}

#[async_trait::async_trait]
impl Store for Racing {
    async fn get(&self, key: &str) -> store::Result<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> store::Result<Listing> {
        self.inner.list(prefix).await
    }
    async fn create(&self, key: &str, value: Vec<u8>) -> store::Result<Revision> {
        self.inner.create(key, value).await
    }
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> store::Result<Revision> {
        self.interleave(key).await;
        self.inner.update(key, value, expected).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> store::Result<(Revision, KeyValue)> {
        self.interleave(key).await;
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> store::Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> store::Result<()> {
        self.inner.compact(revision).await
    }
    async fn current_revision(&self) -> store::Result<Revision> {
        self.inner.current_revision().await
    }
}

fn project(name: &str, finalizers: &[&str]) -> Value {
    json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Project",
        "metadata": {"name": name, "finalizers": finalizers},
        "spec": {"description": "raced"},
    })
}

async fn api() -> (Api, Arc<Racing>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let inner = tokio::task::spawn_blocking(move || EmbeddedStore::open(path))
        .await
        .unwrap()
        .unwrap();
    let store = Arc::new(Racing {
        inner,
        armed: AtomicBool::new(false),
    });
    (Api::new(store.clone()), store, dir)
}

#[tokio::test]
async fn a_delete_without_preconditions_reads_again_after_losing_a_race() {
    let (objects, store, _dir) = api().await;
    let info = registry::info::<ProjectSpec>();
    for (name, finalizers) in [("with-finalizer", &["example.com/hold"][..]), ("plain", &[][..])] {
        objects
            .create(info, None, project(name, finalizers), WriteOptions::default())
            .await
            .unwrap();
        store.armed.store(true, Ordering::SeqCst);
        let result = objects.delete(info, None, name, &DeleteOptions::default()).await;
        assert!(
            !store.armed.load(Ordering::SeqCst),
            "{name}: the race was not staged"
        );
        let obj = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            obj["metadata"]["labels"]["written-by"], "a-controller",
            "{name}: the other write is kept"
        );
    }
    let marked = objects.get(info, None, "with-finalizer").await.unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert!(objects.get(info, None, "plain").await.is_err(), "plain is gone");
}

#[tokio::test]
async fn a_delete_with_a_resource_version_precondition_still_conflicts() {
    let (objects, store, _dir) = api().await;
    let info = registry::info::<ProjectSpec>();
    let created = objects
        .create(info, None, project("s", &[]), WriteOptions::default())
        .await
        .unwrap();
    let rv: i64 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    store.armed.store(true, Ordering::SeqCst);
    let opts = DeleteOptions {
        resource_version: Some(rv),
        ..DeleteOptions::default()
    };
    let err = objects.delete(info, None, "s", &opts).await.unwrap_err();
    assert!(err.to_string().contains("modified"), "{err}");
    assert!(objects.get(info, None, "s").await.is_ok(), "nothing was deleted");
}
