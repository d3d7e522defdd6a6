//! `Destination`: a Docker network on a Server that workloads attach to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A Docker network on a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSpec {
    /// The Server's name; immutable.
    pub server: String,
    /// The Docker network name, created if missing.
    pub network: String,
}

/// Observed state of a Destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The Docker network id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
}

impl Resource for DestinationSpec {
    type Status = DestinationStatus;
    const KIND: &'static str = "Destination";
    const PLURAL: &'static str = "destinations";
    const SINGULAR: &'static str = "destination";
    const SHORT_NAMES: &'static [&'static str] = &["dest"];
    const NAMESPACED: bool = false;
    const IMMUTABLE_FIELDS: &'static [&'static str] = &["spec.server", "spec.network"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Server",
            type_: "string",
            json_path: ".spec.server",
            description: "the server",
        },
        PrinterColumn {
            name: "Network",
            type_: "string",
            json_path: ".spec.network",
            description: "the Docker network",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(errors, "spec.server", rules::dns1123_label(&self.server));
        check(errors, "spec.network", rules::docker_name(&self.network));
    }
}
