//! `Server`: a Docker host berth deploys to, local (socket) or remote (over SSH).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{NamespacedSecretKeyRef, exactly_one, non_empty};
use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A Docker host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerSpec {
    /// The Docker daemon on the machine berth runs on; exclusive with `remote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost: Option<LocalDocker>,
    /// A Docker daemon reached over SSH; exclusive with `localhost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteDocker>,
    /// Housekeeping thresholds.
    #[serde(default)]
    pub automation: ServerAutomation,
}

/// The local Docker daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalDocker {
    /// The daemon's address: a `unix://` socket path (or `tcp://` URI).
    #[serde(default = "default_docker_host")]
    pub docker_host: String,
}

impl Default for LocalDocker {
    fn default() -> Self {
        Self {
            docker_host: default_docker_host(),
        }
    }
}

fn default_docker_host() -> String {
    "unix:///var/run/docker.sock".to_string()
}

/// A remote Docker host reached over SSH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteDocker {
    /// Host name or IP address.
    pub host: String,
    /// SSH port.
    #[serde(default = "default_ssh_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// SSH user.
    #[serde(default = "default_ssh_user")]
    pub user: String,
    /// The Secret key holding the SSH private key.
    pub ssh_key_secret_ref: NamespacedSecretKeyRef,
    /// The host's public key (`ssh-ed25519 AAAA...`); when absent the first key seen is
    /// pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_host_key: Option<String>,
}

fn default_ssh_port() -> u16 {
    22
}

fn default_ssh_user() -> String {
    "root".to_string()
}

/// Housekeeping thresholds of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerAutomation {
    /// Disk usage (percent) of Docker's data root at or above which berth removes what it
    /// owns and no longer needs: stopped containers of past revisions and old built images.
    #[serde(default = "default_cleanup_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub docker_cleanup_threshold_percent: u8,
    /// Disk usage (percent) at or above which a `DiskPressure` condition and a
    /// `DiskUsageHigh` warning event are raised (once per crossing).
    #[serde(default = "default_warning_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub disk_usage_warning_percent: u8,
    /// How often (seconds) disk usage is checked, and a cleanup run when over the threshold.
    #[serde(default = "default_disk_check_interval")]
    #[schemars(range(min = 10))]
    pub disk_check_interval_seconds: u32,
    /// The rollback window: how many of the newest built images of each Application a
    /// cleanup keeps (images a container uses are kept anyway).
    #[serde(default = "default_keep_images")]
    #[schemars(range(min = 1))]
    pub keep_images: u32,
}

impl Default for ServerAutomation {
    fn default() -> Self {
        Self {
            docker_cleanup_threshold_percent: default_cleanup_percent(),
            disk_usage_warning_percent: default_warning_percent(),
            disk_check_interval_seconds: default_disk_check_interval(),
            keep_images: default_keep_images(),
        }
    }
}

fn default_cleanup_percent() -> u8 {
    80
}

fn default_warning_percent() -> u8 {
    90
}

fn default_disk_check_interval() -> u32 {
    600
}

fn default_keep_images() -> u32 {
    2
}

/// What the last Docker cleanup removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CleanupRecord {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Bytes the data root's file system gained (used before minus used after; 0 if
    /// other writes outweighed it).
    pub freed_bytes: u64,
    /// Containers removed.
    pub containers: u32,
    /// Images (or image tags) removed.
    pub images: u32,
    /// Disk usage (percent) before.
    pub used_percent_before: u8,
    /// Disk usage (percent) after.
    pub used_percent_after: u8,
}

/// Observed state of a Server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions (`Ready`, `DiskPressure`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The Docker Engine version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// Operating system and architecture, e.g. `linux/amd64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Number of CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Total memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Disk usage of the file system holding Docker's data root, in percent (statvfs;
    /// `localhost` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_usage_percent: Option<u8>,
    /// Bytes Docker accounts for on its data root (images, containers, volumes, cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_disk_usage_bytes: Option<u64>,
    /// Docker's data directory on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_root_dir: Option<String>,
    /// When disk usage was last checked (`spec.automation.diskCheckIntervalSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_checked_at: Option<DateTime<Utc>>,
    /// What the last Docker cleanup removed and freed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cleanup: Option<CleanupRecord>,
    /// When the server was last probed (the heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<DateTime<Utc>>,
}

