//! berth's controllers: the controller runtime and one reconciler per kind.
//!
//! The runtime follows kube-runtime, one concept a module: [`client`] (the API as controllers
//! see it), [`informer`] (list + watch into an indexed cache), [`queue`] (dedup, backoff,
//! rate limit), [`controller`] (triggers and workers), [`finalizer`], [`status`], [`events`],
//! [`leader`] (election), [`metrics`] and [`manager`] (one leadership term). Reconcilers:
//! [`project`], [`server`], [`destination`], [`application`], [`database`], [`backup_storage`],
//! [`backup_schedule`], [`backup`] and [`restore`] (Docker events reach them through
//! [`docker_triggers`]).
//!
//! ```ignore
//! let mut manager = Manager::new(client, metrics);
//! berth_controllers::install(&mut manager, &Options::default())?;
//! manager.run(shutdown).await;
//! ```

pub mod application;
pub mod backup;
pub mod backup_schedule;
pub mod backup_storage;
pub mod client;
pub mod controller;
pub mod database;
pub mod destination;
pub mod docker;
pub mod docker_triggers;
pub mod events;
pub mod finalizer;
pub mod git;
pub mod informer;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod object;
pub mod project;
pub mod proxy;
pub mod queue;
pub mod restore;
pub mod server;
pub mod status;
pub mod workload;

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
    /// The Docker endpoint, default network and scope labels of the Docker controllers.
    pub docker: server::DockerOptions,
    /// The Application controller's tunables.
    pub apps: application::AppOptions,
    /// Controllers not to run, by name (`server`, `destination`, `application`, `database`,
    /// `proxy`, `backup` — the last one disables storages, schedules, backups and restores).
    pub disabled: Vec<String>,
    /// A connected Docker client for the Proxy controllers; they run only with one.
    pub proxy_docker: Option<docker::Docker>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            controller: ControllerConfig::default(),
            event_ttl: events::DEFAULT_TTL,
            event_sweep_every: Duration::from_secs(60),
            docker: server::DockerOptions::default(),
            apps: application::AppOptions::default(),
            disabled: Vec::new(),
            proxy_docker: None,
        }
    }
}

/// A failure to set up the standard controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Project controller could not be set up.
    #[error("project controller: {0}")]
    Project(#[from] project::Error),
    /// The Proxy controllers could not be set up.
    #[error("proxy controller: {0}")]
    Proxy(#[from] proxy::Error),
    /// A Docker-driving controller could not be set up.
    #[error("docker controllers: {0}")]
    Docker(#[from] server::Error),
}

/// Adds every standard controller and the event sweeper to `manager`.
pub fn install(manager: &mut Manager, options: &Options) -> Result<(), Error> {
    project::install(manager, options.controller.clone())?;
    let enabled = |name: &str| !options.disabled.iter().any(|d| d == name);
    let dockers = server::Dockers::new(manager, options.docker.clone())?;
    if enabled(server::NAME) {
        server::install(manager, options.controller.clone(), dockers.clone())?;
    }
    if enabled(destination::NAME) {
        destination::install(manager, options.controller.clone(), dockers.clone())?;
    }
    if enabled(application::NAME) {
        // The Git cache sits beside the build logs (`<data-dir>/git`).
        let repos = options
            .apps
            .build_logs
            .as_deref()
            .and_then(std::path::Path::parent)
            .map(|data| git::Repositories::new(data.join("git")));
        application::install(
            manager,
            options.controller.clone(),
            dockers.clone(),
            options.apps.clone(),
            repos,
        )?;
    }
    if enabled(database::NAME) {
        database::install(manager, options.controller.clone(), dockers.clone())?;
    }
    if enabled(backup::NAME) {
        backup_storage::install(manager, options.controller.clone(), dockers.clone())?;
        backup_schedule::install(manager, options.controller.clone(), dockers.clone())?;
        backup::install(manager, options.controller.clone(), dockers.clone())?;
        restore::install(manager, options.controller.clone(), dockers)?;
    }
    if enabled("proxy") {
        match &options.proxy_docker {
            Some(docker) => {
                let labels = options.docker.scope.clone();
                proxy::install(manager, options.controller.clone(), docker.clone(), labels)?;
                proxy::install_autocreate(manager, options.controller.clone())?;
            }
            None => tracing::warn!("no docker daemon: the proxy controller is not running"),
        }
    }
    let client = manager.client_for("event-sweeper");
    let (ttl, every) = (options.event_ttl, options.event_sweep_every);
    manager.add_task(move |stop| Box::pin(events::run_sweeper(client, ttl, every, stop)));
    Ok(())
}
