//! berth's controllers: one reconciler per kind, on the typed runtime (`berth-runtime`), and
//! the adapters they drive: [`docker`] and [`git`] (and [`host_files`], files seeded on the
//! server). Reconcilers:
//! [`project`], [`server`], [`destination`], [`application`], [`database`], [`backup_storage`],
//! [`backup_schedule`], [`backup`], [`restore`] (Docker events reach them through
//! [`docker_triggers`]) and [`git_repository`] (over the Git adapter [`git`]); [`notification`]
//! delivers Events through the [`notify`] channels.
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
pub mod bootstrap;
pub mod container_config;
pub mod database;
pub mod destination;
pub mod docker;
pub mod docker_triggers;
pub mod dockers;
pub mod git;
pub mod git_repository;
pub mod host_files;
pub mod notification;
pub mod notify;
pub mod project;
pub mod proxy;
pub mod restore;
pub mod server;
pub mod service;
pub mod workload;

use std::time::Duration;

// The runtime's modules, named as the reconcilers use them (`crate::status`...).
use berth_runtime::{client, controller, events, finalizer, informer, manager, object, status};

/// Settings of the standard controllers.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-controller tunables (workers, resync, backoff).
    pub controller: berth_runtime::ControllerConfig,
    /// How long events are kept after they last happened.
    pub event_ttl: Duration,
    /// How often old events are swept.
    pub event_sweep_every: Duration,
    /// The Docker endpoint, default network and scope labels of the Docker controllers.
    pub docker: dockers::DockerOptions,
    /// The Application controller's tunables.
    pub apps: application::AppOptions,
    /// Controllers not to run, by name (`server`, `destination`, `application`, `database`,
    /// `service`, `proxy`, `gitrepository`, `notification`, `backup` — the last one disables storages,
    /// schedules, backups and restores).
    pub disabled: Vec<String>,
    /// A connected Docker client for the Proxy controllers; they run only with one.
    pub proxy_docker: Option<docker::Docker>,
    /// Where the GitRepository controller caches bare repositories.
    pub git_cache_dir: std::path::PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            controller: berth_runtime::ControllerConfig::default(),
            event_ttl: events::DEFAULT_TTL,
            event_sweep_every: Duration::from_secs(60),
            docker: dockers::DockerOptions::default(),
            apps: application::AppOptions::default(),
            disabled: Vec::new(),
            proxy_docker: None,
            git_cache_dir: std::env::temp_dir().join("berth-git"),
        }
    }
}

/// Adds every standard controller and the event sweeper to `manager`.
pub fn install(manager: &mut berth_runtime::Manager, options: &Options) {
    project::install(manager, options.controller.clone());
    let enabled = |name: &str| !options.disabled.iter().any(|d| d == name);
    let dockers = dockers::Dockers::new(manager, options.docker.clone());
    if enabled(server::NAME) {
        server::install(manager, options.controller.clone(), dockers.clone());
    }
    if enabled(destination::NAME) {
        destination::install(manager, options.controller.clone(), dockers.clone());
    }
    if enabled(application::NAME) {
        // Builds keep their own bare repositories (`<git cache>/apps`): the adapter's per-URL
        // lock is per `Repositories`, and the GitRepository controller has its own.
        let repos = git::Repositories::new(options.git_cache_dir.join("apps"));
        let mut apps = options.apps.clone();
        if apps.build_logs.is_none() {
            apps.build_logs = options.git_cache_dir.parent().map(|p| p.join("builds"));
        }
        application::install(
            manager,
            options.controller.clone(),
            dockers.clone(),
            apps,
            Some(repos),
        );
    }
    if enabled(database::NAME) {
        database::install(manager, options.controller.clone(), dockers.clone());
    }
    if enabled(service::NAME) {
        service::install(
            manager,
            options.controller.clone(),
            options.apps.host_root.clone(),
        );
    }
    if enabled(backup::NAME) {
        backup_storage::install(manager, options.controller.clone(), dockers.clone());
        backup_schedule::install(manager, options.controller.clone(), dockers.clone());
        backup::install(manager, options.controller.clone(), dockers.clone());
        restore::install(manager, options.controller.clone(), dockers);
    }
    if enabled("proxy") {
        match &options.proxy_docker {
            Some(docker) => {
                let labels = options.docker.scope.clone();
                proxy::install(manager, options.controller.clone(), docker.clone(), labels);
                proxy::install_autocreate(manager, options.controller.clone());
            }
            None => tracing::warn!("no docker daemon: the proxy controller is not running"),
        }
    }
    if enabled(git_repository::NAME) {
        git_repository::install(manager, options.controller.clone(), options.git_cache_dir.clone());
    }
    if enabled(notification::NAME)
        && let Err(e) = notification::install(manager, options.controller.clone())
    {
        tracing::error!(error = %e, "the notification controller is not running");
    }
    let client = manager.client_for("event-sweeper");
    let (ttl, every) = (options.event_ttl, options.event_sweep_every);
    manager.add_task(move |stop| Box::pin(events::run_sweeper(client, ttl, every, stop)));
}
