//! The Project controller: reports a Project's Environments in its status.
//!
//! # Guarantees
//! - Status holds `observedGeneration`, `environments` (sorted names of the Environments
//!   whose `spec.project` is this project) and `Ready=True` (reason `EnvironmentsReady`).
//! - Triggered by Projects and by Environments (mapped to their project through the
//!   Environment informer's `project` index); writes only when the status changed.

use std::sync::Arc;

use berth_crds::{
    kinds::{ProjectSpec, project::ProjectStatus},
    meta::ConditionStatus,
    registry::KindInfo,
};
use serde_json::Value;

use crate::{
    client::Client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    informer::Informer,
    manager::Manager,
    object::{self, ObjectRef},
    status,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "project";

/// The Environment informer's index of `spec.project`.
pub const PROJECT_INDEX: &str = "project";

/// A failed Project reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kind berth needs is not registered.
    #[error("kind {0} is not registered")]
    MissingKind(&'static str),
    /// The cached object does not parse as a Project.
    #[error("project {name:?} is malformed: {source}")]
    Malformed {
        /// The project.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles Projects.
pub struct ProjectReconciler {
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    environments: Informer,
}

fn kind(name: &'static str) -> Result<&'static KindInfo, Error> {
    berth_crds::lookup(name).ok_or(Error::MissingKind(name))
}

fn env_project(env: &Value) -> Option<String> {
    env.pointer("/spec/project")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Adds the Project controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig) -> Result<(), Error> {
    let (projects_kind, envs_kind) = (kind("Project")?, kind("Environment")?);
    let projects = manager.informer(projects_kind);
    let environments = manager.informer(envs_kind);
    environments.add_index(PROJECT_INDEX, |env| env_project(env).into_iter().collect());
    let controller = Controller::new(NAME, projects)
        .with_config(config)
        .watches(&environments, |env| {
            env_project(env)
                .map(|p| ObjectRef::cluster(&p))
                .into_iter()
                .collect()
        });
    let reconciler = ProjectReconciler {
        client: manager.client_for(NAME),
        kind: projects_kind,
        environments,
    };
    manager.add(controller, reconciler);
    Ok(())
}

#[async_trait::async_trait]
impl Reconciler for ProjectReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Error> {
        if object::is_deleting(&obj) {
            return Ok(Action::await_change());
        }
        let name = object::name(&obj);
        let project = object::typed::<ProjectSpec>(&obj).map_err(|source| Error::Malformed {
            name: name.to_owned(),
            source,
        })?;
        let generation = object::generation(&obj);
        let mut environments: Vec<String> = self
            .environments
            .by_index(PROJECT_INDEX, name)
            .iter()
            .map(|e| object::name(e).to_owned())
            .collect();
        environments.sort();
        let old = project.status.unwrap_or_default();
        let mut next = ProjectStatus {
            observed_generation: Some(generation),
            conditions: old.conditions.clone(),
            environments,
        };
        let message = match next.environments.len() {
            1 => "1 environment".to_owned(),
            n => format!("{n} environments"),
        };
        status::set_now(
            &mut next.conditions,
            "Ready",
            ConditionStatus::True,
            "EnvironmentsReady",
            &message,
            generation,
        );
        if status::update::<ProjectSpec>(self.client.as_ref(), self.kind, &obj, &next).await? {
            tracing::debug!(project = name, "status updated");
        }
        Ok(Action::await_change())
    }
}
