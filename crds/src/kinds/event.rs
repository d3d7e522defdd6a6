//! `Event`: a report of something that happened to an object, written by controllers.
//!
//! Shaped like Kubernetes' core `Event`, with its fields under `spec` (every berth object is
//! `{metadata, spec, status}`).
//!
//! # Guarantees
//! - Events are cluster-scoped, so that an event about a cluster-scoped object (a Project, a
//!   Server) needs no namespace of its own; the involved object's namespace is in
//!   `spec.involvedObject.namespace` and in the `berth.dev/involved-namespace` label.
//! - Writers (the controllers' recorder) label every event with
//!   [`INVOLVED_UID_LABEL`], [`INVOLVED_KIND_LABEL`], [`INVOLVED_NAME_LABEL`] and, for
//!   namespaced objects, [`INVOLVED_NAMESPACE_LABEL`], so `labelSelector` finds an object's
//!   events; and give it an ownerReference to the involved object, so events go with it.
//!
//! # Caveats
//! - Events are best-effort history, not state: they are deduplicated (`count`) and aged
//!   out by the controllers' sweeper.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::resource::{AGE_COLUMN, PrinterColumn, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// Label holding the involved object's uid.
pub const INVOLVED_UID_LABEL: &str = "berth.dev/involved-uid";
/// Label holding the involved object's kind.
pub const INVOLVED_KIND_LABEL: &str = "berth.dev/involved-kind";
/// Label holding the involved object's name.
pub const INVOLVED_NAME_LABEL: &str = "berth.dev/involved-name";
/// Label holding the involved object's namespace (namespaced objects only).
pub const INVOLVED_NAMESPACE_LABEL: &str = "berth.dev/involved-namespace";

/// Whether an event is routine or a problem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EventType {
    /// Routine progress.
    #[default]
    Normal,
    /// Something went wrong or needs attention.
    Warning,
}

/// The object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvolvedObject {
    /// The object's kind, e.g. `Application`.
    pub kind: String,
    /// The object's namespace (Environment), for namespaced kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
    /// The object's uid.
    pub uid: String,
}

/// What happened, to which object, how often and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSpec {
    /// The object the event is about.
    pub involved_object: InvolvedObject,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// A CamelCase machine-readable reason, e.g. `ContainerDied`.
    pub reason: String,
    /// A human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The component that reported it, e.g. `application-controller`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// How many times it happened (same object, reason and message).
    pub count: i64,
    /// When it first happened.
    pub first_timestamp: DateTime<Utc>,
    /// When it last happened.
    pub last_timestamp: DateTime<Utc>,
}

/// Events have no observed state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventStatus {}

impl Resource for EventSpec {
    type Status = EventStatus;
    const KIND: &'static str = "Event";
    const PLURAL: &'static str = "events";
    const SINGULAR: &'static str = "event";
    const SHORT_NAMES: &'static [&'static str] = &["ev"];
    const NAMESPACED: bool = false;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Last Seen",
            type_: "date",
            json_path: ".spec.lastTimestamp",
            description: "when it last happened",
        },
        PrinterColumn {
            name: "Type",
            type_: "string",
            json_path: ".spec.type",
            description: "Normal or Warning",
        },
        PrinterColumn {
            name: "Reason",
            type_: "string",
            json_path: ".spec.reason",
            description: "why",
        },
        PrinterColumn {
            name: "Object",
            type_: "string",
            json_path: ".spec.involvedObject.name",
            description: "the object it is about",
        },
        PrinterColumn {
            name: "Count",
            type_: "integer",
            json_path: ".spec.count",
            description: "how many times it happened",
        },
        PrinterColumn {
            name: "Message",
            type_: "string",
            json_path: ".spec.message",
            description: "what happened",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        let o = &self.involved_object;
        if o.kind.is_empty() {
            errors.push(FieldError::required(
                "spec.involvedObject.kind",
                "must not be empty",
            ));
        }
        if o.uid.is_empty() {
            errors.push(FieldError::required(
                "spec.involvedObject.uid",
                "must not be empty",
            ));
        }
        check(errors, "spec.involvedObject.name", rules::dns1123_label(&o.name));
        if let Some(ns) = &o.namespace {
            check(errors, "spec.involvedObject.namespace", rules::dns1123_label(ns));
        }
        if self.reason.is_empty() {
            errors.push(FieldError::required("spec.reason", "must not be empty"));
        }
        if self.message.len() > 4096 {
            errors.push(FieldError::new(
                "spec.message",
                crate::validation::FieldErrorKind::TooLong,
                "must be no more than 4096 characters",
            ));
        }
        if self.count < 1 {
            errors.push(FieldError::invalid("spec.count", "must be at least 1"));
        }
        if self.last_timestamp < self.first_timestamp {
            errors.push(FieldError::invalid(
                "spec.lastTimestamp",
                "must not be before spec.firstTimestamp",
            ));
        }
    }
}
