//! `Environment`: a stage of a Project (production, staging...) and the namespace of every
//! namespaced object.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// An environment of a project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The owning Project's name; immutable.
    pub project: String,
    /// The name shown to people, e.g. `production`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Observed state of an Environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Resource for EnvironmentSpec {
    type Status = EnvironmentStatus;
    const KIND: &'static str = "Environment";
    const PLURAL: &'static str = "environments";
    const SINGULAR: &'static str = "environment";
    const SHORT_NAMES: &'static [&'static str] = &["env"];
    const NAMESPACED: bool = false;
    const IMMUTABLE_FIELDS: &'static [&'static str] = &["spec.project"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Project",
            type_: "string",
            json_path: ".spec.project",
            description: "the owning project",
        },
        PrinterColumn {
            name: "Display Name",
            type_: "string",
            json_path: ".spec.displayName",
            description: "the name shown to people",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(errors, "spec.project", rules::dns1123_label(&self.project));
        if let Some(d) = &self.display_name
            && (d.is_empty() || d.len() > 63)
        {
            errors.push(FieldError::invalid(
                "spec.displayName",
                "must be 1 to 63 characters",
            ));
        }
    }
}
