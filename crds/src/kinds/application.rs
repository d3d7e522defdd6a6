//! `Application`: one containerized workload built from an image or a Git repository,
//! with ports, domains, health check, volumes and resource limits.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::application_container::is_false;
pub use super::application_container::{FileMount, RESERVED_LABEL_PREFIX, Ulimit, shm_size_bytes};
pub use super::application_status::{
    AppCondition, AppContainer, AppReason, ApplicationPhase, ApplicationStatus, BuildPhase, BuildStatus,
};
use super::common::{SecretKeyRef, exactly_one, non_empty};
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A deployed application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Where the code comes from: exactly one of `image` or `git`.
    pub source: AppSource,
    /// The Destination (server + network) to run on.
    pub destination: String,
    /// Overrides the image's entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Overrides the image's command (arguments to the entrypoint).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Ports the container listens on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Domains routed to the application through the server's Proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<Domain>,
    /// How Docker decides the container is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Volumes mounted into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// CPU and memory limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceLimits>,
    /// Number of containers; 0 stops the application without deleting it.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Docker's restart policy.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// Whether named volumes are deleted with the application (external ones never are).
    #[serde(default)]
    pub delete_volumes: bool,
    /// Files seeded once on the server (under `--host-root`) and bind-mounted as files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileMount>,
    /// The user (and group) the process runs as, e.g. `1000:1000` or `www-data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The working directory of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The container's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Linux capabilities added, e.g. `NET_ADMIN`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Linux capabilities dropped, e.g. `ALL`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Resource limits by name (`nofile`, `nproc`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Namespaced kernel parameters, e.g. `net.core.somaxconn: "1024"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// Size of `/dev/shm`, e.g. `64Mi` or `1g`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// The signal that stops the container (Docker's default: `SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    /// Whether the container gets a pseudo-terminal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Whether the container's stdin stays open.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// Extra container labels; keys under `dev.berth.` are berth's and refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra DNS names on the destination network, given (like `<name>.<namespace>`) only
    /// to ready containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
}

fn default_replicas() -> u32 {
    1
}

/// The application's code: exactly one of `image` or `git`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSource {
    /// A prebuilt image, e.g. `ghcr.io/org/app:1.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A Git repository built with its Dockerfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitBuild>,
}

/// A Docker build from a Git repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitBuild {
    /// The repository URL (`https://`, `ssh://`, `git@host:path`, `file://`).
    pub url: String,
    /// Branch, tag or commit; the remote's default branch when absent.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// The build context inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The Dockerfile, relative to the build context.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// Docker build arguments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    /// The Source (provider account) used to fetch a private repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
}

fn default_dockerfile() -> String {
    "Dockerfile".to_string()
}

/// An environment variable: exactly one of `value` or `secretKeyRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// A literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A value taken from a Secret in the same Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// A container port, optionally published on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    /// The port inside the container.
    #[schemars(range(min = 1))]
    pub container_port: u16,
    /// The protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// Publishes the port on the host (bypassing the proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub host_port: Option<u16>,
}

/// Whether a domain redirects between its `www.` and apex forms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WwwRedirect {
    /// No redirect.
    #[default]
    None,
    /// Redirect the apex to `www.<host>`.
    Www,
    /// Redirect `www.<host>` to the apex.
    Apex,
}

/// A domain routed to the application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Domain {
    /// The fully qualified host name, e.g. `app.example.com`.
    pub host: String,
    /// Only requests under this path prefix are routed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Whether `path` is stripped before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// The container port to route to; the first TCP port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Whether HTTPS is served (with an ACME certificate) and HTTP redirected to it.
    #[serde(default = "default_true")]
    pub https: bool,
    /// Whether responses are gzip-compressed.
    #[serde(default)]
    pub gzip: bool,
    /// A Secret key holding htpasswd lines that protect the domain with basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_secret_ref: Option<SecretKeyRef>,
    /// Redirect between `www.` and apex.
    #[serde(default)]
    pub redirect: WwwRedirect,
}

fn default_true() -> bool {
    true
}

/// A container health check: exactly one of `http`, `command` or `shell`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// An HTTP GET probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbe>,
    /// A command run inside the container; exit code 0 means healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// A command line run by the container's `/bin/sh -c` (Docker's `CMD-SHELL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Time between probes.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Time after which a probe fails.
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Consecutive failures before the container is unhealthy.
    #[serde(default = "default_retries")]
    #[schemars(range(min = 1))]
    pub retries: u32,
    /// Grace period after start during which failures do not count.
    #[serde(default = "default_start_period")]
    pub start_period: String,
}

