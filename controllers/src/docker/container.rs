//! Container lifecycle: create, start, stop, kill, remove, inspect, list.
//!
//! # Guarantees
//! - `start` of a running and `stop` of a stopped container succeed (the desired
//!   state holds), so reconcilers can call them unconditionally.
//! - `remove` never removes the container's volumes.
//! - Creating a container whose name is taken fails with [`Error::Conflict`].
//!
//! # Caveats
//! - [`ContainerState::image_id`] is the local image ID; registry digests are on
//!   [`Docker::inspect_image`](super::Docker::inspect_image).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};

use super::connect::Docker;
use super::error::{Error, Result};
use super::labels::{self, Labels};
use super::spec::ContainerSpec;

/// A container as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// Full container ID.
    pub id: String,
    /// Name, without Docker's leading `/`.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Image reference the container was created from.
    pub image: String,
    /// Local image ID (`sha256:...`).
    pub image_id: String,
    /// Docker's status word: `created`, `running`, `restarting`, `exited`, `dead`...
    pub status: String,
    /// Whether the main process runs.
    pub running: bool,
    /// Exit code of the last run, once it has exited.
    pub exit_code: Option<i64>,
    /// Health, when the container has a health check.
    pub health: Option<Health>,
    /// How often Docker restarted it under its restart policy.
    pub restart_count: i64,
    /// When it last started (RFC 3339), if ever.
    pub started_at: Option<String>,
    /// When it last exited (RFC 3339), if ever: with the restart count, what a
    /// crash-loop backoff is computed from.
    pub finished_at: Option<String>,
    /// Address on each attached network, by network name.
    pub ips: BTreeMap<String, IpAddr>,
    /// DNS aliases on each attached network, by network name.
    pub aliases: BTreeMap<String, Vec<String>>,
}

/// Health of a container with a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Within the start period, or no probe has passed yet.
    Starting,
    /// The last probe passed.
    Healthy,
    /// `retries` probes in a row failed.
    Unhealthy,
}

impl Health {
    pub(super) fn parse(word: &str) -> Option<Health> {
        match word.trim() {
            "starting" => Some(Health::Starting),
            "healthy" => Some(Health::Healthy),
            "unhealthy" => Some(Health::Unhealthy),
            _ => None,
        }
    }
}

/// One line of a container listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Full container ID.
    pub id: String,
    /// Name, without Docker's leading `/`.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Docker's status word.
    pub status: String,
    /// Local image ID.
    pub image_id: String,
}

impl ContainerState {
    /// Whether the container was created and never started (Docker's `created`).
    pub fn is_created(&self) -> bool {
        self.status == status_word(ContainerStateStatusEnum::CREATED)
    }

    /// Whether Docker is restarting it after an exit (its restart policy; Docker's `restarting`).
    pub fn is_restarting(&self) -> bool {
        self.status == status_word(ContainerStateStatusEnum::RESTARTING)
    }
}

impl ContainerSummary {
    /// Whether its main process runs (Docker's `running`).
    pub fn is_running(&self) -> bool {
        self.status == status_word(ContainerStateStatusEnum::RUNNING)
    }
}

