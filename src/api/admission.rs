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
//! - A Service is only stored if it expands ([`berth_compose::expand`]) into members whose
//!   bind mounts lie under the host root: otherwise `Invalid`, one cause per refusal, each
//!   naming the compose service and key (field `spec.compose`, `spec.template` or
//!   `spec.domains[i].service`). Dry runs are admitted the same way.
//!
//! # Caveats
//! - Host paths are checked when they are written: an update that leaves `spec.volumes`
//!   as it was passes even if the host root changed since (so that finalizers and labels
//!   can still be written); the Application controller checks again before it mounts.
//!   Likewise a Service update that leaves `spec` as it was is not expanded again.
//! - A Service is expanded with freshly generated placeholder magic values (the real ones
//!   live in its generated Secret, which admission does not read); values never decide
//!   whether a file expands.

use std::path::PathBuf;

use std::collections::BTreeMap;

use berth_compose::{
    expand::{self, Child, Expansion, Input},
    magic,
};
use berth_crds::{
    kinds::{EnvironmentSpec, ProjectSpec, ServiceSpec},
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
/// updates (unchanged host paths, and an unchanged Service spec, are not checked again).
pub fn admit_spec(policy: &Policy, info: &KindInfo, old: Option<&Value>, obj: &Value) -> Result<()> {
    match info.kind {
        "Application" => admit_application(policy, info, old, obj),
        "Service" => admit_service(policy, info, old, obj),
        _ => Ok(()),
    }
}

fn admit_application(policy: &Policy, info: &KindInfo, old: Option<&Value>, obj: &Value) -> Result<()> {
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

/// Expands a Service as its controller will, and refuses it when that fails or when a
/// member would bind-mount from outside the host root.
fn admit_service(policy: &Policy, info: &KindInfo, old: Option<&Value>, obj: &Value) -> Result<()> {
    let spec_value = obj.get("spec").cloned().unwrap_or(Value::Null);
    if old.is_some_and(|old| old.get("spec") == Some(&spec_value)) {
        return Ok(());
    }
    // Schema validation ran before admission, so this only fails on a server bug.
    let spec: ServiceSpec = serde_json::from_value(spec_value)
        .map_err(|e| Error::Internal(format!("a validated Service spec does not read: {e}")))?;
    let errors = match service_expansion(
        policy,
        object::namespace(obj).unwrap_or_default(),
        object::name(obj),
        &spec,
    )? {
        Ok(expansion) => member_host_paths(policy, &spec, &expansion),
        Err(e) => expansion_errors(&spec, &e),
    };
    if errors.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid {
        kind: info.kind.into(),
        name: object::name(obj).into(),
        errors: ValidationErrors(errors),
    })
}

/// Expands `spec` with placeholder generated values and the server's own host root (so
/// that relative bind sources are refused exactly when the server has no `--host-root`).
/// The outer error is the server's (the random source failed), the inner the Service's.
fn service_expansion(
    policy: &Policy,
    namespace: &str,
    name: &str,
    spec: &ServiceSpec,
) -> Result<std::result::Result<Expansion, expand::Error>> {
    let needed = match expand::needed(spec) {
        Ok(needed) => needed,
        Err(e) => return Ok(Err(e)),
    };
    let mut generated = BTreeMap::new();
    for (var, m) in needed {
        let value = magic::generate(&m).map_err(|e| Error::Internal(format!("generating {var}: {e}")))?;
        generated.insert(var, value);
    }
    Ok(expand::expand(Input {
        namespace,
        name,
        spec,
        generated: &generated,
        host_root: policy.host_root.as_deref(),
    }))
}

/// The field of `spec` that a compose-level problem belongs to.
fn compose_field(spec: &ServiceSpec) -> &'static str {
    if spec.template.is_some() {
        "spec.template"
    } else {
        "spec.compose"
    }
}

/// One field error per problem of a failed expansion.
fn expansion_errors(spec: &ServiceSpec, err: &expand::Error) -> Vec<FieldError> {
    let compose = compose_field(spec);
    let invalid = |field: &str, message: String| FieldError {
        field: field.into(),
        kind: FieldErrorKind::Invalid,
        message,
    };
    match err {
        expand::Error::UnknownTemplate(_) => {
            vec![invalid(
                "spec.template.name",
                strip(&err.to_string(), "spec.template.name"),
            )]
        }
        expand::Error::UnknownDomainService { index, .. } => {
            let field = format!("spec.domains[{index}].service");
            vec![invalid(&field, strip(&err.to_string(), &field))]
        }
        expand::Error::Refused(refusals) => {
            refusals.iter().map(|r| invalid(compose, r.to_string())).collect()
        }
        expand::Error::Interpolation(errs) => errs.iter().map(|m| invalid(compose, m.clone())).collect(),
        expand::Error::Yaml(_) | expand::Error::Member { .. } | expand::Error::Invalid { .. } => {
            vec![invalid(compose, strip(&err.to_string(), "spec.compose"))]
        }
    }
}

