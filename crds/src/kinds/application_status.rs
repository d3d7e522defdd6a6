//! The status of an `Application`: its containers, build, phase, and the types and
//! reasons of its conditions (enums here, plain strings in the API).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;

/// Observed state of an Application.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions (`Ready`, `Progressing`, `Built`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The image actually running (built tag or resolved digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The registry digest of the image (`repo@sha256:...`), recorded when containers are
    /// created; absent for images that never came from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// For `git` sources, the commit of the image the application runs (or rolls out to):
    /// the latest successful build's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// For `git` sources, the latest build: which commit the ref resolved to, its image,
    /// and how the build went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildStatus>,
    /// Containers running.
    #[serde(default)]
    pub replicas: u32,
    /// Containers running and healthy.
    #[serde(default)]
    pub ready_replicas: u32,
    /// The URLs the application is served at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// `Pending`, `Progressing`, `Running`, `Degraded`, `Stopped` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub phase: Option<ApplicationPhase>,
    /// The application's containers. The Proxy routes the app's domains to those with
    /// `ready: true`, and only to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<AppContainer>,
}

crate::api_words! {
    /// Where an Application stands as a whole (`status.phase`); in the API a plain string.
    #[derive(Serialize, Deserialize)]
    pub enum ApplicationPhase {
        /// Nothing runs yet (a Git source whose first image is not built).
        Pending,
        /// A rollout runs: new replicas are not all ready yet.
        Progressing,
        /// Every replica of the current config is ready.
        Running,
        /// Something is wrong while something may still serve: a failed rollout (the previous
        /// version keeps serving) or a crash loop.
        Degraded,
        /// Zero replicas are asked for, and none runs.
        Stopped,
        /// The app cannot run as specified (destination, server, secret, image...).
        Failed,
    }
}

crate::api_words! {
    /// The condition types of an Application.
    pub enum AppCondition {
        /// Whether the app serves: its ready replicas answer (and its route is live).
        Ready,
        /// Whether a rollout (or a build, for Git sources) is under way, and how it went.
        Progressing,
        /// Whether something is wrong though the app may serve (failed rollout, crash loop).
        Degraded,
        /// For Git sources: how the latest build went.
        Built,
        /// For Git sources: whether the ref could be resolved.
        Fetched,
    }
}

crate::api_words! {
    /// The reasons of an Application's conditions (and of its events of the same name).
    pub enum AppReason {
        /// `spec.destination` names no Destination.
        DestinationNotFound,
        /// The destination's server cannot be reached.
        ServerUnavailable,
        /// An env var names a Secret or key that does not exist.
        SecretNotFound,
        /// A bind mount lies outside `--host-root`.
        HostPathForbidden,
        /// `spec.files` cannot be seeded here: no `--host-root`, or a server other than
        /// `localhost`.
        HostFilesDisabled,
        /// A file of `spec.files` could not be seeded on the server.
        HostFileFailed,
        /// An external volume of `spec.volumes` does not exist.
        ExternalVolumeMissing,
        /// A Git source has no image built yet.
        NoImage,
        /// The image could not be pulled.
        ImagePullFailed,
        /// The image is being pulled.
        PullingImage,
        /// The containers are ready but the proxy does not route to them yet.
        RouteNotLive,
        /// New replicas did not become ready within the progress deadline.
        HealthCheckFailed,
        /// The previous version serves while the new one is not ready.
        PreviousVersionServing,
        /// A replica keeps exiting.
        CrashLoopBackOff,
        /// Every replica is ready.
        ReplicasReady,
        /// The rollout finished.
        RolloutComplete,
        /// Nothing is wrong.
        Healthy,
        /// No replica is ready.
        ReplicasNotReady,
        /// New replicas are starting beside the old ones.
        RollingUpdate,
        /// Nothing to run yet.
        Pending,
        /// A Git source's image is being built.
        Building,
        /// A Git source's build failed.
        BuildFailed,
        /// A Git source's image was built.
        Built,
        /// Git sources are off (no Git cache directory).
        GitDisabled,
        /// The Git ref was resolved to a commit.
        Resolved,
        /// The Git ref could not be resolved.
        FetchFailed,
    }
}

/// How a build of a `git` source went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BuildPhase {
    /// The image is being built (the previous version keeps running).
    #[default]
    Building,
    /// The image exists; the application runs it or rolls out to it.
    Succeeded,
    /// The build (or fetching the commit) failed; see `message`. The previous version
    /// keeps running.
    Failed,
}

/// The latest build of a `git` source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildStatus {
    /// The commit `spec.source.git.ref` resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The image tag of that commit's build (`berth.local/<ns>-<name>:<commit>-<inputs>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// How the build went.
    #[serde(default)]
    pub phase: BuildPhase,
    /// When the build started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Docker's (or the Git server's) words when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The latest image built successfully: what the application runs, while a newer
    /// build runs or after one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_image: Option<String>,
    /// The `metadata.generation` at which the ref was last resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_generation: Option<i64>,
    /// The last `berth.dev/requested-at` annotation acted upon (a push webhook or
    /// `berth` asking for a fresh fetch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

/// One container of an Application, as the Proxy and users see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppContainer {
    /// The Docker container name (also a DNS name on the destination network).
    pub name: String,
    /// The replica index.
    pub replica: u32,
    /// Hash of the effective container configuration it was created from.
    pub config_hash: String,
    /// Whether it should receive traffic: running, healthy, and of the current config.
    pub ready: bool,
    /// How often berth restarted it after it exited (the crash-loop backoff's count).
    #[serde(default)]
    pub restarts: u32,
}
