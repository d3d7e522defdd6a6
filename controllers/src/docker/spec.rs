//! What a container should be: [`ContainerSpec`], its deterministic hash, and its
//! translation into Docker's create body.
//!
//! # Guarantees
//! - [`ContainerSpec::config_hash`] depends only on the spec's content (maps are
//!   ordered), not on the process, the run or the machine; it ignores the
//!   `dev.berth.config-hash` label itself.
//!
//! # Caveats
//! - The hash covers the serialized field names: renaming a field changes every
//!   hash, so reconcilers would recreate every container once.
//! - An HTTP health check runs `wget`, else `curl`, through `/bin/sh` inside the
//!   container, so the image needs a shell and one of them.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount as DockerMount, MountType,
    NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy as DockerRestartPolicy,
    RestartPolicyNameEnum,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};
use super::labels::{self, Labels};

/// A container as berth wants it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container name, unique on the daemon.
    pub name: String,
    /// Image reference (tag or digest).
    pub image: String,
    /// Replaces the image's entrypoint when not empty (Kubernetes' `command`).
    pub command: Vec<String>,
    /// Replaces the image's `CMD` when not empty (Kubernetes' `args`).
    pub args: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Labels; container creation adds `dev.berth.config-hash`.
    pub labels: Labels,
    /// Network to attach at creation, with DNS aliases.
    pub network: Option<NetworkAttachment>,
    /// Exposed ports, published when `host_port` is set.
    pub ports: Vec<PortSpec>,
    /// Named volumes and bind mounts.
    pub mounts: Vec<MountSpec>,
    /// CPU limit in thousandths of a CPU (`500` = half a CPU).
    pub cpu_millis: Option<u64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
    /// What Docker does when the container exits.
    pub restart_policy: RestartPolicy,
    /// Docker HEALTHCHECK.
    pub health_check: Option<HealthCheck>,
    /// Seconds between SIGTERM and SIGKILL on stop (Docker's default is 10).
    pub stop_timeout_secs: Option<u32>,
    // The settings below are left out of the hash's JSON while unset, so that adding them
    // changed no existing container's hash.
    /// The user (and group) the process runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The process's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The container's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Linux capabilities added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Linux capabilities dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// Resource limits by name (`nofile`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Namespaced kernel parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// Size of `/dev/shm` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size_bytes: Option<u64>,
    /// The signal that stops the container (Docker's default: `SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Whether the container gets a pseudo-terminal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Whether the container's stdin stays open.
    #[serde(default, skip_serializing_if = "is_false")]
    pub open_stdin: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A soft and a hard limit of one resource; `-1` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

/// A network to attach to, with the DNS aliases the container answers to there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// Network name.
    pub name: String,
    /// DNS aliases on that network.
    pub aliases: Vec<String>,
    /// Further aliases given at creation that are not part of the container's config (nor of
    /// its hash): a caller that manages them itself, after creation, may also set them early.
    #[serde(skip)]
    pub unhashed_aliases: Vec<String>,
    /// Aliases the caller gives the container itself once it is ready, never at creation:
    /// part of the config (and hash), so changing them replaces the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready_aliases: Vec<String>,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// An exposed container port, optionally published on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Host port to publish on; `Some(0)` lets Docker choose.
    pub host_port: Option<u16>,
    /// Host address to publish on (Docker's default: all addresses).
    pub host_ip: Option<String>,
}

/// A mount into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountSpec {
    /// A named Docker volume.
    Volume {
        /// Volume name.
        name: String,
        /// Path inside the container.
        target: String,
        /// Mount read-only.
        read_only: bool,
        /// Created (and deleted) elsewhere: the caller must not create it.
        #[serde(default, skip_serializing_if = "is_false")]
        external: bool,
    },
    /// A host path.
    Bind {
        /// Absolute host path.
        source: String,
        /// Path inside the container.
        target: String,
        /// Mount read-only.
        read_only: bool,
    },
}

/// Docker's restart policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (berth's controllers restart instead).
    #[default]
    No,
    /// Always restart.
    Always,
    /// Restart unless stopped by the user.
    UnlessStopped,
    /// Restart on non-zero exit, at most `max_retries` times (0 = unlimited).
    OnFailure {
        /// Retry limit.
        max_retries: u32,
    },
}

/// A Docker HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// What is probed.
    pub probe: Probe,
    /// Seconds between probes.
    pub interval_secs: u32,
    /// Seconds before a probe counts as failed.
    pub timeout_secs: u32,
    /// Consecutive failures before the container is unhealthy.
    pub retries: u32,
    /// Seconds after start during which failures do not count.
    pub start_period_secs: u32,
}

/// The probe of a health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// `GET http://127.0.0.1:<port><path>` from inside the container must succeed.
    Http {
        /// Port inside the container.
        port: u16,
        /// Path, starting with `/`.
        path: String,
    },
    /// A command run inside the container (exec form) must exit 0.
    Command(Vec<String>),
    /// A command line run by the container's `/bin/sh -c` must exit 0.
    Shell(String),
}