/// `message` without its leading `field: ` (the cause names the field already).
fn strip(message: &str, field: &str) -> String {
    message
        .strip_prefix(field)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message)
        .to_owned()
}

/// The members' bind mounts that the server's host root does not allow, named by compose
/// service and volume (the Application admission would refuse the child later).
fn member_host_paths(policy: &Policy, spec: &ServiceSpec, expansion: &Expansion) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for member in &expansion.members {
        let Child::Application(app) = &member.child else {
            continue;
        };
        for v in &app.volumes {
            let Some(path) = v.host_path.as_deref() else {
                continue;
            };
            if let Err((kind, message)) =
                berth_crds::rules::host_path_under(path, policy.host_root.as_deref())
            {
                errors.push(FieldError {
                    field: compose_field(spec).into(),
                    kind,
                    message: format!(
                        "services.{}: the bind mount to {:?}: {message}",
                        member.service, v.mount_path
                    ),
                });
            }
        }
    }
    errors
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(compose: &str) -> Value {
        json!({
            "metadata": {"name": "blog", "namespace": "p-production"},
            "spec": {"destination": "default", "compose": compose},
        })
    }

    fn causes(err: Error) -> Vec<FieldError> {
        match err {
            Error::Invalid { errors, .. } => errors.0,
            other => panic!("not Invalid: {other}"),
        }
    }

    #[test]
    fn a_service_that_does_not_expand_is_invalid_one_cause_per_refusal() {
        let info = registry::lookup("Service").unwrap();
        let policy = Policy::default();
        let bad = service("services:\n  a:\n    image: x\n    privileged: true\n    pid: host\n");
        let errors = causes(admit_spec(&policy, info, None, &bad).unwrap_err());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| e.field == "spec.compose"), "{errors:?}");
        assert!(
            errors[0].message.starts_with("services.a.privileged: "),
            "{errors:?}"
        );
        assert!(errors[1].message.starts_with("services.a.pid: "), "{errors:?}");
        // An update that leaves the spec as it was is not expanded again.
        assert!(admit_spec(&policy, info, Some(&bad), &bad).is_ok());

        let good = service("services:\n  a:\n    image: x\n    volumes:\n      - ./d:/d\n");
        let errors = causes(admit_spec(&policy, info, None, &good).unwrap_err());
        assert!(errors[0].message.contains("--host-root"), "{errors:?}");
        let rooted = Policy {
            host_root: Some(PathBuf::from("/srv/berth")),
        };
        assert!(admit_spec(&rooted, info, None, &good).is_ok());
        let outside = service("services:\n  a:\n    image: x\n    volumes:\n      - /etc:/etc\n");
        let errors = causes(admit_spec(&rooted, info, None, &outside).unwrap_err());
        assert_eq!(errors[0].kind, FieldErrorKind::Forbidden, "{errors:?}");
        assert!(
            errors[0]
                .message
                .starts_with("services.a: the bind mount to \"/etc\""),
            "{errors:?}"
        );
    }

    #[test]
    fn template_and_domain_problems_name_their_fields() {
        let info = registry::lookup("Service").unwrap();
        let policy = Policy::default();
        let unknown = json!({"metadata": {"name": "s", "namespace": "p-production"},
                             "spec": {"destination": "default", "template": {"name": "nope"}}});
        let errors = causes(admit_spec(&policy, info, None, &unknown).unwrap_err());
        assert_eq!(errors[0].field, "spec.template.name");
        assert!(
            errors[0].message.starts_with("no template \"nope\""),
            "{errors:?}"
        );
        let mut domains = service("services:\n  a:\n    image: x\n");
        domains["spec"]["domains"] = json!([{"service": "b", "host": "b.example.com"}]);
        let errors = causes(admit_spec(&policy, info, None, &domains).unwrap_err());
        assert_eq!(errors[0].field, "spec.domains[0].service");
        assert!(
            errors[0].message.starts_with("no compose service \"b\""),
            "{errors:?}"
        );
    }
}
