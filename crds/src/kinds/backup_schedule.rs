//! `BackupSchedule`: when a Database is backed up, to which storages, and how long backups
//! are kept.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// What to do when a run is due while the previous one is still running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Skip the new run.
    #[default]
    Forbid,
}

/// A backup schedule for one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupScheduleSpec {
    /// The Database (same Environment) to back up.
    pub database: String,
    /// A five-field cron expression, e.g. `0 3 * * *`, or `@daily`.
    pub schedule: String,
    /// The IANA time zone the schedule is read in.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Where each backup is written, and how long it is kept there.
    #[schemars(length(min = 1))]
    pub storages: Vec<ScheduledStorage>,
    /// What to do when a run is due while another runs.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// Whether scheduling is paused.
    #[serde(default)]
    pub suspend: bool,
    /// A run that could not start within this many seconds of its time is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub starting_deadline_seconds: Option<i64>,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

/// One target of a schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduledStorage {
    /// The BackupStorage's name.
    pub name: String,
    /// Which backups are kept; all are kept when empty.
    #[serde(default)]
    pub retention: Retention,
}

/// Retention rules; a backup is deleted once any rule says so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    /// Keep at most this many backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub keep_last: Option<u32>,
    /// Delete backups older than this, e.g. `7d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    /// Delete the oldest backups while the total exceeds this, e.g. `50Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_total_size: Option<String>,
}

/// Observed state of a BackupSchedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupScheduleStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When a Backup was last created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<DateTime<Utc>>,
    /// When a Backup last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_time: Option<DateTime<Utc>>,
    /// When the next Backup is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_schedule_time: Option<DateTime<Utc>>,
    /// Names of running Backups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<String>,
}

impl Resource for BackupScheduleSpec {
    type Status = BackupScheduleStatus;
    const KIND: &'static str = "BackupSchedule";
    const PLURAL: &'static str = "backupschedules";
    const SINGULAR: &'static str = "backupschedule";
    const SHORT_NAMES: &'static [&'static str] = &["bsched"];
    const NAMESPACED: bool = true;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Database",
            type_: "string",
            json_path: ".spec.database",
            description: "the database backed up",
        },
        PrinterColumn {
            name: "Schedule",
            type_: "string",
            json_path: ".spec.schedule",
            description: "the cron schedule",
        },
        PrinterColumn {
            name: "Suspend",
            type_: "boolean",
            json_path: ".spec.suspend",
            description: "whether scheduling is paused",
        },
        PrinterColumn {
            name: "Last Schedule",
            type_: "date",
            json_path: ".status.lastScheduleTime",
            description: "when a backup was last started",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(errors, "spec.database", rules::dns1123_label(&self.database));
        check(errors, "spec.schedule", rules::cron_schedule(&self.schedule));
        check(errors, "spec.timeZone", rules::time_zone(&self.time_zone));
        for (i, s) in self.storages.iter().enumerate() {
            let base = format!("spec.storages[{i}]");
            check(errors, format!("{base}.name"), rules::dns1123_label(&s.name));
            if self.storages[..i].iter().any(|o| o.name == s.name) {
                errors.push(FieldError::duplicate(
                    format!("{base}.name"),
                    format!("{:?} is listed twice", s.name),
                ));
            }
            if let Some(age) = &s.retention.max_age {
                check(errors, format!("{base}.retention.maxAge"), rules::duration(age));
            }
            if let Some(size) = &s.retention.max_total_size {
                check(
                    errors,
                    format!("{base}.retention.maxTotalSize"),
                    rules::quantity(size),
                );
            }
        }
    }
}
