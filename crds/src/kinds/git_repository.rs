//! `GitRepository`: a Git repository of berth manifests that berth keeps applied (GitOps).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::non_empty;
use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A repository of manifests synced into the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRepositorySpec {
    /// The repository URL (`https://`, `ssh://`, `git@host:path`, `file://`).
    pub url: String,
    /// What to check out: at most one of branch, tag or commit; the default branch when
    /// absent.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<GitRef>,
    /// The directory of manifests inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How often the remote is polled.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// A Secret (same Environment) with `username`/`password` or `identity` (SSH key) keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<String>,
    /// Whether objects removed from the repository are deleted.
    #[serde(default = "default_true")]
    pub prune: bool,
    /// Whether changes made outside Git are reverted.
    #[serde(default = "default_true")]
    pub self_heal: bool,
    /// Whether syncing is paused.
    #[serde(default)]
    pub suspend: bool,
    /// A Source whose webhook secret verifies push webhooks that trigger a sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
}

fn default_interval() -> String {
    "1m".to_string()
}

fn default_true() -> bool {
    true
}

/// A Git reference: at most one of `branch`, `tag` or `commit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRef {
    /// A branch name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A tag name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A full commit SHA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Observed state of a GitRepository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRepositoryStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The commit last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_commit: Option<String>,
    /// The first 7 characters of `lastAppliedCommit`, for `berth get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_commit: Option<String>,
    /// When the repository was last synced successfully (fetched, and applied when due).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<DateTime<Utc>>,
    /// The commit of the last attempt that failed (validation, apply), if the last attempt
    /// failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_commit: Option<String>,
    /// The `berth.dev/requested-at` annotation value the last sync handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_requested_at: Option<String>,
    /// Number of objects managed from the repository (the length of `inventory`).
    #[serde(default)]
    pub managed_objects: u32,
    /// The objects applied from the repository: what `prune` may delete once they leave it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<InventoryEntry>,
}

/// One object managed by a GitRepository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InventoryEntry {
    /// The object's kind.
    pub kind: String,
    /// Its namespace (namespaced kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// The label naming the namespace of the GitRepository that manages an object.
pub const MANAGED_BY_NAMESPACE_LABEL: &str = "gitops.berth.dev/namespace";
/// The label naming the GitRepository that manages an object.
pub const MANAGED_BY_NAME_LABEL: &str = "gitops.berth.dev/name";

impl Resource for GitRepositorySpec {
    type Status = GitRepositoryStatus;
    const KIND: &'static str = "GitRepository";
    const PLURAL: &'static str = "gitrepositories";
    const SINGULAR: &'static str = "gitrepository";
    const SHORT_NAMES: &'static [&'static str] = &["gitrepo", "repo"];
    const NAMESPACED: bool = true;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "URL",
            type_: "string",
            json_path: ".spec.url",
            description: "the repository",
        },
        PrinterColumn {
            name: "Commit",
            type_: "string",
            json_path: ".status.shortCommit",
            description: "the commit last applied",
        },
        READY_COLUMN,
        PrinterColumn {
            name: "Last Sync",
            type_: "date",
            json_path: ".status.lastSyncTime",
            description: "time since the last successful sync",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(errors, "spec.url", rules::git_url(&self.url));
        if let Some(r) = &self.ref_ {
            let set = [("branch", &r.branch), ("tag", &r.tag), ("commit", &r.commit)];
            let given: Vec<_> = set.iter().filter(|(_, v)| v.is_some()).collect();
            for (name, _) in given.iter().skip(1) {
                errors.push(FieldError::forbidden(
                    format!("spec.ref.{name}"),
                    "at most one of branch, tag or commit may be set",
                ));
            }
            for (name, value) in set {
                if let Some(v) = value {
                    non_empty(&format!("spec.ref.{name}"), v, errors);
                    if v.starts_with('-')
                        || v.chars().any(|c| c.is_whitespace() || c.is_control() || c == '`')
                    {
                        errors.push(FieldError::invalid(
                            format!("spec.ref.{name}"),
                            "not a valid Git ref name",
                        ));
                    }
                }
            }
            if let Some(c) = &r.commit
                && !(c.len() == 40 || c.len() == 64)
            {
                errors.push(FieldError::invalid(
                    "spec.ref.commit",
                    "must be a full 40- or 64-character hex SHA",
                ));
            } else if let Some(c) = &r.commit
                && !c.chars().all(|ch| ch.is_ascii_hexdigit())
            {
                errors.push(FieldError::invalid("spec.ref.commit", "must be a hex SHA"));
            }
        }
        if let Some(p) = &self.path
            && (p.starts_with('/') || p.split('/').any(|s| s == ".."))
        {
            errors.push(FieldError::invalid(
                "spec.path",
                "must be a relative path inside the repository",
            ));
        }
        check(errors, "spec.interval", rules::duration(&self.interval));
        if rules::parse_duration(&self.interval).is_some_and(|d| d.as_secs() < 5) {
            errors.push(FieldError::invalid("spec.interval", "must be at least 5s"));
        }
        if let Some(c) = &self.credentials_secret_ref {
            check(errors, "spec.credentialsSecretRef", rules::dns1123_label(c));
        }
        if let Some(s) = &self.source_ref {
            check(errors, "spec.sourceRef", rules::dns1123_label(s));
        }
    }
}

crate::api_words! {
    /// Why a GitRepository's `Ready` condition is what it is (its `reason`).
    pub enum GitRepositoryReason {
        /// Syncing is suspended.
        Suspended,
        /// The commit was applied (or already was).
        Synced,
        /// The credentials Secret is missing or unusable.
        CredentialsFailed,
        /// The remote refused the credentials.
        AuthFailed,
        /// The fetch failed.
        FetchFailed,
        /// The branch, tag or commit does not exist.
        RefNotFound,
        /// `spec.path` does not exist in the commit.
        PathNotFound,
        /// A document of the commit is invalid; retrying will not help.
        ValidationFailed,
        /// An object could not be applied.
        ApplyFailed,
        /// An object that left the repository could not be deleted.
        PruneFailed,
    }
}