fn default_interval() -> String {
    "10s".to_string()
}
fn default_timeout() -> String {
    "5s".to_string()
}
fn default_retries() -> u32 {
    3
}
fn default_start_period() -> String {
    "0s".to_string()
}

/// An HTTP health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProbe {
    /// The request path.
    #[serde(default = "default_probe_path")]
    pub path: String,
    /// The container port.
    #[schemars(range(min = 1))]
    pub port: u16,
    /// The status code expected; any 2xx or 3xx when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub expected_status: Option<u16>,
}

fn default_probe_path() -> String {
    "/".to_string()
}

/// A volume mount: exactly one of `name` (a Docker named volume) or `hostPath`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Volume {
    /// A named volume, created if missing (unless `external`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A directory on the server (bind mount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// Where it is mounted in the container.
    pub mount_path: String,
    /// Whether the mount is read-only.
    #[serde(default)]
    pub read_only: bool,
    /// A named volume created elsewhere: berth never creates nor deletes it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
}

/// CPU and memory limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceLimits {
    /// CPU limit, e.g. `0.5`, `2` or `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    /// Memory limit, e.g. `512Mi`, `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Docker's container restart policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Always restart.
    Always,
    /// Restart after a non-zero exit.
    OnFailure,
    /// Restart unless stopped by hand.
    #[default]
    UnlessStopped,
    /// Never restart.
    No,
}

impl Resource for ApplicationSpec {
    type Status = ApplicationStatus;
    const KIND: &'static str = "Application";
    const PLURAL: &'static str = "applications";
    const SINGULAR: &'static str = "application";
    const SHORT_NAMES: &'static [&'static str] = &["app", "apps"];
    const NAMESPACED: bool = true;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Replicas",
            type_: "integer",
            json_path: ".spec.replicas",
            description: "desired containers",
        },
        PrinterColumn {
            name: "Available",
            type_: "integer",
            json_path: ".status.readyReplicas",
            description: "healthy containers",
        },
        READY_COLUMN,
        PrinterColumn {
            name: "URL",
            type_: "string",
            json_path: ".status.urls[0]",
            description: "the first URL served",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        self.validate_source(errors);
        check(
            errors,
            "spec.destination",
            rules::dns1123_label(&self.destination),
        );
        EnvVar::validate_list(&self.env, errors);
        self.validate_ports(errors);
        self.validate_domains(errors);
        if let Some(hc) = &self.health_check {
            hc.validate("spec.healthCheck", errors);
        }
        self.validate_mounts(errors);
        if let Some(r) = &self.resources {
            r.validate("spec.resources", errors);
        }
        self.validate_container(errors);
    }
}

impl ResourceLimits {
    /// Checks the limits, naming fields under `base` (e.g. `spec.resources`).
    pub fn validate(&self, base: &str, errors: &mut Vec<FieldError>) {
        if let Some(c) = &self.cpus {
            check(errors, format!("{base}.cpus"), rules::cpus(c));
        }
        if let Some(m) = &self.memory {
            check(errors, format!("{base}.memory"), rules::quantity(m));
        }
    }
}

impl EnvVar {
    /// Checks a list of variables (names, duplicates, exactly one source), naming fields
    /// `spec.env[i]`.
    pub fn validate_list(env: &[EnvVar], errors: &mut Vec<FieldError>) {
        for (i, var) in env.iter().enumerate() {
            let base = format!("spec.env[{i}]");
            check(errors, format!("{base}.name"), rules::env_var_name(&var.name));
            if env[..i].iter().any(|o| o.name == var.name) {
                errors.push(FieldError::duplicate(
                    format!("{base}.name"),
                    format!("{:?} is set twice", var.name),
                ));
            }
            exactly_one(
                &base,
                &[
                    ("value", var.value.is_some()),
                    ("secretKeyRef", var.secret_key_ref.is_some()),
                ],
                errors,
            );
            if let Some(r) = &var.secret_key_ref {
                r.validate(&format!("{base}.secretKeyRef"), errors);
            }
        }
    }
}

