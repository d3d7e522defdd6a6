//! Types shared by several kinds: secret references and the common status fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;
use crate::validation::{FieldError, check};

/// A key of a Secret in the referring object's own Environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key within the Secret's data.
    pub key: String,
}

impl SecretKeyRef {
    /// Checks the name and key at `field`.
    pub fn validate(&self, field: &str, errors: &mut Vec<FieldError>) {
        check(errors, format!("{field}.name"), rules::dns1123_label(&self.name));
        check(errors, format!("{field}.key"), rules::secret_key(&self.key));
    }
}

/// A key of a Secret in a named Environment, for cluster-scoped kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacedSecretKeyRef {
    /// The Environment holding the Secret.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The key within the Secret's data.
    pub key: String,
}

impl NamespacedSecretKeyRef {
    /// Checks the namespace, name and key at `field`.
    pub fn validate(&self, field: &str, errors: &mut Vec<FieldError>) {
        check(
            errors,
            format!("{field}.namespace"),
            rules::dns1123_label(&self.namespace),
        );
        check(errors, format!("{field}.name"), rules::dns1123_label(&self.name));
        check(errors, format!("{field}.key"), rules::secret_key(&self.key));
    }
}

/// Reports `field` unless exactly one of `options` (name, is-set) is set.
pub fn exactly_one(field: &str, options: &[(&str, bool)], errors: &mut Vec<FieldError>) {
    let set: Vec<&str> = options.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect();
    let names = options.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    match set.len() {
        1 => {}
        0 => errors.push(FieldError::required(
            field,
            format!("exactly one of {names} must be set"),
        )),
        _ => {
            for name in set.iter().skip(1) {
                errors.push(FieldError::forbidden(
                    format!("{field}.{name}"),
                    format!(
                        "may not be set together with {}: exactly one of {names} is allowed",
                        set[0]
                    ),
                ));
            }
        }
    }
}

/// Reports `field` when `value` is set but empty.
pub fn non_empty(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    if value.is_empty() {
        errors.push(FieldError::required(field, "must not be empty"));
    }
}
