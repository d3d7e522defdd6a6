//! berth's controllers: the controller runtime and one reconciler per kind.
//!
//! The runtime follows kube-runtime, one concept a module: [`client`] (the API as controllers
//! see it), [`informer`] (list + watch into an indexed cache), [`queue`] (dedup, backoff,
//! rate limit), [`controller`] (triggers and workers), [`finalizer`], [`status`], [`events`],
//! [`leader`] (election), [`metrics`] and [`manager`] (one leadership term). Reconcilers:
//! [`project`].
//!
//! ```ignore
//! let mut manager = Manager::new(client, metrics);
//! berth_controllers::install(&mut manager, &Options::default())?;
//! manager.run(shutdown).await;
//! ```

pub mod client;
pub mod controller;
pub mod docker;
pub mod events;
pub mod finalizer;
pub mod informer;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod object;
pub mod project;
pub mod queue;
pub mod status;

use std::time::Duration;

pub use client::Client;
pub use controller::{Action, Controller, ControllerConfig, Reconciler};
pub use informer::Informer;
pub use manager::Manager;
pub use metrics::Metrics;
pub use object::ObjectRef;

/// Settings of the standard controllers.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-controller tunables (workers, resync, backoff).
    pub controller: ControllerConfig,
    /// How long events are kept after they last happened.
    pub event_ttl: Duration,
    /// How often old events are swept.
    pub event_sweep_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            controller: ControllerConfig::default(),
            event_ttl: events::DEFAULT_TTL,
            event_sweep_every: Duration::from_secs(60),
        }
    }
}

/// A failure to set up the standard controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Project controller could not be set up.
    #[error("project controller: {0}")]
    Project(#[from] project::Error),
}

/// Adds every standard controller and the event sweeper to `manager`.
pub fn install(manager: &mut Manager, options: &Options) -> Result<(), Error> {
    project::install(manager, options.controller.clone())?;
    let client = manager.client_for("event-sweeper");
    let (ttl, every) = (options.event_ttl, options.event_sweep_every);
    manager.add_task(move |stop| Box::pin(events::run_sweeper(client, ttl, every, stop)));
    Ok(())
}
