//! The Service controller's vocabulary: the [`Plan`] decide returns, its [`Step`]s, and
//! the words (condition reasons, member reasons) the status carries.
//!
//! # Guarantees
//! - Every reason the controller writes is a variant here ([`ServiceReason`],
//!   [`MemberReason`]); nothing is spelled as a string literal elsewhere.
//! - A step names one write and carries everything it writes: act adds nothing.

use std::path::PathBuf;

use berth_compose::magic::Magic;
use berth_compose::model::DependencyCondition;
use berth_crds::Object;
use berth_crds::kinds::service::ServiceStatus;
use berth_crds::kinds::{ApplicationSpec, DatabaseSpec, DestinationSpec, SecretSpec};
use serde_json::Value;

/// The label naming the Service on every object it owns.
pub const SERVICE_LABEL: &str = "berth.dev/service";
/// The label naming the Service's namespace on every object it owns (the Destination is
/// cluster-scoped).
pub const SERVICE_NAMESPACE_LABEL: &str = "berth.dev/service-namespace";
/// The `spec.type` of the generated-values Secret.
pub const GENERATED_SECRET_TYPE: &str = "berth.dev/service-generated";
/// The `spec.type` of a Database member's login Secret.
pub const LOGIN_SECRET_TYPE: &str = "berth.dev/service-login";

berth_crds::api_words! {
    /// The condition types of a Service.
    pub enum ServiceCondition {
        /// Whether every member that counts for readiness is ready.
        Ready,
    }
}

berth_crds::api_words! {
    /// The reasons of a Service's `Ready` condition.
    pub enum ServiceReason {
        /// The compose file (or template) does not expand; nothing was changed.
        InvalidCompose,
        /// `spec.destination` names no Destination.
        DestinationNotFound,
        /// The Service's own Destination name is taken by one it does not own.
        DestinationConflict,
        /// The Service's own Destination is on another server than `spec.destination`'s
        /// (its fields are immutable): delete and re-create the Service to move it.
        DestinationMismatch,
        /// The Service's own Destination is being deleted; it is re-created once gone.
        DestinationDeleting,
        /// The generated-values Secret's name is taken by a Secret the Service does not own.
        SecretConflict,
        /// Some members are not ready (created, starting, or waiting for a dependency).
        MembersNotReady,
        /// Every member that counts is ready.
        MembersReady,
    }
}

berth_crds::api_words! {
    /// Why a member is not ready (`status.services[].reason`, before any detail).
    pub enum MemberReason {
        /// It is not created yet: a `depends_on` member is not up as asked.
        Waiting,
        /// It is being created.
        Creating,
        /// Its spec changed and was patched; the child has not caught up yet.
        Updating,
        /// An object of its name exists that the Service does not own; it is left alone.
        Conflict,
        /// An object of its name and of the other kind (Application/Database) is being
        /// removed first.
        Replacing,
        /// The child exists and is not ready (its own reason follows).
        NotReady,
    }
}

/// The kind of a member's child object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChildKind {
    /// An `Application`.
    Application,
    /// A `Database`.
    Database,
}

impl ChildKind {
    /// The kind as the API names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChildKind::Application => "Application",
            ChildKind::Database => "Database",
        }
    }
}

impl std::fmt::Display for ChildKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The compose word of a `depends_on` condition, as status names it.
pub const fn condition_word(c: DependencyCondition) -> &'static str {
    match c {
        DependencyCondition::Started => "service_started",
        DependencyCondition::Healthy => "service_healthy",
        DependencyCondition::CompletedSuccessfully => "service_completed_successfully",
    }
}

/// One write. Objects carry their ownerReference and labels already.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create a Secret.
    CreateSecret(Box<Object<SecretSpec>>),
    /// Merge-patch a Secret (only the keys that differ).
    PatchSecret {
        /// The Secret.
        name: String,
        /// The merge patch.
        patch: Value,
    },
    /// Delete a Secret the Service owns and no longer needs.
    DeleteSecret {
        /// The Secret.
        name: String,
    },
    /// Create the Service's own Destination.
    CreateDestination(Box<Object<DestinationSpec>>),
    /// Delete the Service's own Destination (finalizer, after the children are gone; its
    /// own finalizer removes the network once nothing is attached).
    DeleteDestination {
        /// The Destination.
        name: String,
    },
    /// Create directories on berth's own filesystem for relative compose binds.
    EnsureDirs(Vec<PathBuf>),
    /// Create an Application member.
    CreateApplication(Box<Object<ApplicationSpec>>),
    /// Create a Database member.
    CreateDatabase(Box<Object<DatabaseSpec>>),
    /// Merge-patch a member's child: only what changed.
    PatchChild {
        /// Its kind.
        kind: ChildKind,
        /// Its name.
        name: String,
        /// The merge patch (`{"spec": ...}`).
        patch: Value,
    },
    /// Delete a child the Service owns (a removed member, or one whose kind changed).
    DeleteChild {
        /// Its kind.
        kind: ChildKind,
        /// Its name.
        name: String,
    },
}

/// The generated-values Secret's missing values, to be generated and added (never
/// overwriting a value already there).
#[derive(Debug, Clone, PartialEq)]
pub struct Generate {
    /// The Secret, as created when it does not exist yet (its data is filled by act).
    pub secret: Box<Object<SecretSpec>>,
    /// The variables to generate, with what to generate.
    pub values: Vec<(String, Magic)>,
}

/// What one decision asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Generate missing magic values first; decide again afterwards.
    Generate(Generate),
    /// Run the steps (possibly none), then write the status.
    Converge {
        /// The writes, in order.
        steps: Vec<Step>,
        /// The status to write afterwards.
        status: Box<ServiceStatus>,
    },
}

/// What the finalizer's decision asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Cleanup {
    /// Run the steps (possibly none) and look again: children are still going away.
    Pending(Vec<Step>),
    /// Run the steps (possibly none: deleting the Destination), then the finalizer may go.
    Done(Vec<Step>),
}