impl Resource for ServerSpec {
    type Status = ServerStatus;
    const KIND: &'static str = "Server";
    const PLURAL: &'static str = "servers";
    const SINGULAR: &'static str = "server";
    const SHORT_NAMES: &'static [&'static str] = &["srv"];
    const NAMESPACED: bool = false;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Host",
            type_: "string",
            json_path: ".spec.remote.host",
            description: "the remote host (empty for localhost)",
        },
        PrinterColumn {
            name: "Docker",
            type_: "string",
            json_path: ".status.dockerVersion",
            description: "the Docker Engine version",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        exactly_one(
            "spec",
            &[
                ("localhost", self.localhost.is_some()),
                ("remote", self.remote.is_some()),
            ],
            errors,
        );
        if let Some(local) = &self.localhost {
            let host = &local.docker_host;
            let result = match host.strip_prefix("unix://") {
                Some(path) => rules::absolute_path(path),
                None => rules::url(host, &["tcp"]),
            };
            check(errors, "spec.localhost.dockerHost", result);
        }
        if let Some(remote) = &self.remote {
            non_empty("spec.remote.host", &remote.host, errors);
            if remote
                .host
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '`' | '@' | '/'))
            {
                errors.push(FieldError::invalid(
                    "spec.remote.host",
                    "must be a host name or IP address",
                ));
            }
            if remote.user.is_empty()
                || !remote
                    .user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            {
                errors.push(FieldError::invalid(
                    "spec.remote.user",
                    "must be a non-empty user name",
                ));
            }
            remote
                .ssh_key_secret_ref
                .validate("spec.remote.sshKeySecretRef", errors);
        }
        let auto = &self.automation;
        for (field, value) in [
            (
                "spec.automation.dockerCleanupThresholdPercent",
                auto.docker_cleanup_threshold_percent,
            ),
            (
                "spec.automation.diskUsageWarningPercent",
                auto.disk_usage_warning_percent,
            ),
        ] {
            if !(1..=100).contains(&value) {
                errors.push(FieldError::invalid(field, "must be between 1 and 100"));
            }
        }
        if auto.disk_check_interval_seconds < 10 {
            errors.push(FieldError::invalid(
                "spec.automation.diskCheckIntervalSeconds",
                "must be at least 10",
            ));
        }
        if auto.keep_images < 1 {
            errors.push(FieldError::invalid(
                "spec.automation.keepImages",
                "must be at least 1",
            ));
        }
    }
}

crate::api_words! {
    /// Why a Server's `Ready` condition is what it is (its `reason`).
    pub enum ServerReason {
        /// The daemon answered.
        Reachable,
        /// The daemon did not answer (the message says why); retried with backoff.
        Unreachable,
        /// berth cannot drive this kind of server yet; not retried.
        Unsupported,
    }
}

crate::api_words! {
    /// Reasons of the events a Server's disk automation records.
    pub enum ServerEventReason {
        /// A cleanup removed berth's unneeded containers and images (the message says what
        /// it freed).
        DockerCleanupDone,
        /// A cleanup was due but failed (the message says why); retried at the next check.
        DockerCleanupFailed,
        /// Disk usage reached `diskUsageWarningPercent` (a Warning, once per crossing).
        DiskUsageHigh,
        /// Disk usage is back below `diskUsageWarningPercent`.
        DiskUsageNormal,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fields(auto: ServerAutomation) -> Vec<String> {
        let spec = ServerSpec {
            localhost: Some(LocalDocker::default()),
            automation: auto,
            ..ServerSpec::default()
        };
        let mut errors = Vec::new();
        spec.validate(&mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn automation_defaults_are_valid_and_bad_values_name_their_field() {
        assert!(fields(ServerAutomation::default()).is_empty());
        let bad = ServerAutomation {
            docker_cleanup_threshold_percent: 0,
            disk_usage_warning_percent: 101,
            disk_check_interval_seconds: 5,
            keep_images: 0,
        };
        assert_eq!(
            fields(bad),
            [
                "spec.automation.dockerCleanupThresholdPercent",
                "spec.automation.diskUsageWarningPercent",
                "spec.automation.diskCheckIntervalSeconds",
                "spec.automation.keepImages",
            ]
        );
    }

    #[test]
    fn automation_fields_default_when_absent() {
        let spec: ServerSpec =
            serde_json::from_str(r#"{"localhost": {}, "automation": {"keepImages": 3}}"#).unwrap();
        assert_eq!(spec.automation.keep_images, 3);
        assert_eq!(spec.automation.disk_check_interval_seconds, 600);
        assert_eq!(spec.automation.docker_cleanup_threshold_percent, 80);
    }
}
