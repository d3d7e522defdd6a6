//! The informer: list + watch of one kind into an indexed in-memory cache, shared by controllers.
//!
//! # Guarantees
//! - The cache holds every object of the kind as of the last event applied; reconcilers read
//!   it instead of the API. It is indexed by namespace/name, by owner uid
//!   ([`Informer::owned_by`]) and by any named index ([`Informer::add_index`]).
//! - [`Informer::wait_ready`] resolves once the first list is in the cache.
//! - A watch that ends is resumed after the last resourceVersion seen, so no change is
//!   missed; a resume refused as Gone (history compacted) relists, and the relist turns the
//!   cache into exactly the listed state (objects gone meanwhile are reported as deleted).
//! - Subscribers ([`Informer::subscribe`]) hear every change after it is in the cache, in
//!   order, outside the cache lock (a subscriber may read any informer).
//! - A relist reports only objects whose resourceVersion changed: a quiet store makes no work.
//!
//! # Caveats
//! - Failed lists and watch starts are retried with backoff (800 ms doubling to 30 s, with
//!   jitter), as client-go's reflector does; the cache keeps serving the last state meanwhile.
//! - Subscribers run on the informer's task: they must be quick and must not block (adding a
//!   key to a work queue is the intended use).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use berth_crds::registry::KindInfo;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    client::{self, Client, WatchEvent},
    metrics::{KindLabels, Metrics},
    object::{self, ObjectRef},
};

/// Why an informer stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The informer was already started once.
    #[error("informer for {0} is already running")]
    AlreadyRunning(&'static str),
}

/// Computes index values of an object (e.g. the Secrets an Application references).
pub type IndexFn = Arc<dyn Fn(&Value) -> Vec<String> + Send + Sync>;

/// A subscriber: called with each change once it is in the cache.
pub type Handler = Arc<dyn Fn(&Change) + Send + Sync>;

/// One change to the cache.
#[derive(Debug, Clone)]
pub struct Change {
    /// The object before (absent when added).
    pub old: Option<Arc<Value>>,
    /// The object after (absent when deleted).
    pub new: Option<Arc<Value>>,
}

/// A shared, cheaply cloneable informer of one kind.
#[derive(Clone)]
pub struct Informer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Informer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("kind", &self.inner.kind.kind)
            .finish_non_exhaustive()
    }
}

struct Inner {
    kind: &'static KindInfo,
    cache: RwLock<Cache>,
    handlers: RwLock<Vec<Handler>>,
    ready: watch::Sender<bool>,
    running: Mutex<bool>,
}

#[derive(Default)]
struct Cache {
    objects: HashMap<ObjectRef, Arc<Value>>,
    by_owner: HashMap<String, HashSet<ObjectRef>>,
    indexers: HashMap<&'static str, IndexFn>,
    indexes: HashMap<&'static str, HashMap<String, HashSet<ObjectRef>>>,
    resource_version: i64,
}

impl Cache {
    fn unindex(&mut self, key: &ObjectRef, obj: &Value) {
        for (_, _, uid) in object::owners(obj) {
            if let Some(set) = self.by_owner.get_mut(&uid) {
                set.remove(key);
                if set.is_empty() {
                    self.by_owner.remove(&uid);
                }
            }
        }
        for (name, f) in &self.indexers {
            let Some(index) = self.indexes.get_mut(name) else {
                continue;
            };
            for value in f(obj) {
                if let Some(set) = index.get_mut(&value) {
                    set.remove(key);
                    if set.is_empty() {
                        index.remove(&value);
                    }
                }
            }
        }
    }

    fn index(&mut self, key: &ObjectRef, obj: &Value) {
        for (_, _, uid) in object::owners(obj) {
            self.by_owner.entry(uid).or_default().insert(key.clone());
        }
        for (name, f) in &self.indexers {
            let index = self.indexes.entry(name).or_default();
            for value in f(obj) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
    }

    /// Stores `obj`; returns the change, or `None` when it is the version already cached.
    fn put(&mut self, obj: Value) -> Option<Change> {
        let key = ObjectRef::of(&obj);
        let rv = object::resource_version(&obj);
        if let Some(old) = self.objects.get(&key)
            && object::resource_version(old) == rv
            && rv != 0
        {
            return None;
        }
        let new = Arc::new(obj);
        let old = self.objects.insert(key.clone(), new.clone());
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        self.index(&key, &new);
        Some(Change { old, new: Some(new) })
    }

    fn delete(&mut self, key: &ObjectRef) -> Option<Change> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old);
        Some(Change {
            old: Some(old),
            new: None,
        })
    }
}

