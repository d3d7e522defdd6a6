//! The Docker adapter: the only code in berth that knows Docker exists.
//!
//! Why this surface: reconcilers think in berth objects (an Application's
//! replicas, a Destination's network), not in Engine API payloads. So the adapter
//! offers a handful of verbs over typed values — [`ContainerSpec`] in,
//! [`ContainerState`] out, [`Event`]s carrying the owner's labels — and one
//! [`Error`] whose variants are the cases a reconciler branches on (`NotFound` ⇒
//! create, `Conflict` ⇒ adopt or rename, `Unreachable` ⇒ back off and mark the
//! Server not ready). bollard's types never leak, so the Engine API version, the
//! transport (socket today, SSH later: only [`Docker::connect`] changes) and
//! bollard's own upgrades stay behind this line. Every call is counted through
//! [`CallCounter`] so the runtime can export per-operation API rates; the adapter
//! never calls the daemon on its own, so at rest it costs nothing.
//!
//! # Guarantees
//! - Idempotent where a reconciler needs it: `start`/`stop` of a container already
//!   in that state, `ensure_network`, `ensure_volume`.
//! - Streams (events, logs, build, pull, exec output) end with an error rather than
//!   quietly when the daemon goes away.
//!
//! # Caveats
//! - Reconnecting streams is the caller's job.

mod build;
mod connect;
mod container;
mod copy;
mod error;
mod events;
mod exec;
mod image;
mod info;
mod labels;
mod logs;
mod network;
mod prune;
mod spec;
mod volume;

pub use build::{BuildEvent, BuildOptions, ContextEntry, MODE_SYMLINK, context_tar, with_labels};
pub use connect::{CallCounter, CallLabels, DEFAULT_URI, Docker, metered};
pub use container::{ContainerState, ContainerSummary, Health};
pub use error::{Error, Result};
pub use events::{Action, Event, ObjectType};
pub use exec::{ExecOutput, ExecRequest, ExecStream};
pub use image::{ImageInfo, PullProgress};
pub use info::EngineInfo;
pub use labels::{Labels, Owner};
pub use logs::{LogLine, LogOptions, OutputStream};
pub use network::NetworkInfo;
pub use prune::ImageAge;
pub use spec::{
    ContainerSpec, HealthCheck, MountSpec, NetworkAttachment, PortSpec, Probe, Protocol, RestartPolicy,
    Ulimit,
};
pub use volume::VolumeInfo;

/// The `dev.berth.*` label keys and [`Owner`].
pub mod label {
    pub use super::labels::{CONFIG_HASH, KIND, MANAGED, MANAGED_FILTER, NAME, NAMESPACE, REPLICA, RUN, UID};
}
