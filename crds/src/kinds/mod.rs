//! The berth kinds: one module per kind, holding its spec, status and semantic rules.

pub mod application;
mod application_container;
mod application_status;
pub mod backup;
pub mod backup_schedule;
pub mod backup_storage;
pub mod common;
pub mod database;
pub mod destination;
pub mod environment;
pub mod event;
pub mod git_repository;
pub mod notifier;
pub mod project;
pub mod proxy;
pub mod restore;
pub mod secret;
pub mod server;
pub mod service;
pub mod source;

use crate::resource::Object;

pub use application::ApplicationSpec;
pub use backup::BackupSpec;
pub use backup_schedule::BackupScheduleSpec;
pub use backup_storage::BackupStorageSpec;
pub use database::{DatabaseSpec, DeletionPolicy};
pub use destination::DestinationSpec;
pub use environment::EnvironmentSpec;
pub use event::EventSpec;
pub use git_repository::GitRepositorySpec;
pub use notifier::NotifierSpec;
pub use project::ProjectSpec;
pub use proxy::ProxySpec;
pub use restore::RestoreSpec;
pub use secret::SecretSpec;
pub use server::ServerSpec;
pub use service::ServiceSpec;
pub use source::SourceSpec;

/// A Project object.
pub type Project = Object<ProjectSpec>;
/// An Environment object.
pub type Environment = Object<EnvironmentSpec>;
/// A Server object.
pub type Server = Object<ServerSpec>;
/// A Destination object.
pub type Destination = Object<DestinationSpec>;
/// A Proxy object.
pub type Proxy = Object<ProxySpec>;
/// A Source object.
pub type Source = Object<SourceSpec>;
/// A Secret object.
pub type Secret = Object<SecretSpec>;
/// An Application object.
pub type Application = Object<ApplicationSpec>;
/// A Database object.
pub type Database = Object<DatabaseSpec>;
/// A BackupStorage object.
pub type BackupStorage = Object<BackupStorageSpec>;
/// A BackupSchedule object.
pub type BackupSchedule = Object<BackupScheduleSpec>;
/// A Backup object.
pub type Backup = Object<BackupSpec>;
/// A Restore object.
pub type Restore = Object<RestoreSpec>;
/// A Service object.
pub type Service = Object<ServiceSpec>;
/// A Notifier object.
pub type Notifier = Object<NotifierSpec>;
/// A GitRepository object.
pub type GitRepository = Object<GitRepositorySpec>;
/// An Event object.
pub type Event = Object<EventSpec>;
