//! `Project`: a named group of Environments, like a Coolify project.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, Resource};
use crate::validation::FieldError;

/// A project; the API server creates its `<project>-production` Environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSpec {
    /// What the project is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Observed state of a Project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Names of the project's Environments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
}

impl Resource for ProjectSpec {
    type Status = ProjectStatus;
    const KIND: &'static str = "Project";
    const PLURAL: &'static str = "projects";
    const SINGULAR: &'static str = "project";
    const SHORT_NAMES: &'static [&'static str] = &["proj"];
    const NAMESPACED: bool = false;
    const PRINTER_COLUMNS: &'static [crate::resource::PrinterColumn] = &[AGE_COLUMN];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(d) = &self.description
            && d.len() > 1024
        {
            errors.push(FieldError::new(
                "spec.description",
                crate::validation::FieldErrorKind::TooLong,
                "must be no more than 1024 characters",
            ));
        }
    }
}
