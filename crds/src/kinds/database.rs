//! `Database`: a managed database container (PostgreSQL, MySQL, Redis...) with its volume
//! and credentials.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kinds::application::{EnvVar, ResourceLimits};
use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A database engine. Its facts (image, port, commands) are the controllers' engine table
/// (`berth_controllers::database::engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseEngine {
    /// PostgreSQL.
    #[default]
    Postgresql,
    /// MySQL.
    Mysql,
    /// MariaDB.
    Mariadb,
    /// MongoDB.
    Mongodb,
    /// Redis.
    Redis,
    /// KeyDB.
    Keydb,
    /// Dragonfly.
    Dragonfly,
    /// ClickHouse.
    Clickhouse,
}

/// What happens to the data volume when the Database is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the volume.
    #[default]
    Retain,
    /// Delete the volume with the database.
    Delete,
}

/// A managed database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseSpec {
    /// The engine; immutable.
    pub engine: DatabaseEngine,
    /// The engine version (image tag), e.g. `16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A full image reference overriding `engine` + `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The Destination (server + network) to run on.
    pub destination: String,
    /// The data volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<DatabaseStorage>,
    /// Publishes the database on this host port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub public_port: Option<u16>,
    /// A Secret (same Environment) with the credentials; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<String>,
    /// What happens to the data volume on deletion.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Extra environment variables of the container (engine tuning); they may not override
    /// the credential variables the engine gets from the Secret (unless
    /// `injectCredentials` is false: then they are the container's whole environment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Arguments replacing the engine's default command arguments (e.g. `postgres -c
    /// max_connections=200`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// CPU and memory limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceLimits>,
    /// Extra DNS names of the container on the destination network, besides
    /// `<name>.<namespace>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_aliases: Vec<String>,
    /// Whether the engine's credential variables (from the credentials Secret) are put into
    /// the container's environment (default: true). When false the container gets `env` verbatim, and
    /// `credentialsSecretRef` (required then) still serves probes, backups and restores: it
    /// must hold what `env` sets up.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub inject_credentials: bool,
}

fn default_true() -> bool {
    true
}

impl Default for DatabaseSpec {
    fn default() -> Self {
        Self {
            engine: DatabaseEngine::default(),
            version: None,
            image: None,
            destination: String::new(),
            storage: None,
            public_port: None,
            credentials_secret_ref: None,
            deletion_policy: DeletionPolicy::default(),
            env: Vec::new(),
            args: Vec::new(),
            resources: None,
            network_aliases: Vec::new(),
            inject_credentials: true,
        }
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The data volume of a database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseStorage {
    /// The Docker volume name; `<namespace>-<name>-data` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
    /// The expected size, e.g. `10Gi` (informational; Docker volumes are not capped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// Observed state of a Database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The image running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `host:port` on the Destination's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_endpoint: Option<String>,
    /// The Secret holding the credentials (given or generated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// The connection URL with `$(username)`, `$(password)` and `$(database)` standing for
    /// the keys of `credentialsSecret` (never the password itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_url_template: Option<String>,
    /// `<server>:<port>` with `spec.publicPort`: the Server's name stands for its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_endpoint: Option<String>,
    /// The container running the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The data volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
}

impl Resource for DatabaseSpec {
    type Status = DatabaseStatus;
    const KIND: &'static str = "Database";
    const PLURAL: &'static str = "databases";
    const SINGULAR: &'static str = "database";
    const SHORT_NAMES: &'static [&'static str] = &["db", "dbs"];
    const NAMESPACED: bool = true;
    const IMMUTABLE_FIELDS: &'static [&'static str] = &["spec.engine", "spec.storage.volumeName"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Engine",
            type_: "string",
            json_path: ".spec.engine",
            description: "the database engine",
        },
        PrinterColumn {
            name: "Version",
            type_: "string",
            json_path: ".spec.version",
            description: "the engine version",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(
            errors,
            "spec.destination",
            rules::dns1123_label(&self.destination),
        );
        if let Some(v) = &self.version
            && (v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            errors.push(FieldError::invalid(
                "spec.version",
                "must be an image tag such as '16' or '8.4'",
            ));
        }
        if let Some(image) = &self.image {
            check(errors, "spec.image", rules::image_reference(image));
        }
        if let Some(s) = &self.storage {
            if let Some(v) = &s.volume_name {
                check(errors, "spec.storage.volumeName", rules::docker_name(v));
            }
            if let Some(size) = &s.size {
                check(errors, "spec.storage.size", rules::quantity(size));
            }
        }
        if let Some(c) = &self.credentials_secret_ref {
            check(errors, "spec.credentialsSecretRef", rules::dns1123_label(c));
        }
        if !self.inject_credentials && self.credentials_secret_ref.is_none() {
            errors.push(FieldError::required(
                "spec.credentialsSecretRef",
                "required when injectCredentials is false: probes, backups and restores log in with it",
            ));
        }
        for (i, alias) in self.network_aliases.iter().enumerate() {
            let field = format!("spec.networkAliases[{i}]");
            check(errors, &field, rules::docker_name(alias));
            if self.network_aliases[..i].contains(alias) {
                errors.push(FieldError::duplicate(field, format!("{alias:?} is listed twice")));
            }
        }
        EnvVar::validate_list(&self.env, errors);
        if let Some(r) = &self.resources {
            r.validate("spec.resources", errors);
        }
    }
}

crate::api_words! {
    /// The condition types of a Database.
    pub enum DatabaseCondition {
        /// Whether the engine answers its own readiness probe.
        Ready,
        /// Whether a (re)start is under way, and how it went.
        Progressing,
    }
}

crate::api_words! {
    /// The reasons of a Database's conditions and events; in the API a plain string.
    pub enum DatabaseReason {
        /// `spec.destination` names no Destination.
        DestinationNotFound,
        /// The destination's server cannot be reached.
        ServerUnavailable,
        /// A Secret (credentials or an env var's) or one of its keys does not exist.
        SecretNotFound,
        /// The credentials Secret lacks a required key.
        InvalidCredentials,
        /// `<name>-credentials` exists and is not owned by the Database.
        SecretConflict,
        /// The spec cannot be run (an env var overrides a credential variable).
        InvalidSpec,
        /// A container of the Database's name is not a berth Database container.
        ContainerConflict,
        /// The image could not be pulled.
        ImagePullFailed,
        /// The image is being pulled.
        PullingImage,
        /// The engine is starting and has not passed its probe yet.
        Starting,
        /// The engine did not pass its probe within the progress deadline.
        ProbeFailed,
        /// The engine answers its readiness probe.
        EngineReady,
        /// The current config runs and is ready.
        Available,
        /// Event: the credentials Secret was generated.
        CredentialsGenerated,
        /// Event: the container is replaced to run a changed config.
        Restarting,
        /// Event: the container was created and started.
        Started,
    }
}
