//! The controller: triggers into a work queue, workers that run a [`Reconciler`] per key.
//!
//! # Guarantees
//! - Triggers: the controller's own kind; owned kinds, mapped to their owner through
//!   ownerReferences ([`Controller::owns`]); any kind through a mapper, e.g. an index lookup
//!   ([`Controller::watches`]); external key streams such as Docker events
//!   ([`Controller::triggers`]); and a periodic resync of every cached key (a safety net).
//! - Workers start only once every informer the controller reads has listed: its own, those
//!   it watches, and those it only reads ([`Controller::reads`]).
//! - Each reconcile runs in a `reconcile` span carrying controller, kind, namespace and name.
//! - A key is never reconciled by two workers at once; changes during a reconcile run it
//!   again afterwards (see [`crate::queue`]). The reconciler sees the cached object as of
//!   the start of its run, so the last run after a burst sees the final state.
//! - An error (or a panic) retries the key with per-key exponential backoff; a success
//!   resets it and honours [`Action::requeue`].
//! - On shutdown workers stop taking keys, and in-flight reconciles get
//!   [`ControllerConfig::shutdown_grace`] to finish before they are aborted.
//!
//! # Caveats
//! - A key whose object is no longer cached is skipped: cleanup belongs in a finalizer
//!   ([`crate::finalizer`]), which keeps the object around until it is done.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use berth_crds::{Object, Resource};
use futures::{FutureExt, Stream, StreamExt, future::BoxFuture};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    informer::{Change, Informer, Ready},
    metrics::Metrics,
    object::ObjectRef,
    queue::{QueueConfig, WorkQueue},
};

/// What a reconciler wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Action {
    requeue_after: Option<Duration>,
    cleanup_pending: bool,
}

impl Action {
    /// Run again after `d` (as well as on any change).
    pub fn requeue(d: Duration) -> Self {
        Self {
            requeue_after: Some(d),
            cleanup_pending: false,
        }
    }

    /// From a finalizer's cleanup: not finished yet (e.g. waiting for something else to
    /// let go), look again after `d`. The finalizer stays; this is a wait, not an error,
    /// so the per-key backoff does not grow.
    pub fn cleanup_pending(d: Duration) -> Self {
        Self {
            requeue_after: Some(d),
            cleanup_pending: true,
        }
    }

    /// Run again only when something changes (or at the periodic resync).
    pub fn await_change() -> Self {
        Self {
            requeue_after: None,
            cleanup_pending: false,
        }
    }

    /// Whether a cleanup asked to keep its finalizer for now ([`Action::cleanup_pending`]).
    pub fn is_cleanup_pending(&self) -> bool {
        self.cleanup_pending
    }

    /// The requested delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// The per-kind logic: converge one object of kind `K` towards its spec. Must be idempotent.
#[async_trait::async_trait]
pub trait Reconciler<K: Resource>: Send + Sync + 'static {
    /// The reconciler's error; any error retries the key with backoff.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reconciles `obj` (read from the informer's cache).
    async fn reconcile(&self, obj: Arc<Object<K>>) -> Result<Action, Self::Error>;
}

/// Tunables of a controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Concurrent reconciles (of different keys).
    pub workers: usize,
    /// Every cached key is reconciled this often even without changes.
    pub resync: Duration,
    /// Retry backoff and rate limit.
    pub queue: QueueConfig,
    /// How long in-flight reconciles may run on after shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            resync: Duration::from_secs(600),
            queue: QueueConfig::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

type Registration = Box<dyn FnOnce(Arc<WorkQueue<ObjectRef>>) + Send>;

/// A controller for kind `K`, built up with triggers, then [`Controller::run`].
pub struct Controller<K: Resource> {
    name: String,
    informer: Informer<K>,
    reads: Vec<Ready>,
    registrations: Vec<Registration>,
    externals: Vec<futures::stream::BoxStream<'static, ObjectRef>>,
    config: ControllerConfig,
}

impl<K: Resource> std::fmt::Debug for Controller<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.name)
            .field("kind", &K::KIND)
            .finish_non_exhaustive()
    }
}

impl<K: Resource> Controller<K> {
    /// A controller named `name` (metrics, logs) reconciling the objects of `informer`.
    pub fn new(name: &str, informer: Informer<K>) -> Self {
        let own: Registration = {
            let informer = informer.clone();
            Box::new(move |queue| {
                informer.subscribe(move |change| {
                    if let Some(obj) = change.new.as_ref().or(change.old.as_ref()) {
                        queue.add(ObjectRef::of(obj));
                    }
                })
            })
        };
        Self {
            name: name.to_owned(),
            reads: vec![informer.ready_signal()],
            informer,
            registrations: vec![own],
            externals: Vec::new(),
            config: ControllerConfig::default(),
        }
    }

