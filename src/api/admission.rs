//! Admission rules beyond the schema: namespaces, projects and their production environment.
//!
//! Admission only reads, through the narrow [`Lookup`]; the writes that follow a create (a
//! Project's production Environment, [`super::production`]) are the API layer's.
//!
//! # Guarantees
//! - A namespaced object is only created in an existing Environment that is not being deleted.
//! - An Environment is only created in an existing Project; a project's production
//!   Environment cannot be deleted while its Project exists, but its display name can change.
//! - An Application's bind mounts (`spec.volumes[].hostPath`) lie under the server's
//!   [`Policy::host_root`]; every offending volume is named in one `Invalid` answer.
//!
//! # Caveats
//! - Host paths are checked when they are written: an update that leaves `spec.volumes`
//!   as it was passes even if the host root changed since (so that finalizers and labels
//!   can still be written); the Application controller checks again before it mounts.

use std::path::PathBuf;

use berth_crds::{
    kinds::{EnvironmentSpec, ProjectSpec},
    registry::{self, KindInfo},
    validation::{FieldError, FieldErrorKind, ValidationErrors, check},
};
use serde_json::Value;

use super::{
    error::{Error, Result},
    object,
    production::{self, MAX_PROJECT_NAME, PRODUCTION_SUFFIX},
};

/// The reads admission needs: one stored object by kind, namespace and name.
#[async_trait::async_trait]
pub trait Lookup: Send + Sync {
    /// The stored object, or [`Error::NotFound`].
    async fn lookup(&self, kind: &'static KindInfo, ns: Option<&str>, name: &str) -> Result<Value>;
}

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
pub async fn admit_create(api: &dyn Lookup, info: &KindInfo, obj: &Value) -> Result<()> {
    if info.namespaced {
        let ns = object::namespace(obj).unwrap_or_default();
        let env = api
            .lookup(registry::info::<EnvironmentSpec>(), None, ns)
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
            match api.lookup(registry::info::<ProjectSpec>(), None, project).await {
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

/// Checks a delete: a project's production environment stays while the project exists.
pub async fn admit_delete(api: &dyn Lookup, info: &KindInfo, obj: &Value) -> Result<()> {
    if info.kind != "Environment" {
        return Ok(());
    }
    let Some(project) = production::protected_by(obj) else {
        return Ok(());
    };
    match api.lookup(registry::info::<ProjectSpec>(), None, project).await {
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
