//! Object metadata and status conditions, shaped like Kubernetes' `ObjectMeta` and `Condition`.
//!
//! # Guarantees
//! - Empty and absent fields are left out when serializing, so stored objects stay small
//!   and round-trip unchanged.
//! - Unknown fields are rejected (`deny_unknown_fields`), and the generated schema says
//!   `additionalProperties: false`.
//!
//! # Caveats
//! - `resourceVersion` is opaque: clients must compare it for equality only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::validation::{FieldError, check, join};

/// The annotation holding the configuration last applied by `berth apply` or GitOps (JSON),
/// from which the next three-way merge patch is computed.
pub const LAST_APPLIED: &str = "berth.dev/last-applied-configuration";

/// The annotation that asks a controller to act now (an RFC 3339 time, written by webhooks):
/// the controller acts when it differs from the value it last handled, which it records in
/// status.
pub const REQUESTED_AT: &str = "berth.dev/requested-at";

/// Maximum total size of all annotation keys and values, as in Kubernetes.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Metadata every object carries: identity, versioning, labels, ownership and finalizers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The object's name, unique per kind (and namespace): a DNS-1123 label.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The Environment the object lives in; set for namespaced kinds only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Unique id assigned by the API server at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Opaque version of this object, changed by every write; used for optimistic concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Sequence number of the desired state: incremented on every change to `spec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the object was created (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<DateTime<Utc>>,
    /// When deletion was requested; the object goes away once its finalizers are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// Identifying key/value pairs, usable in selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Non-identifying key/value pairs for tools and humans.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Objects this one depends on; it is garbage-collected when its controller owner goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
    /// Keys of controllers that must finish cleanup before the object is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

/// A reference from a dependent object to its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerReference {
    /// The owner's `apiVersion`.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// The owner's uid.
    pub uid: String,
    /// Whether the owner is the managing controller (at most one owner may be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    /// Whether the owner's foreground deletion waits for this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

crate::api_words! {
    /// Condition types that mean the same on every kind.
    pub enum ConditionType {
        /// Whether the object does what its spec asks (the `Ready` column of `berth get`).
        Ready,
    }
}

/// Whether `conditions` hold a condition of `type_` whose status is `True`.
pub fn is_true(conditions: &[Condition], type_: ConditionType) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == ConditionStatus::True)
}

/// The truth value of a [`Condition`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell (yet).
    #[default]
    Unknown,
}

/// One observation about an object's state, e.g. `Ready=True`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// The condition's type in CamelCase, e.g. `Ready`, `Progressing`.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// A CamelCase machine-readable reason for the last transition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The `metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl ObjectMeta {
    /// Semantic checks on metadata that the schema cannot express; `namespaced` says whether
    /// the object's kind lives in an Environment.
    pub fn validate(&self, namespaced: bool, errors: &mut Vec<FieldError>) {
        if self.name.is_empty() {
            errors.push(FieldError::required("metadata.name", "name is required"));
        } else {
            check(errors, "metadata.name", rules::dns1123_label(&self.name));
        }
        match (&self.namespace, namespaced) {
            (None, true) => errors.push(FieldError::required(
                "metadata.namespace",
                "namespace (the Environment) is required for this namespaced kind",
            )),
            (Some(_), false) => errors.push(FieldError::forbidden(
                "metadata.namespace",
                "not allowed: this kind is cluster-scoped",
            )),
            (Some(ns), true) => check(errors, "metadata.namespace", rules::dns1123_label(ns)),
            (None, false) => {}
        }
        for (key, value) in &self.labels {
            let field = join("metadata.labels", key);
            check(errors, field.clone(), rules::qualified_name(key));
            check(errors, field, rules::label_value(value));
        }
        let mut size = 0;
        for (key, value) in &self.annotations {
            check(
                errors,
                join("metadata.annotations", key),
                rules::qualified_name(key),
            );
            size += key.len() + value.len();
        }
        if size > ANNOTATIONS_MAX_BYTES {
            errors.push(FieldError::new(
                "metadata.annotations",
                crate::validation::FieldErrorKind::TooLong,
                format!("annotations may not exceed {ANNOTATIONS_MAX_BYTES} bytes in total"),
            ));
        }
        for (i, finalizer) in self.finalizers.iter().enumerate() {
            check(
                errors,
                format!("metadata.finalizers[{i}]"),
                rules::qualified_name(finalizer),
            );
        }
        let controllers = self
            .owner_references
            .iter()
            .filter(|o| o.controller == Some(true))
            .count();
        if controllers > 1 {
            errors.push(FieldError::invalid(
                "metadata.ownerReferences",
                "only one owner reference may have controller: true",
            ));
        }
        for (i, owner) in self.owner_references.iter().enumerate() {
            let base = format!("metadata.ownerReferences[{i}]");
            for (field, value) in [
                ("apiVersion", &owner.api_version),
                ("kind", &owner.kind),
                ("uid", &owner.uid),
            ] {
                if value.is_empty() {
                    errors.push(FieldError::required(
                        format!("{base}.{field}"),
                        "must not be empty",
                    ));
                }
            }
            check(errors, format!("{base}.name"), rules::dns1123_label(&owner.name));
        }
    }
}

