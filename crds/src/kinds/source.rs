//! `Source`: a Git provider account (GitHub App, GitLab, generic) used to fetch code and
//! verify webhooks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::NamespacedSecretKeyRef;
use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A Git hosting provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    /// GitHub or GitHub Enterprise (GitHub App).
    Github,
    /// GitLab (gitlab.com or self-managed).
    Gitlab,
    /// Any Git server reachable over HTTPS or SSH.
    #[default]
    Generic,
}

/// A Git provider account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceSpec {
    /// The provider.
    pub provider: GitProvider,
    /// The provider's API URL (e.g. `https://api.github.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// The provider's web URL (e.g. `https://github.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The GitHub App id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The Secret key holding the App's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_secret_ref: Option<NamespacedSecretKeyRef>,
    /// The Secret key holding the webhook secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_ref: Option<NamespacedSecretKeyRef>,
}

/// Observed state of a Source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Resource for SourceSpec {
    type Status = SourceStatus;
    const KIND: &'static str = "Source";
    const PLURAL: &'static str = "sources";
    const SINGULAR: &'static str = "source";
    const SHORT_NAMES: &'static [&'static str] = &["src"];
    const NAMESPACED: bool = false;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Provider",
            type_: "string",
            json_path: ".spec.provider",
            description: "the Git provider",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        for (field, value) in [("spec.apiUrl", &self.api_url), ("spec.baseUrl", &self.base_url)] {
            if let Some(url) = value {
                check(errors, field, rules::url(url, &["https", "http"]));
            }
        }
        if self.app_id.is_some() != self.private_key_secret_ref.is_some() {
            errors.push(FieldError::required(
                if self.app_id.is_some() {
                    "spec.privateKeySecretRef"
                } else {
                    "spec.appId"
                },
                "appId and privateKeySecretRef must be set together",
            ));
        }
        if self.app_id.is_some() && self.provider != GitProvider::Github {
            errors.push(FieldError::forbidden(
                "spec.appId",
                "only supported for provider github",
            ));
        }
        if let Some(r) = &self.private_key_secret_ref {
            r.validate("spec.privateKeySecretRef", errors);
        }
        if let Some(r) = &self.webhook_secret_ref {
            r.validate("spec.webhookSecretRef", errors);
        }
    }
}
