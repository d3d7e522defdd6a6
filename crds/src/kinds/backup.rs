//! `Backup`: one backup run of a Database, created by a BackupSchedule or by hand.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// One backup run; its spec is immutable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupSpec {
    /// The Database (same Environment) to back up.
    pub database: String,
    /// The BackupSchedule that created this run, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The BackupStorages written to.
    #[schemars(length(min = 1))]
    pub storages: Vec<String>,
}

/// The lifecycle phase of a Backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackupPhase {
    /// Not started yet.
    #[default]
    Pending,
    /// Dumping and uploading.
    Running,
    /// Written to every storage.
    Succeeded,
    /// Gave up; see `error`.
    Failed,
}

/// Where one copy of a backup was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupLocation {
    /// The BackupStorage's name.
    pub storage: String,
    /// The file path or object key.
    pub path: String,
}

/// A write that has not been committed yet: removed or aborted if the run dies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingUpload {
    /// The BackupStorage's name.
    pub storage: String,
    /// The final file path or object key (a local file is written as `<path>.partial`).
    pub path: String,
    /// The S3 multipart upload id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// Observed state of a Backup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The lifecycle phase.
    #[serde(default)]
    pub phase: BackupPhase,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// Size of the dump in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// SHA-256 of the dump, hex-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where copies were written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<BackupLocation>,
    /// Why the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Writes in progress while Running; cleaned up if the run is interrupted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingUpload>,
}

impl Resource for BackupSpec {
    type Status = BackupStatus;
    const KIND: &'static str = "Backup";
    const PLURAL: &'static str = "backups";
    const SINGULAR: &'static str = "backup";
    const SHORT_NAMES: &'static [&'static str] = &["bk"];
    const NAMESPACED: bool = true;
    const IMMUTABLE_FIELDS: &'static [&'static str] = &["spec"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Database",
            type_: "string",
            json_path: ".spec.database",
            description: "the database backed up",
        },
        PrinterColumn {
            name: "Phase",
            type_: "string",
            json_path: ".status.phase",
            description: "the lifecycle phase",
        },
        PrinterColumn {
            name: "Size",
            type_: "integer",
            json_path: ".status.sizeBytes",
            description: "dump size in bytes",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(errors, "spec.database", rules::dns1123_label(&self.database));
        if let Some(s) = &self.schedule {
            check(errors, "spec.schedule", rules::dns1123_label(s));
        }
        for (i, s) in self.storages.iter().enumerate() {
            check(errors, format!("spec.storages[{i}]"), rules::dns1123_label(s));
            if self.storages[..i].contains(s) {
                errors.push(FieldError::duplicate(
                    format!("spec.storages[{i}]"),
                    format!("{s:?} is listed twice"),
                ));
            }
        }
    }
}
