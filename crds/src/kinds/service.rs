//! `Service`: a multi-container stack from a berth template or an inline docker-compose file.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::exactly_one;
pub use super::database::DeletionPolicy;
use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check, join};

/// Maximum size of an inline compose file.
pub const COMPOSE_MAX_BYTES: usize = 256 * 1024;

/// A multi-container service: exactly one of `template` or `compose`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// A service template shipped with berth (e.g. `plausible`, `n8n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ServiceTemplate>,
    /// An inline docker-compose file (YAML).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<String>,
    /// The Destination whose server runs the members. The members share a network of
    /// their own on that server (a Destination the Service owns), where each answers to
    /// its compose service name.
    pub destination: String,
    /// Values for the compose file's `${VAR}` references (its `.env`); a template takes
    /// them from `template.parameters`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Domains of the members that declare a `SERVICE_URL_*` / `SERVICE_FQDN_*` variable;
    /// members without one get a generated host under `wildcardDomain`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<ServiceDomain>,
    /// The wildcard domain generated hosts go under, with its scheme, e.g.
    /// `https://apps.example.com` (`http://` routes without TLS). Default:
    /// `http://127.0.0.1.sslip.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_domain: Option<String>,
    /// What happens to the members' named volumes when the Service is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// A domain for one member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceDomain {
    /// The compose service it routes to.
    pub service: String,
    /// The host name, e.g. `blog.example.com`.
    pub host: String,
    /// Whether HTTPS is served (ACME certificate) and HTTP redirected to it.
    #[serde(default = "default_true")]
    pub https: bool,
}

fn default_true() -> bool {
    true
}

/// A reference to a service template and its parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceTemplate {
    /// The template's name.
    pub name: String,
    /// Values for the template's parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// Observed state of a Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The compose services and whether each is running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceMember>,
    /// `ready/total` members, for `berth get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<String>,
    /// The first URL served (the first member's with a domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Compose keys accepted without effect, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// One compose service of a running Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMember {
    /// The compose service's name.
    pub name: String,
    /// The kind of the child object (`Application` or `Database`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The child object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub object: String,
    /// Whether its containers are running and healthy.
    pub ready: bool,
    /// What holds it back, when not ready (the child's reason, or the dependency waited on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether it is left out of the Service's readiness (`exclude_from_hc`, `restart: no`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excluded: bool,
    /// The URLs it is served at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

impl Resource for ServiceSpec {
    type Status = ServiceStatus;
    const KIND: &'static str = "Service";
    const PLURAL: &'static str = "services";
    const SINGULAR: &'static str = "service";
    const SHORT_NAMES: &'static [&'static str] = &["svc"];
    const NAMESPACED: bool = true;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Template",
            type_: "string",
            json_path: ".spec.template.name",
            description: "the service template",
        },
        PrinterColumn {
            name: "Members",
            type_: "string",
            json_path: ".status.members",
            description: "ready/total members",
        },
        READY_COLUMN,
        PrinterColumn {
            name: "URL",
            type_: "string",
            json_path: ".status.url",
            description: "the first URL served",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        exactly_one(
            "spec",
            &[
                ("template", self.template.is_some()),
                ("compose", self.compose.is_some()),
            ],
            errors,
        );
        check(
            errors,
            "spec.destination",
            rules::dns1123_label(&self.destination),
        );
        if let Some(t) = &self.template {
            check(errors, "spec.template.name", rules::dns1123_label(&t.name));
            for key in t.parameters.keys() {
                check(
                    errors,
                    join("spec.template.parameters", key),
                    rules::env_var_name(key),
                );
            }
        }
        if let Some(compose) = &self.compose {
            validate_compose(compose, errors);
        }
        for key in self.variables.keys() {
            check(errors, join("spec.variables", key), rules::env_var_name(key));
        }
        for (i, d) in self.domains.iter().enumerate() {
            check(
                errors,
                format!("spec.domains[{i}].host"),
                rules::hostname(&d.host),
            );
            if d.service.is_empty() {
                errors.push(FieldError::required(
                    format!("spec.domains[{i}].service"),
                    "names the compose service routed to",
                ));
            }
        }
        if let Some(w) = &self.wildcard_domain {
            let host = w
                .strip_prefix("https://")
                .or_else(|| w.strip_prefix("http://"))
                .unwrap_or(w);
            check(errors, "spec.wildcardDomain", rules::hostname(host));
        }
    }
}

/// Checks that `compose` is a YAML mapping with a non-empty `services` mapping.
fn validate_compose(compose: &str, errors: &mut Vec<FieldError>) {
    const FIELD: &str = "spec.compose";
    if compose.len() > COMPOSE_MAX_BYTES {
        errors.push(FieldError::new(
            FIELD,
            crate::validation::FieldErrorKind::TooLong,
            format!("may not exceed {COMPOSE_MAX_BYTES} bytes"),
        ));
        return;
    }
    let doc: serde_yaml::Value = match serde_yaml::from_str(compose) {
        Ok(doc) => doc,
        Err(e) => {
            errors.push(FieldError::invalid(FIELD, format!("not valid YAML: {e}")));
            return;
        }
    };
    match doc.get("services").and_then(serde_yaml::Value::as_mapping) {
        Some(services) if !services.is_empty() => {
            for name in services.keys() {
                let ok = name.as_str().is_some_and(|n| rules::docker_name(n).is_ok());
                if !ok {
                    errors.push(FieldError::invalid(
                        FIELD,
                        format!("service name {name:?} must be letters, digits, '_', '.' or '-'"),
                    ));
                }
            }
        }
        _ => errors.push(FieldError::invalid(
            FIELD,
            "must define at least one service under 'services'",
        )),
    }
}