impl Informer {
    /// An informer of `kind`, empty until [`Informer::run`] lists.
    pub fn new(kind: &'static KindInfo) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                cache: RwLock::new(Cache::default()),
                handlers: RwLock::new(Vec::new()),
                ready: watch::Sender::new(false),
                running: Mutex::new(false),
            }),
        }
    }

    /// The kind this informer caches.
    pub fn kind(&self) -> &'static KindInfo {
        self.inner.kind
    }

    fn read(&self) -> RwLockReadGuard<'_, Cache> {
        // The cache is consistent between statements: a panicked writer leaves it usable.
        self.inner.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Cache> {
        self.inner.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached object `key`.
    pub fn get(&self, key: &ObjectRef) -> Option<Arc<Value>> {
        self.read().objects.get(key).cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<Value>> {
        self.read().objects.values().cloned().collect()
    }

    /// Every cached key.
    pub fn keys(&self) -> Vec<ObjectRef> {
        self.read().objects.keys().cloned().collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resourceVersion the cache is at.
    pub fn resource_version(&self) -> i64 {
        self.read().resource_version
    }

    /// The cached objects with an ownerReference to `uid`.
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<Value>> {
        let cache = self.read();
        cache
            .by_owner
            .get(uid)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| cache.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds (or replaces) the index `name`; existing objects are indexed at once.
    pub fn add_index(&self, name: &'static str, f: impl Fn(&Value) -> Vec<String> + Send + Sync + 'static) {
        let mut cache = self.write();
        let f: IndexFn = Arc::new(f);
        let mut index: HashMap<String, HashSet<ObjectRef>> = HashMap::new();
        for (key, obj) in &cache.objects {
            for value in f(obj) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
        cache.indexers.insert(name, f);
        cache.indexes.insert(name, index);
    }

    /// The cached objects whose index `name` contains `value`.
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<Value>> {
        let cache = self.read();
        cache
            .indexes
            .get(name)
            .and_then(|index| index.get(value))
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| cache.objects.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Calls `handler` with every later change.
    pub fn subscribe(&self, handler: impl Fn(&Change) + Send + Sync + 'static) {
        self.inner
            .handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(handler));
    }

    /// Whether the first list is in the cache.
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// Waits until the first list is in the cache.
    pub async fn wait_ready(&self) {
        let mut rx = self.inner.ready.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        if rx.wait_for(|ready| *ready).await.is_err() {
            tracing::error!(kind = self.inner.kind.kind, "informer dropped while waiting");
        }
    }

    fn dispatch(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let handlers = self
            .inner
            .handlers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for change in changes {
            for h in &handlers {
                h(change);
            }
        }
    }

    /// Makes the cache exactly `items` at `rv`; reports what changed.
    fn replace(&self, items: Vec<Value>, rv: i64) {
        let changes = {
            let mut cache = self.write();
            let listed: HashSet<ObjectRef> = items.iter().map(ObjectRef::of).collect();
            let gone: Vec<ObjectRef> = cache
                .objects
                .keys()
                .filter(|k| !listed.contains(*k))
                .cloned()
                .collect();
            let mut changes: Vec<Change> = gone.iter().filter_map(|k| cache.delete(k)).collect();
            changes.extend(items.into_iter().filter_map(|obj| cache.put(obj)));
            cache.resource_version = rv;
            changes
        };
        self.inner.ready.send_replace(true);
        self.dispatch(&changes);
    }

    fn apply(&self, event: WatchEvent) {
        let change = {
            let mut cache = self.write();
            let (change, rv) = match event {
                WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                    let rv = object::resource_version(&obj);
                    (cache.put(obj), rv)
                }
                WatchEvent::Deleted(obj) => {
                    (cache.delete(&ObjectRef::of(&obj)), object::resource_version(&obj))
                }
                WatchEvent::Bookmark(rv) => (None, rv),
            };
            cache.resource_version = cache.resource_version.max(rv);
            change
        };
        if let Some(change) = change {
            self.dispatch(&[change]);
        }
    }

    /// Lists and watches until `shutdown`; the cache follows the store.
    pub async fn run(
        &self,
        client: Arc<dyn Client>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            if *running {
                return Err(Error::AlreadyRunning(self.inner.kind.kind));
            }
            *running = true;
        }
        let kind = self.inner.kind;
        let labels = KindLabels {
            kind: kind.kind.to_owned(),
        };
        let new_backoff = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(800))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut backoff = new_backoff();
        let pause = |d: Duration| {
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = tokio::time::sleep(d) => true,
                    () = shutdown.cancelled() => false,
                }
            }
        };
        'relist: loop {
            let listed = tokio::select! {
                r = client.list(kind, None, "") => r,
                () = shutdown.cancelled() => return Ok(()),
            };
            metrics.relists.get_or_create(&labels).inc();
            let mut rv = match listed {
                Ok(list) => {
                    let rv = list.resource_version;
                    tracing::debug!(kind = kind.kind, items = list.items.len(), rv, "listed");
                    self.replace(list.items, rv);
                    rv
                }
                Err(e) => {
                    let d = backoff.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(kind = kind.kind, error = %e, retry_in = ?d, "list failed");
                    if !pause(d).await {
                        return Ok(());
                    }
                    continue 'relist;
                }
            };
            loop {
                let started = tokio::select! {
                    r = client.watch(kind, rv) => r,
                    () = shutdown.cancelled() => return Ok(()),
                };
                let mut stream = match started {
                    Ok(s) => s,
                    Err(client::Error::Gone { current }) => {
                        tracing::info!(
                            kind = kind.kind,
                            rv,
                            current,
                            "watch history compacted; relisting"
                        );
                        continue 'relist;
                    }
                    Err(e) => {
                        let d = backoff.next().unwrap_or(Duration::from_secs(30));
                        tracing::warn!(kind = kind.kind, error = %e, retry_in = ?d, "watch failed to start");
                        if !pause(d).await {
                            return Ok(());
                        }
                        continue;
                    }
                };
                let mut healthy = false;
                let ended = loop {
                    let next = tokio::select! {
                        ev = stream.next() => ev,
                        () = shutdown.cancelled() => return Ok(()),
                    };
                    match next {
                        Some(Ok(ev)) => {
                            if !healthy {
                                healthy = true;
                                backoff = new_backoff();
                            }
                            self.apply(ev);
                            rv = self.resource_version();
                        }
                        Some(Err(client::Error::Gone { current })) => {
                            tracing::info!(
                                kind = kind.kind,
                                rv,
                                current,
                                "watch history compacted; relisting"
                            );
                            continue 'relist;
                        }
                        Some(Err(e)) => break Some(e),
                        None => break None,
                    }
                };
                metrics.watch_restarts.get_or_create(&labels).inc();
                let d = backoff.next().unwrap_or(Duration::from_secs(30));
                match ended {
                    Some(e) => {
                        tracing::warn!(kind = kind.kind, error = %e, rv, retry_in = ?d, "watch ended; resuming")
                    }
                    None => tracing::debug!(kind = kind.kind, rv, retry_in = ?d, "watch closed; resuming"),
                }
                if !pause(d).await {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str, rv: i64, owner: Option<&str>, secret: &str) -> Value {
        let mut o = json!({"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv.to_string()},
            "spec": {"secret": secret}});
        if let Some(uid) = owner {
            o["metadata"]["ownerReferences"] = json!([{"kind": "Project", "name": "p", "uid": uid}]);
        }
        o
    }

    fn informer() -> Informer {
        let kind = berth_crds::lookup("Application").unwrap_or_else(|| unreachable!());
        Informer::new(kind)
    }

    #[test]
    fn indexes_follow_puts_deletes_and_replaces() {
        let inf = informer();
        inf.add_index("secret", |o| {
            o.pointer("/spec/secret")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .into_iter()
                .collect()
        });
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        inf.subscribe(move |c| {
            let name = c
                .new
                .as_ref()
                .or(c.old.as_ref())
                .map(|o| object::name(o).to_owned());
            s.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((name, c.new.is_some()));
        });
        inf.replace(vec![obj("a", 1, Some("u1"), "s1"), obj("b", 2, None, "s1")], 2);
        assert!(inf.is_ready());
        assert_eq!(inf.by_index("secret", "s1").len(), 2);
        assert_eq!(inf.owned_by("u1").len(), 1);
        inf.apply(WatchEvent::Modified(obj("a", 3, None, "s2")));
        assert_eq!(inf.owned_by("u1").len(), 0);
        assert_eq!(inf.by_index("secret", "s1").len(), 1);
        assert_eq!(inf.by_index("secret", "s2").len(), 1);
        // The same version again is no change.
        inf.apply(WatchEvent::Modified(obj("a", 3, None, "s2")));
        inf.apply(WatchEvent::Deleted(obj("b", 4, None, "s1")));
        assert!(inf.by_index("secret", "s1").is_empty());
        assert_eq!(inf.resource_version(), 4);
        // A relist drops what is gone and reports only what changed.
        inf.replace(vec![obj("a", 3, None, "s2"), obj("c", 5, None, "s3")], 5);
        assert_eq!(inf.len(), 2);
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let names: Vec<_> = seen
            .iter()
            .map(|(n, live)| (n.clone().unwrap_or_default(), *live))
            .collect();
        assert_eq!(
            names,
            [("a", true), ("b", true), ("a", true), ("b", false), ("c", true)]
                .map(|(n, l)| (n.to_string(), l))
        );
    }
}
