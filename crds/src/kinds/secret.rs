//! `Secret`: sensitive string data (passwords, keys) referenced by other objects.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, Resource};
use crate::rules;
use crate::validation::{FieldError, check, join};

/// Secret string data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpec {
    /// A free-form type hint, e.g. `berth.dev/database-credentials`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The secret values, by key.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// Observed state of a Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Maximum total size of a Secret's data.
pub const SECRET_MAX_BYTES: usize = 1024 * 1024;

impl Resource for SecretSpec {
    type Status = SecretStatus;
    const KIND: &'static str = "Secret";
    const PLURAL: &'static str = "secrets";
    const SINGULAR: &'static str = "secret";
    const SHORT_NAMES: &'static [&'static str] = &[];
    const NAMESPACED: bool = true;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Type",
            type_: "string",
            json_path: ".spec.type",
            description: "the secret's type",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        if let Some(t) = &self.type_ {
            check(errors, "spec.type", rules::qualified_name(t));
        }
        let mut size = 0;
        for (key, value) in &self.data {
            check(errors, join("spec.data", key), rules::secret_key(key));
            size += key.len() + value.len();
        }
        if size > SECRET_MAX_BYTES {
            errors.push(FieldError::new(
                "spec.data",
                crate::validation::FieldErrorKind::TooLong,
                format!("may not exceed {SECRET_MAX_BYTES} bytes in total"),
            ));
        }
    }
}
