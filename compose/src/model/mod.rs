//! The typed compose file: what berth reads of each compose service, after interpolation.
//!
//! [`ComposeFile::from_value`] turns an interpolated YAML tree (see [`crate::yaml`] and
//! [`crate::interpolate`]) into these types. Keys berth cannot honour are refused with a
//! [`Refusal`] naming the compose service and key; keys it accepts without acting on them
//! are reported as [`Notice`]s. Nothing is dropped silently.
//!
//! # Guarantees
//! - Every key of a compose service is either mapped to a field here, refused, or noticed.
//! - Services keep the file's order.
//!
//! # Caveats
//! - Values are taken as they are after interpolation; `content:` of a volume is never
//!   interpolated (Coolify writes it verbatim).

use std::collections::BTreeMap;

mod meta;

/// A whole compose file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComposeFile {
    /// The compose services, in file order.
    pub services: Vec<ComposeService>,
    /// Top-level `volumes:` entries by key.
    pub volumes: BTreeMap<String, TopVolume>,
    /// Coolify's header comments (`# slogan: ...`).
    pub meta: TemplateMeta,
    /// Keys accepted but not acted on.
    pub notices: Vec<Notice>,
}

/// Coolify's `# key: value` template metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateMeta {
    /// `# documentation:`
    pub documentation: Option<String>,
    /// `# slogan:` (a one-line description).
    pub slogan: Option<String>,
    /// `# category:`
    pub category: Option<String>,
    /// `# tags:`, lower-cased, split on commas.
    pub tags: Vec<String>,
    /// `# logo:`
    pub logo: Option<String>,
    /// `# port:` (the main service's container port).
    pub port: Option<u16>,
    /// `# minversion:`
    pub min_version: Option<String>,
    /// `# ignore: true`
    pub ignore: bool,
}

/// A top-level named volume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopVolume {
    /// `name:`: the exact Docker volume name (no project prefix).
    pub name: Option<String>,
    /// `external: true`: the volume exists already and is never created or deleted.
    pub external: bool,
}

/// One compose service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComposeService {
    /// The service's key under `services:`.
    pub name: String,
    /// `image:`
    pub image: Option<String>,
    /// `build:` (only a Git URL context can be honoured).
    pub build: Option<Build>,
    /// `environment:` (list or map) in file order; `None` for a `KEY`-only entry.
    pub environment: Vec<(String, Option<String>)>,
    /// `volumes:`
    pub volumes: Vec<VolumeMount>,
    /// `healthcheck:`
    pub healthcheck: Option<Healthcheck>,
    /// `depends_on:` (list or map), in file order.
    pub depends_on: Vec<Dependency>,
    /// `entrypoint:` in exec form (a string is split as a shell would).
    pub entrypoint: Option<Vec<String>>,
    /// `command:` in exec form (a string is split as a shell would).
    pub command: Option<Vec<String>>,
    /// `ports:`
    pub ports: Vec<PortMapping>,
    /// `expose:` container ports.
    pub expose: Vec<ExposedPort>,
    /// `restart:`
    pub restart: Option<Restart>,
    /// `labels:` (list or map).
    pub labels: BTreeMap<String, String>,
    /// `user:`
    pub user: Option<String>,
    /// `working_dir:`
    pub working_dir: Option<String>,
    /// `hostname:`
    pub hostname: Option<String>,
    /// `cap_add:`
    pub cap_add: Vec<String>,
    /// `cap_drop:`
    pub cap_drop: Vec<String>,
    /// `ulimits:` (`nofile: 65536` or `{soft, hard}`).
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `sysctls:` (list or map).
    pub sysctls: BTreeMap<String, String>,
    /// `shm_size:` in bytes.
    pub shm_size: Option<u64>,
    /// Memory limit in bytes: `mem_limit` or `deploy.resources.limits.memory`.
    pub mem_limit: Option<u64>,
    /// CPU limit as compose wrote it (`0.5`): `cpus` or `deploy.resources.limits.cpus`.
    pub cpus: Option<String>,
    /// `stop_grace_period:` in seconds.
    pub stop_grace_period_secs: Option<u32>,
    /// `stop_signal:`
    pub stop_signal: Option<String>,
    /// `tty:`
    pub tty: bool,
    /// `stdin_open:`
    pub stdin_open: bool,
    /// Coolify's `exclude_from_hc: true`: the service does not hold the stack's readiness.
    pub exclude_from_hc: bool,
    /// Network aliases from `networks: {x: {aliases: [...]}}`.
    pub aliases: Vec<String>,
}

/// `build:` of a compose service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Build {
    /// `context` (or the string form).
    pub context: String,
    /// `dockerfile`
    pub dockerfile: Option<String>,
    /// `args` (list or map).
    pub args: BTreeMap<String, String>,
    /// `target`
    pub target: Option<String>,
}

/// One entry of a service's `volumes:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// What is mounted.
    pub source: MountSource,
    /// The path in the container.
    pub target: String,
    /// `:ro` or `read_only: true`.
    pub read_only: bool,
}

/// The source of a [`VolumeMount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A named volume (the key under top-level `volumes:`, declared there or not).
    Named(String),
    /// A host path as written (`./data`, `/srv/x`, `~/x`).
    Bind {
        /// The path as written.
        path: String,
        /// Coolify's `content:` (a file seeded once), verbatim.
        content: Option<String>,
        /// Coolify's `is_directory` / `isDirectory`; `None` when not given.
        is_directory: Option<bool>,
    },
    /// An anonymous volume (container path only).
    Anonymous,
}

/// `healthcheck:` of a compose service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `test:`; `None` with `disable: true` or `test: ["NONE"]`.
    pub test: Option<HealthTest>,
    /// `interval` in seconds.
    pub interval_secs: Option<u32>,
    /// `timeout` in seconds.
    pub timeout_secs: Option<u32>,
    /// `retries`
    pub retries: Option<u32>,
    /// `start_period` in seconds.
    pub start_period_secs: Option<u32>,
}

/// The probe of a [`Healthcheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTest {
    /// `["CMD", argv...]`
    Exec(Vec<String>),
    /// `["CMD-SHELL", "script"]` or a plain string.
    Shell(String),
}

/// One `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The compose service depended on.
    pub service: String,
    /// When it counts as satisfied.
    pub condition: DependencyCondition,
}

/// `depends_on.<svc>.condition`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DependencyCondition {
    /// `service_started` (and the list form).
    #[default]
    Started,
    /// `service_healthy`
    Healthy,
    /// `service_completed_successfully`
    CompletedSuccessfully,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// One `ports:` entry (a range is expanded into one entry per port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMapping {
    /// Host address to publish on.
    pub host_ip: Option<String>,
    /// Host port; `None` when only the container port is given.
    pub host_port: Option<u16>,
    /// Container port.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// One `expose:` entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExposedPort {
    /// Container port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// `restart:`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// `no`
    No,
    /// `always`
    Always,
    /// `unless-stopped`
    UnlessStopped,
    /// `on-failure[:N]`
    OnFailure,
}

/// One `ulimits:` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// Something in the file berth will not run, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("services.{service}.{key}: {reason}")]
pub struct Refusal {
    /// The compose service (empty for top-level keys).
    pub service: String,
    /// The key path inside it, e.g. `network_mode` or `volumes[2]`.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// A key accepted without being acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The compose service (empty for top-level keys).
    pub service: String,
    /// The key.
    pub key: String,
    /// What berth does instead.
    pub message: String,
}
