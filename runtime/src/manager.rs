//! The manager: shared informers, controllers and background tasks, started and stopped as one.
//!
//! # Guarantees
//! - One informer per kind ([`Manager::informer`]), shared by every controller that reads
//!   the kind.
//! - [`Manager::run`] starts every informer, then every controller (each waits for its
//!   caches), and on shutdown stops the controllers first (letting in-flight reconciles
//!   finish) and the informers last.
//! - [`Manager::client_for`] hands each controller a client whose writes are counted under
//!   its name in `berth_api_writes_total`.

use std::{any::Any, collections::HashMap, sync::Arc};

use berth_crds::Resource;
use futures::{FutureExt, future::BoxFuture};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{
    api::Api,
    client::{Client, Metered},
    controller::{Controller, Reconciler},
    informer::Informer,
    metrics::Metrics,
};

type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// Starts one informer: list + watch through the client until the token is cancelled.
type RunInformer =
    Box<dyn FnOnce(Arc<dyn Client>, Metrics, CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// An informer of some kind, with the means to run it.
struct AnyInformer {
    informer: Box<dyn Any + Send>,
    run: RunInformer,
}

/// Holds what one leadership term runs.
pub struct Manager {
    client: Arc<dyn Client>,
    metrics: Metrics,
    informers: HashMap<&'static str, AnyInformer>,
    controllers: Vec<Task>,
    tasks: Vec<Task>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("informers", &self.informers.keys().collect::<Vec<_>>())
            .field("controllers", &self.controllers.len())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager reading and writing through `client`, reporting to `metrics`.
    pub fn new(client: Arc<dyn Client>, metrics: Metrics) -> Self {
        Self {
            client,
            metrics,
            informers: HashMap::new(),
            controllers: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// The shared informer of kind `K`.
    pub fn informer<K: Resource>(&mut self) -> Informer<K> {
        let entry = self.informers.entry(K::KIND).or_insert_with(|| {
            let informer = Informer::<K>::new();
            let runner = informer.clone();
            AnyInformer {
                informer: Box::new(informer),
                run: Box::new(move |client, metrics, stop| {
                    async move {
                        if let Err(e) = runner.run(client, metrics, stop).await {
                            tracing::error!(kind = K::KIND, error = %e, "informer failed");
                        }
                    }
                    .boxed()
                }),
            }
        });
        match entry.informer.downcast_ref::<Informer<K>>() {
            Some(informer) => informer.clone(),
            // Two spec types claiming one kind name: a programming error caught by the
            // registry's uniqueness test; the second gets a cache of its own.
            None => {
                tracing::error!(kind = K::KIND, "two types share a kind name");
                Informer::new()
            }
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A client whose writes count as `controller`'s.
    pub fn client_for(&self, controller: &str) -> Arc<dyn Client> {
        Arc::new(Metered::new(
            self.client.clone(),
            self.metrics.clone(),
            controller,
        ))
    }

    /// The API of kind `K` (all namespaces), writes counted as `controller`'s.
    pub fn api_for<K: Resource>(&self, controller: &str) -> Api<K> {
        Api::all(self.client_for(controller))
    }

    /// Adds a controller with its reconciler.
    pub fn add<K: Resource, R: Reconciler<K>>(&mut self, controller: Controller<K>, reconciler: R) {
        let reconciler = Arc::new(reconciler);
        let metrics = self.metrics.clone();
        self.controllers
            .push(Box::new(move |stop| controller.run(reconciler, metrics, stop)));
    }

    /// Adds a background task (e.g. the event sweeper) that ends when its token is cancelled.
    pub fn add_task(
        &mut self,
        task: impl FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send + 'static,
    ) {
        self.tasks.push(Box::new(task));
    }

    /// Runs everything until `shutdown` (see the module docs).
    pub async fn run(self, shutdown: CancellationToken) {
        let informers_stop = CancellationToken::new();
        let mut informers = JoinSet::new();
        for informer in self.informers.into_values() {
            let (client, metrics, stop) = (self.client.clone(), self.metrics.clone(), informers_stop.clone());
            informers.spawn((informer.run)(client, metrics, stop));
        }
        let mut controllers = JoinSet::new();
        for c in self.controllers.into_iter().chain(self.tasks) {
            controllers.spawn(c(shutdown.clone()));
        }
        while let Some(r) = controllers.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "controller task ended abnormally");
            }
        }
        informers_stop.cancel();
        while let Some(r) = informers.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "informer task ended abnormally");
            }
        }
    }
}