impl ContainerSpec {
    /// Hex SHA-256 of the spec's canonical JSON, without the config-hash label.
    pub fn config_hash(&self) -> String {
        let mut canonical = self.clone();
        canonical.labels.remove(labels::CONFIG_HASH);
        // Serializing plain data with ordered maps cannot fail; fall back to Debug
        // (also deterministic) rather than panic.
        let bytes = serde_json::to_vec(&canonical).unwrap_or_else(|_| format!("{canonical:?}").into_bytes());
        hex(&Sha256::digest(&bytes))
    }

    /// Docker's create body, with the config-hash label added.
    pub(super) fn to_create_body(&self) -> Result<ContainerCreateBody> {
        let mut labels: HashMap<String, String> = self.labels.clone().into_iter().collect();
        labels.insert(labels::CONFIG_HASH.to_string(), self.config_hash());

        let mut exposed = Vec::new();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for (i, port) in self.ports.iter().enumerate() {
            let key = format!("{}/{}", port.container_port, protocol_name(port.protocol));
            exposed.push(key.clone());
            if let Some(host_port) = port.host_port {
                if let Some(ip) = &port.host_ip {
                    ip.parse::<std::net::IpAddr>().map_err(|e| Error::Invalid {
                        field: format!("ports[{i}].hostIp"),
                        message: e.to_string(),
                    })?;
                }
                bindings
                    .entry(key)
                    .or_default()
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding {
                        host_ip: port.host_ip.clone(),
                        host_port: Some(host_port.to_string()),
                    });
            }
        }

        let mounts = self
            .mounts
            .iter()
            .map(|m| match m {
                MountSpec::Volume {
                    name,
                    target,
                    read_only,
                    ..
                } => DockerMount {
                    typ: Some(MountType::VOLUME),
                    source: Some(name.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
                MountSpec::Bind {
                    source,
                    target,
                    read_only,
                } => DockerMount {
                    typ: Some(MountType::BIND),
                    source: Some(source.clone()),
                    target: Some(target.clone()),
                    read_only: Some(*read_only),
                    ..Default::default()
                },
            })
            .collect::<Vec<_>>();

        let restart_policy = match self.restart_policy {
            RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
            RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
            RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
            RestartPolicy::OnFailure { max_retries } => {
                (RestartPolicyNameEnum::ON_FAILURE, Some(i64::from(max_retries)))
            }
        };

        let host_config = HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            mounts: (!mounts.is_empty()).then_some(mounts),
            nano_cpus: self
                .cpu_millis
                .map(|m| i64::try_from(m.saturating_mul(1_000_000)).unwrap_or(i64::MAX)),
            memory: self.memory_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
            restart_policy: Some(DockerRestartPolicy {
                name: Some(restart_policy.0),
                maximum_retry_count: restart_policy.1,
            }),
            network_mode: self.network.as_ref().map(|n| n.name.clone()),
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            cap_drop: (!self.cap_drop.is_empty()).then(|| self.cap_drop.clone()),
            ulimits: (!self.ulimits.is_empty()).then(|| {
                self.ulimits
                    .iter()
                    .map(|(name, u)| ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(u.soft),
                        hard: Some(u.hard),
                    })
                    .collect()
            }),
            sysctls: (!self.sysctls.is_empty()).then(|| self.sysctls.clone().into_iter().collect()),
            shm_size: self.shm_size_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
            ..Default::default()
        };

        let networking_config = self.network.as_ref().map(|n| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                n.name.clone(),
                EndpointSettings {
                    aliases: (!n.aliases.is_empty() || !n.unhashed_aliases.is_empty())
                        .then(|| n.aliases.iter().chain(&n.unhashed_aliases).cloned().collect()),
                    ..Default::default()
                },
            )])),
        });

        Ok(ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint: (!self.command.is_empty()).then(|| self.command.clone()),
            cmd: (!self.args.is_empty()).then(|| self.args.clone()),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck: self.health_check.as_ref().map(health_config),
            stop_timeout: self.stop_timeout_secs.map(i64::from),
            host_config: Some(host_config),
            networking_config,
            user: self.user.clone(),
            working_dir: self.working_dir.clone(),
            hostname: self.hostname.clone(),
            stop_signal: self.stop_signal.clone(),
            tty: self.tty.then_some(true),
            open_stdin: self.open_stdin.then_some(true),
            ..Default::default()
        })
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

fn health_config(check: &HealthCheck) -> HealthConfig {
    let test = match &check.probe {
        Probe::Command(argv) => std::iter::once("CMD".to_string())
            .chain(argv.iter().cloned())
            .collect(),
        Probe::Shell(line) => vec!["CMD-SHELL".to_string(), line.clone()],
        Probe::Http { port, path } => {
            // No client-side timeout flags: Docker enforces `timeout` on the probe,
            // and busybox's `wget -T` crashes in Debian's static build.
            let url = format!("http://127.0.0.1:{port}{path}");
            vec![
                "CMD-SHELL".to_string(),
                format!("wget -q -O /dev/null '{url}' || curl -fsS -o /dev/null '{url}'"),
            ]
        }
    };
    HealthConfig {
        test: Some(test),
        interval: Some(i64::from(check.interval_secs) * NANOS_PER_SEC),
        timeout: Some(i64::from(check.timeout_secs) * NANOS_PER_SEC),
        retries: Some(i64::from(check.retries)),
        start_period: Some(i64::from(check.start_period_secs) * NANOS_PER_SEC),
        start_interval: None,
    }
}

