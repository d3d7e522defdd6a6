//! berth's typed controller runtime, after kube-runtime: one concept a module.
//!
//! - [`client`]: the object-safe API as controllers reach it (the root crate implements it
//!   in-process, so controllers go through admission and validation as users do), and
//!   [`api::Api`], the typed API of one kind;
//! - [`informer`]: list + watch of one kind into an indexed cache of `Arc<Object<K>>`;
//! - [`queue`]: the work queue (dedup, per-key backoff, rate limit);
//! - [`controller`]: triggers and workers running a [`Reconciler<K>`];
//! - [`finalizer`]: cleanup before an object may go ([`finalizer::Finalize`]);
//! - [`status`]: write status only when it changed; conditions;
//! - [`events`]: deduplicated Events and their sweeper;
//! - [`leader`]: leader election terms; [`manager`]: one term's informers, controllers and
//!   tasks; [`metrics`]: the Prometheus registry adapters add their families to.
//!
//! The runtime knows berth's kinds (`berth-crds`) and nothing of Docker, Git or the stores.
//!
//! # Example
//! A reconciler that counts the Environments of each Project into its status:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use berth_crds::{Object, kinds::{EnvironmentSpec, ProjectSpec, project::ProjectStatus}};
//! use berth_runtime::{Action, Api, Controller, Informer, Manager, ObjectRef, Reconciler, status};
//!
//! struct Counter {
//!     api: Api<ProjectSpec>,
//!     environments: Informer<EnvironmentSpec>,
//! }
//!
//! #[async_trait::async_trait]
//! impl Reconciler<ProjectSpec> for Counter {
//!     type Error = status::Error;
//!
//!     async fn reconcile(&self, project: Arc<Object<ProjectSpec>>) -> Result<Action, Self::Error> {
//!         let mut environments: Vec<String> = self
//!             .environments
//!             .by_index("project", project.name())
//!             .iter()
//!             .map(|e| e.name().to_owned())
//!             .collect();
//!         environments.sort();
//!         let next = ProjectStatus { environments, ..project.status.clone().unwrap_or_default() };
//!         status::update(&self.api, &project, &next).await?;
//!         Ok(Action::await_change())
//!     }
//! }
//!
//! fn install(manager: &mut Manager) {
//!     let projects = manager.informer::<ProjectSpec>();
//!     let environments = manager.informer::<EnvironmentSpec>();
//!     environments.add_index("project", |e| vec![e.spec.project.clone()]);
//!     let controller = Controller::new("counter", projects)
//!         .watches(&environments, |e| vec![ObjectRef::cluster(&e.spec.project)]);
//!     let api = manager.api_for::<ProjectSpec>("counter");
//!     manager.add(controller, Counter { api, environments });
//! }
//! ```

pub mod api;
pub mod client;
pub mod controller;
pub mod events;
pub mod finalizer;
pub mod informer;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod object;
pub mod queue;
pub mod status;

pub use api::Api;
pub use client::Client;
pub use controller::{Action, Controller, ControllerConfig, Reconciler};
pub use finalizer::{Finalize, Finalized};
pub use informer::Informer;
pub use manager::Manager;
pub use metrics::Metrics;
pub use object::{ObjectRef, info};
