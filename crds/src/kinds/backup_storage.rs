//! `BackupStorage`: where backups are written: a directory on a Server, or an S3 bucket.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{exactly_one, non_empty};
use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A backup target: exactly one of `local` or `s3`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupStorageSpec {
    /// A directory on a server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalStorage>,
    /// An S3-compatible bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
}

/// A directory on a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalStorage {
    /// The Server's name.
    pub server: String,
    /// An absolute directory on that server.
    pub path: String,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Storage {
    /// The endpoint URL, e.g. `https://s3.eu-central-1.amazonaws.com`.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style addressing (`endpoint/bucket`), needed by MinIO, SeaweedFS and most
    /// self-hosted stores.
    #[serde(default)]
    pub path_style: bool,
    /// A key prefix under which backups are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The Secret holding the access keys.
    pub credentials_secret_ref: S3Credentials,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

/// Where the S3 access keys are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Credentials {
    /// The Environment holding the Secret.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The key holding the access key id.
    #[serde(default = "default_access_key_id_key")]
    pub access_key_id_key: String,
    /// The key holding the secret access key.
    #[serde(default = "default_secret_access_key_key")]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    "accessKeyId".to_string()
}

fn default_secret_access_key_key() -> String {
    "secretAccessKey".to_string()
}

/// Observed state of a BackupStorage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupStorageStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions (`Ready` once the target was reached and is writable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Resource for BackupStorageSpec {
    type Status = BackupStorageStatus;
    const KIND: &'static str = "BackupStorage";
    const PLURAL: &'static str = "backupstorages";
    const SINGULAR: &'static str = "backupstorage";
    const SHORT_NAMES: &'static [&'static str] = &["bs"];
    const NAMESPACED: bool = false;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Bucket",
            type_: "string",
            json_path: ".spec.s3.bucket",
            description: "the S3 bucket",
        },
        PrinterColumn {
            name: "Path",
            type_: "string",
            json_path: ".spec.local.path",
            description: "the local directory",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        exactly_one(
            "spec",
            &[("local", self.local.is_some()), ("s3", self.s3.is_some())],
            errors,
        );
        if let Some(l) = &self.local {
            check(errors, "spec.local.server", rules::dns1123_label(&l.server));
            check(errors, "spec.local.path", rules::absolute_path(&l.path));
        }
        if let Some(s3) = &self.s3 {
            check(
                errors,
                "spec.s3.endpoint",
                rules::url(&s3.endpoint, &["https", "http"]),
            );
            let bucket_ok = (3..=63).contains(&s3.bucket.len())
                && s3
                    .bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c));
            if !bucket_ok {
                errors.push(FieldError::invalid(
                    "spec.s3.bucket",
                    "must be 3-63 lowercase letters, digits, '.' or '-'",
                ));
            }
            non_empty("spec.s3.region", &s3.region, errors);
            let c = &s3.credentials_secret_ref;
            let base = "spec.s3.credentialsSecretRef";
            check(
                errors,
                format!("{base}.namespace"),
                rules::dns1123_label(&c.namespace),
            );
            check(errors, format!("{base}.name"), rules::dns1123_label(&c.name));
            check(
                errors,
                format!("{base}.accessKeyIdKey"),
                rules::secret_key(&c.access_key_id_key),
            );
            check(
                errors,
                format!("{base}.secretAccessKeyKey"),
                rules::secret_key(&c.secret_access_key_key),
            );
        }
    }
}