/// Checks that condition types are unique within `conditions` at `field`.
pub fn validate_conditions(conditions: &[Condition], field: &str, errors: &mut Vec<FieldError>) {
    for (i, c) in conditions.iter().enumerate() {
        if c.type_.is_empty() {
            errors.push(FieldError::required(
                format!("{field}[{i}].type"),
                "must not be empty",
            ));
        }
        if conditions[..i].iter().any(|o| o.type_ == c.type_) {
            errors.push(FieldError::duplicate(
                format!("{field}[{i}].type"),
                format!("condition type {:?} appears more than once", c.type_),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            namespace: ns.map(Into::into),
            ..Default::default()
        }
    }

    fn errors_of(m: &ObjectMeta, namespaced: bool) -> Vec<FieldError> {
        let mut errors = Vec::new();
        m.validate(namespaced, &mut errors);
        errors
    }

    #[test]
    fn namespace_presence_follows_scope() {
        assert!(errors_of(&meta("web", Some("shop-production")), true).is_empty());
        assert!(errors_of(&meta("web", None), false).is_empty());
        let e = errors_of(&meta("web", None), true);
        assert_eq!(e[0].field, "metadata.namespace");
        assert_eq!(e[0].kind, crate::validation::FieldErrorKind::Required);
        let e = errors_of(&meta("web", Some("x")), false);
        assert_eq!(e[0].kind, crate::validation::FieldErrorKind::Forbidden);
    }

    #[test]
    fn names_labels_and_finalizers_are_checked() {
        let mut m = meta("Web_1", None);
        m.labels.insert("app.kubernetes.io/name".into(), "web".into());
        m.labels.insert("bad key".into(), "ok".into());
        m.labels.insert("tier".into(), "not ok!".into());
        m.finalizers.push("berth.dev/cleanup".into());
        m.finalizers.push("no spaces allowed".into());
        let fields: Vec<_> = errors_of(&m, false).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "metadata.labels[bad key]",
                "metadata.labels.tier",
                "metadata.finalizers[1]"
            ]
        );
        assert_eq!(errors_of(&meta("", None), false)[0].field, "metadata.name");
    }

    #[test]
    fn serializes_camel_case_and_skips_empty() {
        let mut m = meta("web", Some("shop-production"));
        m.resource_version = Some("42".into());
        let v = serde_json::to_value(&m).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"name": "web", "namespace": "shop-production", "resourceVersion": "42"})
        );
    }

    #[test]
    fn duplicate_condition_types_are_reported() {
        let c = Condition {
            type_: "Ready".into(),
            status: ConditionStatus::True,
            reason: String::new(),
            message: String::new(),
            last_transition_time: DateTime::<Utc>::UNIX_EPOCH,
            observed_generation: None,
        };
        let mut errors = Vec::new();
        validate_conditions(&[c.clone(), c], "status.conditions", &mut errors);
        assert_eq!(errors[0].field, "status.conditions[1].type");
    }
}
