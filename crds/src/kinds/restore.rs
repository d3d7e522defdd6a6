//! `Restore`: replays one Backup into a Database with the engine's restore tool.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// One restore run; its spec is immutable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreSpec {
    /// The Database (same Environment) to restore into.
    pub database: String,
    /// The Backup (same Environment) to restore; it must have succeeded.
    pub backup: String,
    /// The BackupStorage to read from; the backup's first location when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
}

/// The lifecycle phase of a Restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestorePhase {
    /// Not started yet.
    #[default]
    Pending,
    /// Reading the backup into the database.
    Running,
    /// The restore tool consumed the whole backup and exited 0.
    Succeeded,
    /// Gave up; see `error`.
    Failed,
}

/// Observed state of a Restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions (`Complete` or `Failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The lifecycle phase.
    #[serde(default)]
    pub phase: RestorePhase,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<DateTime<Utc>>,
    /// The storage and path read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Uncompressed bytes fed to the restore tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_bytes: Option<u64>,
    /// Why the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Resource for RestoreSpec {
    type Status = RestoreStatus;
    const KIND: &'static str = "Restore";
    const PLURAL: &'static str = "restores";
    const SINGULAR: &'static str = "restore";
    const SHORT_NAMES: &'static [&'static str] = &["rst"];
    const NAMESPACED: bool = true;
    const IMMUTABLE_FIELDS: &'static [&'static str] = &["spec"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Database",
            type_: "string",
            json_path: ".spec.database",
            description: "the database restored into",
        },
        PrinterColumn {
            name: "Backup",
            type_: "string",
            json_path: ".spec.backup",
            description: "the backup restored",
        },
        PrinterColumn {
            name: "Phase",
            type_: "string",
            json_path: ".status.phase",
            description: "the lifecycle phase",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(errors, "spec.database", rules::dns1123_label(&self.database));
        check(errors, "spec.backup", rules::dns1123_subdomain(&self.backup));
        if let Some(s) = &self.storage {
            check(errors, "spec.storage", rules::dns1123_label(s));
        }
    }
}
