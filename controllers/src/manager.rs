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

use std::{collections::HashMap, sync::Arc};

use berth_crds::registry::KindInfo;
use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{
    client::{Client, Metered},
    controller::{Controller, Reconciler},
    informer::Informer,
    metrics::Metrics,
};

type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// Holds what one leadership term runs.
pub struct Manager {
    client: Arc<dyn Client>,
    metrics: Metrics,
    informers: HashMap<&'static str, Informer>,
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

    /// The shared informer of `kind`.
    pub fn informer(&mut self, kind: &'static KindInfo) -> Informer {
        self.informers
            .entry(kind.kind)
            .or_insert_with(|| Informer::new(kind))
            .clone()
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

    /// Adds a controller with its reconciler.
    pub fn add<R: Reconciler>(&mut self, controller: Controller, reconciler: R) {
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
            informers.spawn(async move {
                if let Err(e) = informer.run(client, metrics, stop).await {
                    tracing::error!(error = %e, "informer failed");
                }
            });
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
