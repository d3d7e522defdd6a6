//! The informer: list + watch of one kind into an indexed, typed in-memory cache, shared by
//! controllers.
//!
//! # Guarantees
//! - The cache holds every object of the kind as `Arc<Object<K>>`, parsed once on arrival,
//!   as of the last event applied; reconcilers read
//!   it instead of the API. It is indexed by namespace/name, by owner uid
//!   ([`Informer::owned_by`]) and by any named index ([`Informer::add_index`]).
//! - [`Informer::wait_ready`] resolves once the first list is in the cache.
//! - A watch that ends is resumed after the last resourceVersion seen, so no change is
//!   missed; a resume refused as Gone (history compacted) relists, and the relist turns the
//!   cache into exactly the listed state (objects gone meanwhile are reported as deleted).
//! - Subscribers ([`Informer::subscribe`]) hear every change after it is in the cache, in
//!   order, outside the cache lock (a subscriber may read any informer).
//! - A relist reports only objects whose resourceVersion changed: a quiet store makes no work.
//! - A stored object that does not parse as `K` is logged and counted once per resourceVersion
//!   (`berth_informer_malformed_total{kind}`) and kept out of the cache (a cached older
//!   version is dropped, as if deleted): it never reaches a reconciler.
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
use berth_crds::{Object, Resource, registry::KindInfo};
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
pub type IndexFn<K> = Arc<dyn Fn(&Object<K>) -> Vec<String> + Send + Sync>;

/// A subscriber: called with each change once it is in the cache.
pub type Handler<K> = Arc<dyn Fn(&Change<K>) + Send + Sync>;

/// One change to the cache.
#[derive(Debug)]
pub struct Change<K: Resource> {
    /// The object before (absent when added).
    pub old: Option<Arc<Object<K>>>,
    /// The object after (absent when deleted).
    pub new: Option<Arc<Object<K>>>,
}

impl<K: Resource> Clone for Change<K> {
    fn clone(&self) -> Self {
        Self {
            old: self.old.clone(),
            new: self.new.clone(),
        }
    }
}

/// A shared, cheaply cloneable informer of kind `K`.
pub struct Informer<K: Resource> {
    inner: Arc<Inner<K>>,
}

impl<K: Resource> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Resource> std::fmt::Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("kind", &K::KIND)
            .finish_non_exhaustive()
    }
}

struct Inner<K: Resource> {
    cache: RwLock<Cache<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    ready: watch::Sender<bool>,
    running: Mutex<bool>,
}

struct Cache<K: Resource> {
    objects: HashMap<ObjectRef, Arc<Object<K>>>,
    by_owner: HashMap<String, HashSet<ObjectRef>>,
    indexers: HashMap<&'static str, IndexFn<K>>,
    indexes: HashMap<&'static str, HashMap<String, HashSet<ObjectRef>>>,
    /// Objects that did not parse, by key, with the resourceVersion already reported.
    malformed: HashMap<ObjectRef, i64>,
    resource_version: i64,
}

impl<K: Resource> Default for Cache<K> {
    fn default() -> Self {
        Self {
            objects: HashMap::new(),
            by_owner: HashMap::new(),
            indexers: HashMap::new(),
            indexes: HashMap::new(),
            malformed: HashMap::new(),
            resource_version: 0,
        }
    }
}

