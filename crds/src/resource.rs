//! The [`Resource`] trait every kind's spec implements, and the generic [`Object`] envelope.
//!
//! A kind is defined once, by its spec type: the trait's constants name it (kind, plural,
//! short names, scope), its associated `Status` type gives the status shape, and
//! [`Resource::validate`] adds the semantic rules a schema cannot express.
//!
//! # Guarantees
//! - `Object<S>` (de)serializes as `{apiVersion, kind, metadata, spec, status}` with unknown
//!   fields rejected.

use std::fmt::Debug;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;
use crate::validation::FieldError;

/// An extra column shown by `berth get` (and in the CRD's `additionalPrinterColumns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrinterColumn {
    /// The column header, e.g. `Ready`.
    pub name: &'static str,
    /// The OpenAPI type of the value: `string`, `integer`, `boolean`, `date`...
    pub type_: &'static str,
    /// A JSONPath into the object, e.g. `.spec.destination`.
    pub json_path: &'static str,
    /// What the column shows.
    pub description: &'static str,
}

/// The `Ready` condition's status column.
pub const READY_COLUMN: PrinterColumn = PrinterColumn {
    name: "Ready",
    type_: "string",
    json_path: ".status.conditions[?(@.type==\"Ready\")].status",
    description: "whether the object is ready",
};

/// The age column (from `metadata.creationTimestamp`).
pub const AGE_COLUMN: PrinterColumn = PrinterColumn {
    name: "Age",
    type_: "date",
    json_path: ".metadata.creationTimestamp",
    description: "time since creation",
};

/// A berth kind, implemented by the kind's spec type.
pub trait Resource:
    Serialize + DeserializeOwned + JsonSchema + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The status shape, written by the kind's controller through the status subresource.
    type Status: Serialize + DeserializeOwned + JsonSchema + Clone + Debug + Default + PartialEq + Send + Sync;

    /// The kind, e.g. `Application`.
    const KIND: &'static str;
    /// The lowercase plural used in URLs, e.g. `applications`.
    const PLURAL: &'static str;
    /// The lowercase singular, e.g. `application`.
    const SINGULAR: &'static str;
    /// Short names accepted by the CLI, e.g. `["app"]`.
    const SHORT_NAMES: &'static [&'static str];
    /// Whether objects live in an Environment (namespace) rather than cluster-wide.
    const NAMESPACED: bool;
    /// Dotted paths (`spec.project`, or `spec` for all of it) that may not change after creation.
    const IMMUTABLE_FIELDS: &'static [&'static str] = &[];
    /// Columns shown by `berth get`, after the name (and namespace).
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[READY_COLUMN, AGE_COLUMN];

    /// Semantic checks the schema cannot express (exactly-one-of, host names, cron...),
    /// reported with paths under `spec`.
    fn validate(&self, errors: &mut Vec<FieldError>);
}

/// A complete berth object: type information, metadata, desired state and observed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, bound = "")]
pub struct Object<S: Resource> {
    /// Always [`crate::API_VERSION`].
    pub api_version: String,
    /// Always `S::KIND`.
    pub kind: String,
    /// Name, namespace, labels, versioning.
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: S,
    /// The observed state, written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<S::Status>,
}

impl<S: Resource> Object<S> {
    /// A new object named `name` (in `namespace` for namespaced kinds) with no status.
    pub fn new(namespace: Option<&str>, name: &str, spec: S) -> Self {
        Self {
            api_version: crate::API_VERSION.to_string(),
            kind: S::KIND.to_string(),
            metadata: ObjectMeta {
                name: name.to_string(),
                namespace: namespace.map(str::to_string),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The namespace, for namespaced kinds.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    /// The uid ("" before the API assigned one).
    pub fn uid(&self) -> &str {
        self.metadata.uid.as_deref().unwrap_or_default()
    }

    /// `metadata.generation` (0 when absent).
    pub fn generation(&self) -> i64 {
        self.metadata.generation.unwrap_or(0)
    }

    /// Whether `metadata.deletionTimestamp` is set.
    pub fn is_deleting(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.get(key).map(String::as_str)
    }
}