/// Lowercase hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "web-0".into(),
            image: "berth-test/httpd:1".into(),
            env: BTreeMap::from([("B".into(), "2".into()), ("A".into(), "1".into())]),
            ports: vec![PortSpec {
                container_port: 8080,
                host_port: Some(0),
                host_ip: Some("127.0.0.1".into()),
                ..Default::default()
            }],
            health_check: Some(HealthCheck {
                probe: Probe::Http {
                    port: 8080,
                    path: "/".into(),
                },
                interval_secs: 1,
                timeout_secs: 1,
                retries: 3,
                start_period_secs: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn config_hash_is_stable_and_content_sensitive() {
        let a = spec();
        // Pinned: a change here means every deployed container would be recreated.
        assert_eq!(
            a.config_hash(),
            "7cc7820deabce8e3d05f9e1bc2bdb0cdb378edbc5e762ae90e4d22e63f9930ee"
        );
        assert_eq!(a.config_hash(), spec().config_hash());
        let mut b = spec();
        b.env.insert("A".into(), "changed".into());
        assert_ne!(a.config_hash(), b.config_hash());
        let mut c = spec();
        c.labels.insert(labels::CONFIG_HASH.into(), "whatever".into());
        assert_eq!(a.config_hash(), c.config_hash());
    }

    #[test]
    fn create_body_carries_hash_ports_and_health() {
        let body = spec().to_create_body().unwrap();
        let labels = body.labels.unwrap();
        assert_eq!(labels.get(labels::CONFIG_HASH), Some(&spec().config_hash()));
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_string()]));
        let bindings = body.host_config.unwrap().port_bindings.unwrap();
        assert_eq!(
            bindings["8080/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("0")
        );
        assert_eq!(body.healthcheck.unwrap().test.unwrap()[0], "CMD-SHELL");
    }

    #[test]
    fn create_body_carries_the_container_settings() {
        let s = ContainerSpec {
            user: Some("1000:1000".into()),
            working_dir: Some("/srv".into()),
            hostname: Some("web".into()),
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["ALL".into()],
            ulimits: BTreeMap::from([(
                "nofile".into(),
                Ulimit {
                    soft: 1024,
                    hard: 2048,
                },
            )]),
            sysctls: BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]),
            shm_size_bytes: Some(64 << 20),
            stop_signal: Some("SIGQUIT".into()),
            stop_timeout_secs: Some(30),
            tty: true,
            open_stdin: true,
            health_check: Some(HealthCheck {
                probe: Probe::Shell("test -f /ok".into()),
                ..spec().health_check.unwrap()
            }),
            ..spec()
        };
        assert_ne!(s.config_hash(), spec().config_hash());
        let body = s.to_create_body().unwrap();
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(body.working_dir.as_deref(), Some("/srv"));
        assert_eq!(body.hostname.as_deref(), Some("web"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(body.stop_timeout, Some(30));
        assert_eq!((body.tty, body.open_stdin), (Some(true), Some(true)));
        assert_eq!(
            body.healthcheck.unwrap().test.unwrap(),
            vec!["CMD-SHELL".to_string(), "test -f /ok".to_string()]
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        let ulimit = &host.ulimits.unwrap()[0];
        assert_eq!(
            (ulimit.name.as_deref(), ulimit.soft, ulimit.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        assert_eq!(host.sysctls.unwrap()["net.core.somaxconn"], "1024");
        assert_eq!(host.shm_size, Some(64 << 20));

        // Unset, none of it reaches Docker.
        let plain = spec().to_create_body().unwrap();
        assert_eq!((plain.user, plain.tty, plain.open_stdin), (None, None, None));
        let host = plain.host_config.unwrap();
        assert_eq!(
            (host.cap_add, host.ulimits, host.sysctls, host.shm_size),
            (None, None, None, None)
        );
    }

    #[test]
    fn an_external_volume_keeps_the_hash_of_a_plain_one_only_when_unset() {
        let volume = |external| ContainerSpec {
            mounts: vec![MountSpec::Volume {
                name: "data".into(),
                target: "/data".into(),
                read_only: false,
                external,
            }],
            ..spec()
        };
        let json = serde_json::to_string(&volume(false).mounts).unwrap();
        assert!(!json.contains("external"), "{json}");
        assert_ne!(volume(false).config_hash(), volume(true).config_hash());
    }

    #[test]
    fn bad_host_ip_names_the_field() {
        let mut s = spec();
        s.ports[0].host_ip = Some("localhost".into());
        let err = s.to_create_body().unwrap_err();
        assert!(matches!(err, Error::Invalid { field, .. } if field == "ports[0].hostIp"));
    }
}