impl ApplicationSpec {
    fn validate_source(&self, errors: &mut Vec<FieldError>) {
        let s = &self.source;
        exactly_one(
            "spec.source",
            &[("image", s.image.is_some()), ("git", s.git.is_some())],
            errors,
        );
        if let Some(image) = &s.image {
            check(errors, "spec.source.image", rules::image_reference(image));
        }
        if let Some(git) = &s.git {
            check(errors, "spec.source.git.url", rules::git_url(&git.url));
            if let Some(r) = &git.ref_ {
                non_empty("spec.source.git.ref", r, errors);
            }
            if let Some(p) = &git.path
                && (p.starts_with('/') || p.split('/').any(|seg| seg == ".."))
            {
                errors.push(FieldError::invalid(
                    "spec.source.git.path",
                    "must be a relative path inside the repository",
                ));
            }
            if git.dockerfile.is_empty() || git.dockerfile.split('/').any(|seg| seg == "..") {
                errors.push(FieldError::invalid(
                    "spec.source.git.dockerfile",
                    "must be a relative path inside the build context",
                ));
            }
            if let Some(src) = &git.source_ref {
                check(errors, "spec.source.git.sourceRef", rules::dns1123_label(src));
            }
        }
    }

    fn validate_ports(&self, errors: &mut Vec<FieldError>) {
        for (i, p) in self.ports.iter().enumerate() {
            let earlier = &self.ports[..i];
            if earlier
                .iter()
                .any(|o| o.container_port == p.container_port && o.protocol == p.protocol)
            {
                errors.push(FieldError::duplicate(
                    format!("spec.ports[{i}].containerPort"),
                    format!("port {} is listed twice", p.container_port),
                ));
            }
            if let Some(h) = p.host_port
                && earlier
                    .iter()
                    .any(|o| o.host_port == Some(h) && o.protocol == p.protocol)
            {
                errors.push(FieldError::duplicate(
                    format!("spec.ports[{i}].hostPort"),
                    format!("host port {h} is used twice"),
                ));
            }
        }
    }

    fn validate_domains(&self, errors: &mut Vec<FieldError>) {
        for (i, d) in self.domains.iter().enumerate() {
            let base = format!("spec.domains[{i}]");
            check(errors, format!("{base}.host"), rules::hostname(&d.host));
            if let Some(p) = &d.path {
                check(errors, format!("{base}.path"), rules::path_prefix(p));
            }
            if d.strip_prefix && d.path.is_none() {
                errors.push(FieldError::required(
                    format!("{base}.path"),
                    "stripPrefix needs a path",
                ));
            }
            if let Some(port) = d.port
                && !self
                    .ports
                    .iter()
                    .any(|p| p.container_port == port && p.protocol == Protocol::Tcp)
            {
                errors.push(FieldError::invalid(
                    format!("{base}.port"),
                    format!("{port} is not a TCP port in spec.ports"),
                ));
            }
            if d.port.is_none() && !self.ports.iter().any(|p| p.protocol == Protocol::Tcp) {
                errors.push(FieldError::required(
                    format!("{base}.port"),
                    "no TCP port in spec.ports to route to",
                ));
            }
            if self.domains[..i]
                .iter()
                .any(|o| o.host == d.host && o.path == d.path)
            {
                errors.push(FieldError::duplicate(
                    format!("{base}.host"),
                    format!("{} is routed twice", d.host),
                ));
            }
            if d.redirect == WwwRedirect::Apex && !d.host.starts_with("www.") {
                errors.push(FieldError::invalid(
                    format!("{base}.redirect"),
                    "apex redirect needs a www. host",
                ));
            }
            if let Some(r) = &d.basic_auth_secret_ref {
                r.validate(&format!("{base}.basicAuthSecretRef"), errors);
            }
        }
    }
}

impl HealthCheck {
    fn validate(&self, base: &str, errors: &mut Vec<FieldError>) {
        exactly_one(
            base,
            &[
                ("http", self.http.is_some()),
                ("command", !self.command.is_empty()),
                ("shell", self.shell.is_some()),
            ],
            errors,
        );
        if let Some(shell) = &self.shell {
            non_empty(&format!("{base}.shell"), shell, errors);
        }
        if let Some(http) = &self.http {
            check(
                errors,
                format!("{base}.http.path"),
                rules::path_prefix(&http.path),
            );
        }
        for (field, value) in [
            ("interval", &self.interval),
            ("timeout", &self.timeout),
            ("startPeriod", &self.start_period),
        ] {
            check(errors, format!("{base}.{field}"), rules::duration(value));
        }
    }
}
