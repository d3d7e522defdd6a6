//! The Project controller: reports a Project's Environments in its status.
//!
//! # Guarantees
//! - Status holds `observedGeneration`, `environments` (sorted names of the Environments
//!   whose `spec.project` is this project) and `Ready=True` (reason `EnvironmentsReady`).
//! - Triggered by Projects and by Environments (mapped to their project through the
//!   Environment informer's `project` index); writes only when the status changed.

use std::sync::Arc;

use berth_crds::{
    Object,
    kinds::{EnvironmentSpec, ProjectSpec, project::ProjectStatus},
    meta::ConditionStatus,
};

use crate::{
    controller::{Action, Controller, ControllerConfig, Reconciler},
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
    status,
};
use berth_runtime::Api;

/// The controller's name (metrics, logs).
pub const NAME: &str = "project";

/// The Environment informer's index of `spec.project`.
pub const PROJECT_INDEX: &str = "project";

/// A failed Project reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles Projects.
pub struct ProjectReconciler {
    api: Api<ProjectSpec>,
    environments: Informer<EnvironmentSpec>,
}

/// Adds the Project controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig) {
    let projects = manager.informer::<ProjectSpec>();
    let environments = manager.informer::<EnvironmentSpec>();
    environments.add_index(PROJECT_INDEX, |env| vec![env.spec.project.clone()]);
    let controller = Controller::new(NAME, projects)
        .with_config(config)
        .watches(&environments, |env| vec![ObjectRef::cluster(&env.spec.project)]);
    let reconciler = ProjectReconciler {
        api: manager.api_for(NAME),
        environments,
    };
    manager.add(controller, reconciler);
}

#[async_trait::async_trait]
impl Reconciler<ProjectSpec> for ProjectReconciler {
    type Error = Error;

    async fn reconcile(&self, project: Arc<Object<ProjectSpec>>) -> Result<Action, Error> {
        if project.is_deleting() {
            return Ok(Action::await_change());
        }
        let generation = project.generation();
        let mut environments: Vec<String> = self
            .environments
            .by_index(PROJECT_INDEX, project.name())
            .iter()
            .map(|e| e.name().to_owned())
            .collect();
        environments.sort();
        let old = project.status.clone().unwrap_or_default();
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
        if status::update(&self.api, &project, &next).await? {
            tracing::debug!("status updated");
        }
        Ok(Action::await_change())
    }
}
