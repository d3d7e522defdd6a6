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
//! - [`ComposeFile::from_value`] leaves [`ComposeFile::meta`] default: the header comments
//!   are not in the tree, the caller reads them from the text.
//! - Top-level keys: `services` (required, a mapping; a service body must be a mapping),
//!   `volumes` read, `networks` / `version` / `name` noticed (all members share one
//!   network; berth names the project), `secrets` / `configs` / `include` refused, `x-*`
//!   ignored, anything else refused as unknown.
//! - A service key's decision (mapped, refused, noticed) is listed in the `service`
//!   submodule's docs; scalars, ports, volumes and command splitting each have their own
//!   submodule with their rules.
//! - A compose service named in `depends_on` but not defined is refused
//!   (`depends_on.<name>`), as compose does.

use std::collections::BTreeMap;

mod meta;
mod ports;
mod scalar;
mod service;
mod shell;
mod volumes;

pub use service::NOTICED;

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
    /// berth's `# param: NAME: description` lines, in file order.
    pub params: Vec<TemplateParam>,
}

/// One `# param: NAME: description` line: a variable the user may set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateParam {
    /// The variable's name (`WORDPRESS_VERSION`).
    pub name: String,
    /// What it sets.
    pub description: String,
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
#[error("{}: {reason}", place(.service, .key))]
pub struct Refusal {
    /// The compose service (empty for top-level keys).
    pub service: String,
    /// The key path inside it, e.g. `network_mode` or `volumes[2]`.
    pub key: String,
    /// Why.
    pub reason: String,
}

/// `services.<service>.<key>`, `services.<service>` for the service itself, or `<key>` for a
/// top-level key.
fn place(service: &str, key: &str) -> String {
    if service.is_empty() {
        key.to_owned()
    } else if key.is_empty() {
        format!("services.{service}")
    } else {
        format!("services.{service}.{key}")
    }
}

impl ComposeFile {
    /// Reads an interpolated compose tree (see [`crate::yaml::load`] and
    /// [`crate::interpolate::apply`]); every refusal in the file is returned, not just the
    /// first.
    pub fn from_value(v: &serde_yaml::Value) -> Result<ComposeFile, Vec<Refusal>> {
        use serde_yaml::Value;
        let mut file = ComposeFile::default();
        let mut refusals = Vec::new();
        let top = |key: &str, reason: String| Refusal {
            service: String::new(),
            key: key.to_owned(),
            reason,
        };
        let Value::Mapping(map) = v else {
            return Err(vec![top(
                "",
                format!("a compose file is a mapping, found {}", crate::yaml::kind(v)),
            )]);
        };
        if !map.contains_key("services") {
            refusals.push(top("services", "the file has no `services:`".to_owned()));
        }
        for (k, val) in map {
            let key = k.as_str().unwrap_or_default();
            match key {
                "services" => {
                    let Value::Mapping(services) = val else {
                        refusals.push(top(
                            "services",
                            format!("expected a mapping, found {}", crate::yaml::kind(val)),
                        ));
                        continue;
                    };
                    for (name, body) in services {
                        let name = scalar::string(name).unwrap_or_default();
                        match body {
                            Value::Mapping(body) => file.services.push(service::service(
                                &name,
                                body,
                                &mut refusals,
                                &mut file.notices,
                            )),
                            other => refusals.push(Refusal {
                                service: name,
                                key: String::new(),
                                reason: format!("a service is a mapping, found {}", crate::yaml::kind(other)),
                            }),
                        }
                    }
                }
                "volumes" => match val {
                    Value::Mapping(vols) => {
                        for (name, body) in vols {
                            let name = scalar::string(name).unwrap_or_default();
                            let path = format!("volumes.{name}");
                            match volumes::top(body) {
                                Ok((vol, noticed)) => {
                                    for n in noticed {
                                        file.notices.push(Notice {
                                            service: String::new(),
                                            key: format!("{path}.{n}"),
                                            message: "not applied".to_owned(),
                                        });
                                    }
                                    file.volumes.insert(name, vol);
                                }
                                Err(reason) => refusals.push(top(&path, reason)),
                            }
                        }
                    }
                    Value::Null => {}
                    other => refusals.push(top(
                        "volumes",
                        format!("expected a mapping, found {}", crate::yaml::kind(other)),
                    )),
                },
                "networks" | "version" | "name" => file.notices.push(Notice {
                    service: String::new(),
                    key: key.to_owned(),
                    message: match key {
                        "networks" => "all members share the Service's one network",
                        "version" => "obsolete; ignored",
                        _ => "berth names the project after the Service",
                    }
                    .to_owned(),
                }),
                "secrets" => refusals.push(top(
                    key,
                    "compose secrets are not supported: use environment variables from a Secret".to_owned(),
                )),
                "configs" => refusals.push(top(
                    key,
                    "compose configs are not supported: use a bind with `content:`".to_owned(),
                )),
                "include" => refusals.push(top(
                    key,
                    "`include` is not supported: inline the included file".to_owned(),
                )),
                k if k.starts_with("x-") => {}
                other => refusals.push(top(other, format!("unknown top-level key {other:?}"))),
            }
        }
        let names: Vec<&str> = file.services.iter().map(|s| s.name.as_str()).collect();
        for s in &file.services {
            for d in &s.depends_on {
                if !names.contains(&d.service.as_str()) {
                    refusals.push(Refusal {
                        service: s.name.clone(),
                        key: format!("depends_on.{}", d.service),
                        reason: format!("no compose service named {:?}", d.service),
                    });
                }
            }
        }
        if refusals.is_empty() {
            Ok(file)
        } else {
            Err(refusals)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<ComposeFile, Vec<Refusal>> {
        ComposeFile::from_value(&crate::yaml::load(text).unwrap())
    }

    #[test]
    fn reads_a_file() {
        let f = read(
            "version: '3'\nx-env: &env [A=1, B]\nservices:\n  web:\n    image: w\n    environment:\n      <<: *env\n      C: 3\n    depends_on: [db]\n  db:\n    image: d\n    networks: [back]\nvolumes:\n  data:\n  ext: {external: true, name: real}\nnetworks:\n  back:\n",
        )
        .unwrap();
        let names: Vec<&str> = f.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web", "db"]);
        let env: Vec<&str> = f.services[0]
            .environment
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(env, ["A", "B", "C"]);
        assert_eq!(f.volumes["data"], TopVolume::default());
        assert!(f.volumes["ext"].external);
        let noticed: Vec<(&str, &str)> = f
            .notices
            .iter()
            .map(|n| (n.service.as_str(), n.key.as_str()))
            .collect();
        assert_eq!(
            noticed,
            [("", "version"), ("db", "networks.back"), ("", "networks")]
        );
        assert_eq!(f.meta, TemplateMeta::default());
    }

    #[test]
    fn collects_every_refusal() {
        let errs = read(
            "secrets: {s: {file: x}}\nbogus: 1\nservices:\n  a:\n    image: x\n    privileged: true\n    depends_on: [nope]\n  b:\n    network_mode: host\n    env_file: .env\n  c: null\n",
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "secrets: compose secrets are not supported: use environment variables from a Secret",
                "bogus: unknown top-level key \"bogus\"",
                "services.a.privileged: privileged containers are not allowed",
                "services.b.network_mode: network_mode \"host\" is not supported: every member joins the Service's own network",
                "services.b.env_file: env files are not read: put the variables in `environment:` or the Service's variables",
                "services.c: a service is a mapping, found null",
                "services.a.depends_on.nope: no compose service named \"nope\"",
            ]
        );
        assert!(read("volumes: {}\n").is_err());
    }
}