impl Docker {
    /// Creates the container described by `spec` (not started) and returns its ID.
    /// Adds the `dev.berth.config-hash` label.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let body = spec.to_create_body()?;
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        self.count("container_create");
        let created = self.client.create_container(Some(options), body).await?;
        for warning in &created.warnings {
            tracing::warn!(container = %spec.name, %warning, "docker warning on create");
        }
        Ok(created.id)
    }

    /// Starts a container; succeeds if it already runs.
    pub async fn start_container(&self, name: &str) -> Result<()> {
        self.count("container_start");
        match self.client.start_container(name, None).await {
            Err(e) => match Error::from(e) {
                Error::NotModified => Ok(()),
                e => Err(e),
            },
            Ok(()) => Ok(()),
        }
    }

    /// Stops a container (SIGTERM, SIGKILL after `timeout_secs`, or the container's
    /// own stop timeout when `None`); succeeds if it is not running.
    pub async fn stop_container(&self, name: &str, timeout_secs: Option<u32>) -> Result<()> {
        let mut options = StopContainerOptionsBuilder::default();
        if let Some(t) = timeout_secs {
            options = options.t(i32::try_from(t).unwrap_or(i32::MAX));
        }
        self.count("container_stop");
        match self.client.stop_container(name, Some(options.build())).await {
            Err(e) => match Error::from(e) {
                Error::NotModified => Ok(()),
                e => Err(e),
            },
            Ok(()) => Ok(()),
        }
    }

    /// Sends `signal` (e.g. `SIGKILL`) to a running container; [`Error::Conflict`] if
    /// it is not running.
    pub async fn kill_container(&self, name: &str, signal: &str) -> Result<()> {
        let options = KillContainerOptionsBuilder::default().signal(signal).build();
        self.count("container_kill");
        Ok(self.client.kill_container(name, Some(options)).await?)
    }

    /// Removes a container, running or not, keeping its volumes.
    /// [`Error::NotFound`] if there is none.
    pub async fn remove_container(&self, name: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        self.count("container_remove");
        Ok(self.client.remove_container(name, Some(options)).await?)
    }

    /// The container's current state.
    pub async fn inspect_container(&self, name: &str) -> Result<ContainerState> {
        self.count("container_inspect");
        let c = self.client.inspect_container(name, None).await?;
        let state = c.state.unwrap_or_default();
        let config = c.config.unwrap_or_default();
        let status = state.status.map(status_word).unwrap_or_default().to_string();
        let health = state.health.and_then(|h| h.status).and_then(|s| match s {
            HealthStatusEnum::STARTING => Some(Health::Starting),
            HealthStatusEnum::HEALTHY => Some(Health::Healthy),
            HealthStatusEnum::UNHEALTHY => Some(Health::Unhealthy),
            _ => None,
        });
        let networks = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
        let aliases = networks
            .iter()
            .map(|(net, ep)| (net.clone(), ep.aliases.clone().unwrap_or_default()))
            .collect();
        let ips = networks
            .into_iter()
            .filter_map(|(net, ep)| {
                let ip = ep.ip_address.filter(|ip| !ip.is_empty())?;
                Some((net, ip.parse().ok()?))
            })
            .collect();
        let running = state.running.unwrap_or(false);
        Ok(ContainerState {
            id: c.id.unwrap_or_default(),
            name: c.name.unwrap_or_default().trim_start_matches('/').to_string(),
            labels: labels::from_docker(config.labels),
            image: config.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            status,
            running,
            // Docker reports 0 for containers that never ran; only exited ones have one.
            exit_code: if running || state.finished_at.as_deref().is_none_or(never_happened) {
                None
            } else {
                state.exit_code
            },
            health,
            restart_count: c.restart_count.unwrap_or(0),
            started_at: state.started_at.filter(|s| !never_happened(s)),
            finished_at: state.finished_at.filter(|s| !never_happened(s)),
            ips,
            aliases,
        })
    }

    /// All containers, running or not, carrying every label in `labels`.
    pub async fn list_containers(&self, labels: &Labels) -> Result<Vec<ContainerSummary>> {
        let filters = HashMap::from([("label".to_string(), labels::label_filters(labels))]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.count("container_list");
        let list = self.client.list_containers(Some(options)).await?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
                labels: labels::from_docker(c.labels),
                status: c.state.map(|s| s.to_string()).unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
            })
            .collect())
    }
}

fn status_word(status: ContainerStateStatusEnum) -> &'static str {
    match status {
        ContainerStateStatusEnum::CREATED => "created",
        ContainerStateStatusEnum::RUNNING => "running",
        ContainerStateStatusEnum::PAUSED => "paused",
        ContainerStateStatusEnum::RESTARTING => "restarting",
        ContainerStateStatusEnum::REMOVING => "removing",
        ContainerStateStatusEnum::EXITED => "exited",
        ContainerStateStatusEnum::DEAD => "dead",
        ContainerStateStatusEnum::STOPPING => "stopping",
        _ => "",
    }
}

/// Docker's "zero time" for events that never happened.
fn never_happened(timestamp: &str) -> bool {
    timestamp.starts_with("0001-01-01")
}