    /// The controller's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the tunables.
    pub fn with_config(mut self, config: ControllerConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the number of workers.
    pub fn workers(mut self, n: usize) -> Self {
        self.config.workers = n.max(1);
        self
    }

    /// Sets the resync period.
    pub fn resync(mut self, every: Duration) -> Self {
        self.config.resync = every;
        self
    }

    /// Reconciles the owner (of this controller's kind) when an object of `owned` changes.
    pub fn owns<O: Resource>(self, owned: &Informer<O>) -> Self {
        self.watches(owned, move |obj| {
            let ns = if K::NAMESPACED { obj.namespace() } else { None };
            obj.metadata
                .owner_references
                .iter()
                .filter(|o| o.kind == K::KIND)
                .map(|o| ObjectRef::new(ns, &o.name))
                .collect()
        })
    }

    /// Waits for `other`'s first list before reconciling, without being triggered by it:
    /// for a cache the reconciler reads but whose changes do not concern it.
    pub fn reads<O: Resource>(mut self, other: &Informer<O>) -> Self {
        self.reads.push(other.ready_signal());
        self
    }

    /// Reconciles the keys `map` returns for each changed object of `other` (before and
    /// after the change), e.g. a Secret mapped to the Applications using it via an index.
    pub fn watches<O: Resource>(
        mut self,
        other: &Informer<O>,
        map: impl Fn(&Object<O>) -> Vec<ObjectRef> + Send + Sync + 'static,
    ) -> Self {
        let other_informer = other.clone();
        self.reads.push(other.ready_signal());
        self.registrations.push(Box::new(move |queue| {
            other_informer.subscribe(move |change: &Change<O>| {
                for obj in change.old.iter().chain(change.new.iter()) {
                    for key in map(obj) {
                        queue.add(key);
                    }
                }
            })
        }));
        self
    }

    /// Reconciles every key `stream` yields (e.g. objects named by Docker events' labels).
    pub fn triggers(mut self, stream: impl Stream<Item = ObjectRef> + Send + 'static) -> Self {
        self.externals.push(stream.boxed());
        self
    }

    /// Runs until `shutdown`, then drains (see the module docs).
    pub fn run<R: Reconciler<K>>(
        self,
        reconciler: Arc<R>,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        let labels = Metrics::controller(&self.name);
        let queue = Arc::new(WorkQueue::new(
            self.config.queue.clone(),
            metrics.queue_depth.get_or_create(&labels).clone(),
        ));
        for register in self.registrations {
            register(queue.clone());
        }
        let name: Arc<str> = self.name.into();
        let mut tasks = JoinSet::new();
        for mut stream in self.externals {
            let (queue, shutdown) = (queue.clone(), shutdown.clone());
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        key = stream.next() => match key {
                            Some(key) => queue.add(key),
                            None => break,
                        },
                        () = shutdown.cancelled() => break,
                    }
                }
            });
        }
        let informer = self.informer;
        let reads = self.reads;
        let config = self.config;
        async move {
            let ready = futures::future::join_all(reads.into_iter().map(Ready::wait));
            tokio::select! {
                _ = ready => {}
                () = shutdown.cancelled() => {
                    queue.shut_down();
                    tasks.shutdown().await;
                    return;
                }
            }
            tracing::info!(controller = &*name, kind = K::KIND, workers = config.workers, "controller started");
            for key in informer.keys() {
                queue.add(key);
            }
            {
                let (queue, informer, shutdown) = (queue.clone(), informer.clone(), shutdown.clone());
                let every = config.resync;
                tasks.spawn(async move {
                    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => for key in informer.keys() { queue.add(key) },
                            () = shutdown.cancelled() => break,
                        }
                    }
                });
            }
            let mut workers = JoinSet::new();
            for _ in 0..config.workers.max(1) {
                let worker = Worker {
                    name: name.clone(),
                    informer: informer.clone(),
                    queue: queue.clone(),
                    reconciler: reconciler.clone(),
                    metrics: metrics.clone(),
                };
                workers.spawn(worker.run());
            }
            shutdown.cancelled().await;
            queue.shut_down();
            let in_flight = queue.processing();
            let drained = tokio::time::timeout(config.shutdown_grace, async {
                while let Some(r) = workers.join_next().await {
                    if let Err(e) = r {
                        tracing::error!(controller = &*name, error = %e, "worker ended abnormally");
                    }
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(controller = &*name, grace = ?config.shutdown_grace, "in-flight reconciles did not finish in time; aborting them");
                workers.shutdown().await;
            }
            tasks.shutdown().await;
            tracing::info!(controller = &*name, in_flight, "controller stopped");
        }
        .boxed()
    }
}

struct Worker<K: Resource, R> {
    name: Arc<str>,
    informer: Informer<K>,
    queue: Arc<WorkQueue<ObjectRef>>,
    reconciler: Arc<R>,
    metrics: Metrics,
}

impl<K: Resource, R: Reconciler<K>> Worker<K, R> {
    async fn run(self) {
        while let Some(key) = self.queue.get().await {
            self.process(&key).await;
            self.queue.done(&key);
        }
    }

    async fn process(&self, key: &ObjectRef) {
        let kind = K::KIND;
        let Some(obj) = self.informer.get(key) else {
            tracing::debug!(controller = &*self.name, kind, key = %key, "object gone; nothing to reconcile");
            self.queue.forget(key);
            return;
        };
        let span = tracing::info_span!(
            "reconcile",
            controller = &*self.name,
            kind,
            namespace = key.namespace.as_deref().unwrap_or_default(),
            name = %key.name,
        );
        let labels = Metrics::controller(&self.name);
        let start = tokio::time::Instant::now();
        let result = AssertUnwindSafe(self.reconciler.reconcile(obj))
            .catch_unwind()
            .instrument(span.clone())
            .await;
        self.metrics.reconciles.get_or_create(&labels).inc();
        self.metrics
            .reconcile_duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
        let failure = match result {
            Ok(Ok(action)) => {
                self.queue.forget(key);
                if let Some(d) = action.requeue_after() {
                    self.queue.add_after(key.clone(), d);
                }
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "reconciler panicked".to_owned(),
        };
        self.metrics.reconcile_errors.get_or_create(&labels).inc();
        let retry_in = self.queue.add_rate_limited(key.clone());
        let retries = self.queue.retries(key);
        span.in_scope(|| tracing::warn!(error = %failure, ?retry_in, retries, "reconcile failed"));
    }
}
