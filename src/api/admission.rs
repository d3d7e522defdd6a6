//! Admission rules beyond the schema: namespaces, projects and their production environment.
//!
//! # Guarantees
//! - A namespaced object is only created in an existing Environment that is not being deleted.
//! - Creating a Project creates its `<project>-production` Environment (display name
//!   `production`), owned by the Project; that Environment cannot be deleted while its
//!   Project exists, but its display name can change.
//! - An Application's bind mounts (`spec.volumes[].hostPath`) lie under the server's
//!   [`Policy::host_root`]; every offending volume is named in one `Invalid` answer.
//!
//! # Caveats
//! - Host paths are checked when they are written: an update that leaves `spec.volumes`
//!   as it was passes even if the host root changed since (so that finalizers and labels
//!   can still be written); the Application controller checks again before it mounts.

use std::path::PathBuf;

use berth_crds::{
    registry::KindInfo,
    validation::{FieldError, FieldErrorKind, ValidationErrors, check},
};
use serde_json::{Value, json};

use super::{
    error::{Error, Result},
    object,
    objects::{Api, WriteOptions, resolve},
};

/// Suffix of a project's production environment name.
pub const PRODUCTION_SUFFIX: &str = "-production";
/// Longest project name whose production environment name is still a DNS-1123 label.
pub const MAX_PROJECT_NAME: usize = 63 - PRODUCTION_SUFFIX.len();

/// This server's admission settings.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The only host directory Applications may bind-mount from; `None` disables bind mounts.
    pub host_root: Option<PathBuf>,
}

/// Checks what a spec asks of the host against [`Policy`]; `old` is the stored object on
/// updates (unchanged host paths are not checked again).
pub fn admit_spec(policy: &Policy, info: &KindInfo, old: Option<&Value>, obj: &Value) -> Result<()> {
    if info.kind != "Application" {
        return Ok(());
    }
    let volumes = obj.pointer("/spec/volumes");
    if old.is_some_and(|old| old.pointer("/spec/volumes") == volumes) {
        return Ok(());
    }
    let mut errors = Vec::new();
    for (i, v) in volumes
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(path) = v.get("hostPath").and_then(Value::as_str) {
            let rule = berth_crds::rules::host_path_under(path, policy.host_root.as_deref());
            check(&mut errors, format!("spec.volumes[{i}].hostPath"), rule);
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid {
        kind: info.kind.into(),
        name: object::name(obj).into(),
        errors: ValidationErrors(errors),
    })
}

/// Checks a create against the objects it depends on.
pub async fn admit_create(api: &Api, info: &KindInfo, obj: &Value) -> Result<()> {
    if info.namespaced {
        let ns = object::namespace(obj).unwrap_or_default();
        let env = api
            .get(resolve("Environment")?, None, ns)
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::NotFound {
                    kind: "environments".into(),
                    name: ns.into(),
                },
                other => other,
            })?;
        if object::is_deleting(&env) {
            return Err(Error::Forbidden(format!(
                "unable to create new content in environment {ns:?} because it is being deleted"
            )));
        }
    }
    match info.kind {
        "Project" if object::name(obj).len() > MAX_PROJECT_NAME => Err(field_error(
            info,
            obj,
            "metadata.name",
            &format!(
                "must be no more than {MAX_PROJECT_NAME} characters, so that its production environment \
                 {}{PRODUCTION_SUFFIX} is a valid name",
                object::name(obj)
            ),
        )),
        "Environment" => {
            let project = obj
                .pointer("/spec/project")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match api.get(resolve("Project")?, None, project).await {
                Ok(_) => Ok(()),
                Err(Error::NotFound { .. }) => Err(field_error(
                    info,
                    obj,
                    "spec.project",
                    &format!("project {project:?} not found"),
                )),
                Err(e) => Err(e),
            }
        }
        _ => Ok(()),
    }
}

/// Runs the side effects of a successful create: a Project gets its production Environment.
///
/// Failures are logged, not returned: the object exists, and the garbage collector's
/// housekeeping ensures the environment again on its next pass.
pub async fn after_create(api: &Api, info: &KindInfo, obj: &Value) {
    if info.kind == "Project"
        && let Err(e) = ensure_production_environment(api, obj).await
    {
        tracing::warn!(project = object::name(obj), error = %e, "could not create the production environment");
    }
}

/// Creates a project's production Environment unless it exists.
pub async fn ensure_production_environment(api: &Api, project: &Value) -> Result<()> {
    if object::is_deleting(project) {
        return Ok(());
    }
    let name = object::name(project);
    let env = json!({
        "apiVersion": berth_crds::API_VERSION,
        "kind": "Environment",
        "metadata": {
            "name": format!("{name}{PRODUCTION_SUFFIX}"),
            "labels": {"berth.dev/project": name, "berth.dev/production": "true"},
            "ownerReferences": [{
                "apiVersion": berth_crds::API_VERSION,
                "kind": "Project",
                "name": name,
                "uid": object::uid(project),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {"project": name, "displayName": "production"},
    });
    match Box::pin(api.create(resolve("Environment")?, None, env, WriteOptions::default())).await {
        Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Checks a delete: a project's production environment stays while the project exists.
pub async fn admit_delete(api: &Api, info: &KindInfo, obj: &Value) -> Result<()> {
    if info.kind != "Environment" {
        return Ok(());
    }
    let project = obj
        .pointer("/spec/project")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if object::name(obj) != format!("{project}{PRODUCTION_SUFFIX}") {
        return Ok(());
    }
    match api.get(resolve("Project")?, None, project).await {
        Ok(p) if !object::is_deleting(&p) => Err(Error::Forbidden(format!(
            "environment {:?} is the production environment of project {project:?} and cannot be \
             deleted while the project exists (its displayName can be changed)",
            object::name(obj)
        ))),
        Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn field_error(info: &KindInfo, obj: &Value, field: &str, message: &str) -> Error {
    Error::Invalid {
        kind: info.kind.into(),
        name: object::name(obj).into(),
        errors: ValidationErrors(vec![FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid,
            message: message.into(),
        }]),
    }
}