impl<K: Resource> Cache<K> {
    fn unindex(&mut self, key: &ObjectRef, obj: &Object<K>) {
        for owner in &obj.metadata.owner_references {
            let uid = &owner.uid;
            if let Some(set) = self.by_owner.get_mut(uid) {
                set.remove(key);
                if set.is_empty() {
                    self.by_owner.remove(uid);
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

    fn index(&mut self, key: &ObjectRef, obj: &Object<K>) {
        for owner in &obj.metadata.owner_references {
            self.by_owner
                .entry(owner.uid.clone())
                .or_default()
                .insert(key.clone());
        }
        for (name, f) in &self.indexers {
            let index = self.indexes.entry(name).or_default();
            for value in f(obj) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
    }

    /// Stores `obj`; returns the change, or `None` when it is the version already cached.
    /// An object that does not parse is reported once (per resourceVersion) and dropped.
    fn put(&mut self, obj: Value, malformed: &impl Fn()) -> Option<Change<K>> {
        let key = ObjectRef::of_value(&obj);
        let rv = object::resource_version(&obj);
        if let Some(old) = self.objects.get(&key)
            && object::revision(old) == rv
            && rv != 0
        {
            return None;
        }
        let parsed = match serde_json::from_value::<Object<K>>(obj) {
            Ok(parsed) => parsed,
            Err(e) => {
                if self.malformed.get(&key) != Some(&rv) {
                    tracing::error!(kind = K::KIND, key = %key, rv, error = %e, "stored object does not parse; ignored");
                    malformed();
                    self.malformed.insert(key.clone(), rv);
                }
                return self.delete(&key);
            }
        };
        self.malformed.remove(&key);
        let new = Arc::new(parsed);
        let old = self.objects.insert(key.clone(), new.clone());
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        self.index(&key, &new);
        Some(Change { old, new: Some(new) })
    }

    fn delete(&mut self, key: &ObjectRef) -> Option<Change<K>> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old);
        Some(Change {
            old: Some(old),
            new: None,
        })
    }
}

impl<K: Resource> Default for Informer<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Resource> Informer<K> {
    /// An informer of `K`, empty until [`Informer::run`] lists.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                cache: RwLock::new(Cache::default()),
                handlers: RwLock::new(Vec::new()),
                ready: watch::Sender::new(false),
                running: Mutex::new(false),
            }),
        }
    }

    /// The kind this informer caches.
    pub fn kind(&self) -> &'static KindInfo {
        object::info::<K>()
    }

    fn read(&self) -> RwLockReadGuard<'_, Cache<K>> {
        // The cache is consistent between statements: a panicked writer leaves it usable.
        self.inner.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Cache<K>> {
        self.inner.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached object `key`.
    pub fn get(&self, key: &ObjectRef) -> Option<Arc<Object<K>>> {
        self.read().objects.get(key).cloned()
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<Object<K>>> {
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
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<Object<K>>> {
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
    pub fn add_index(
        &self,
        name: &'static str,
        f: impl Fn(&Object<K>) -> Vec<String> + Send + Sync + 'static,
    ) {
        let mut cache = self.write();
        let f: IndexFn<K> = Arc::new(f);
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
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<Object<K>>> {
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
    pub fn subscribe(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
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
            tracing::error!(kind = K::KIND, "informer dropped while waiting");
        }
    }

    /// A signal that resolves once the first list is in the cache, for any informer kind.
    pub fn ready_signal(&self) -> Ready {
        Ready(self.inner.ready.subscribe())
    }

    fn dispatch(&self, changes: &[Change<K>]) {
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
    fn replace(&self, items: Vec<Value>, rv: i64, malformed: &impl Fn()) {
        let changes = {
            let mut cache = self.write();
            let listed: HashSet<ObjectRef> = items.iter().map(ObjectRef::of_value).collect();
            cache.malformed.retain(|k, _| listed.contains(k));
            let gone: Vec<ObjectRef> = cache
                .objects
                .keys()
                .filter(|k| !listed.contains(*k))
                .cloned()
                .collect();
            let mut changes: Vec<Change<K>> = gone.iter().filter_map(|k| cache.delete(k)).collect();
            changes.extend(items.into_iter().filter_map(|obj| cache.put(obj, malformed)));
            cache.resource_version = rv;
            changes
        };
        self.inner.ready.send_replace(true);
        self.dispatch(&changes);
    }

    fn apply(&self, event: WatchEvent, malformed: &impl Fn()) {
        let change = {
            let mut cache = self.write();
            let (change, rv) = match event {
                WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                    let rv = object::resource_version(&obj);
                    (cache.put(obj, malformed), rv)
                }
                WatchEvent::Deleted(obj) => {
                    let key = ObjectRef::of_value(&obj);
                    cache.malformed.remove(&key);
                    (cache.delete(&key), object::resource_version(&obj))
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
                return Err(Error::AlreadyRunning(K::KIND));
            }
            *running = true;
        }
        let kind = object::info::<K>();
        let labels = KindLabels {
            kind: kind.kind.to_owned(),
        };
        let malformed = {
            let (metrics, labels) = (metrics.clone(), labels.clone());
            move || {
                metrics.malformed.get_or_create(&labels).inc();
            }
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
                    self.replace(list.items, rv, &malformed);
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
                            self.apply(ev, &malformed);
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

/// Resolves once an informer's first list is in its cache (see [`Informer::ready_signal`]).
#[derive(Debug, Clone)]
pub struct Ready(watch::Receiver<bool>);

impl Ready {
    /// Waits for the first list.
    pub async fn wait(mut self) {
        if self.0.wait_for(|ready| *ready).await.is_err() {
            tracing::error!("informer dropped while waiting");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_crds::kinds::EnvironmentSpec;
    use serde_json::json;

    fn obj(name: &str, rv: i64, owner: Option<&str>, project: &str) -> Value {
        let mut o = json!({"apiVersion": "berth.dev/v1", "kind": "Environment",
            "metadata": {"name": name, "resourceVersion": rv.to_string()},
            "spec": {"project": project}});
        if let Some(uid) = owner {
            o["metadata"]["ownerReferences"] =
                json!([{"apiVersion": "berth.dev/v1", "kind": "Project", "name": "p", "uid": uid}]);
        }
        o
    }

    #[test]
    fn indexes_follow_puts_deletes_and_replaces() {
        let inf = Informer::<EnvironmentSpec>::new();
        let bad = std::sync::atomic::AtomicUsize::new(0);
        let malformed = || {
            bad.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        inf.add_index("project", |o| vec![o.spec.project.clone()]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        inf.subscribe(move |c| {
            let name = c.new.as_ref().or(c.old.as_ref()).map(|o| o.name().to_owned());
            s.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((name, c.new.is_some()));
        });
        inf.replace(
            vec![obj("a", 1, Some("u1"), "s1"), obj("b", 2, None, "s1")],
            2,
            &malformed,
        );
        assert!(inf.is_ready());
        assert_eq!(inf.by_index("project", "s1").len(), 2);
        assert_eq!(inf.owned_by("u1").len(), 1);
        inf.apply(WatchEvent::Modified(obj("a", 3, None, "s2")), &malformed);
        assert_eq!(inf.owned_by("u1").len(), 0);
        assert_eq!(inf.by_index("project", "s1").len(), 1);
        assert_eq!(inf.by_index("project", "s2").len(), 1);
        // The same version again is no change.
        inf.apply(WatchEvent::Modified(obj("a", 3, None, "s2")), &malformed);
        inf.apply(WatchEvent::Deleted(obj("b", 4, None, "s1")), &malformed);
        assert!(inf.by_index("project", "s1").is_empty());
        assert_eq!(inf.resource_version(), 4);
        // A relist drops what is gone and reports only what changed.
        inf.replace(
            vec![obj("a", 3, None, "s2"), obj("c", 5, None, "s3")],
            5,
            &malformed,
        );
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
        assert_eq!(bad.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn a_malformed_object_is_counted_once_and_never_cached() {
        let inf = Informer::<EnvironmentSpec>::new();
        let bad = std::sync::atomic::AtomicUsize::new(0);
        let malformed = || {
            bad.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let count = || bad.load(std::sync::atomic::Ordering::SeqCst);
        let mut broken = obj("x", 2, None, "p");
        broken["spec"] = json!({"project": 7});
        inf.replace(vec![obj("a", 1, None, "p"), broken.clone()], 2, &malformed);
        assert_eq!((inf.len(), count()), (1, 1));
        // The same broken version again, by watch or by relist: not counted again.
        inf.apply(WatchEvent::Modified(broken.clone()), &malformed);
        inf.replace(vec![obj("a", 1, None, "p"), broken.clone()], 2, &malformed);
        assert_eq!((inf.len(), count()), (1, 1));
        // A good object that turns bad leaves the cache, as if deleted.
        let mut bad_a = obj("a", 3, None, "p");
        bad_a["spec"]["unknown"] = json!(true);
        inf.apply(WatchEvent::Modified(bad_a), &malformed);
        assert_eq!((inf.len(), count()), (0, 2));
        // A fixed version is cached again.
        inf.apply(WatchEvent::Modified(obj("x", 4, None, "p")), &malformed);
        assert_eq!((inf.len(), count()), (1, 2));
        assert!(inf.get(&ObjectRef::cluster("x")).is_some());
    }
}
