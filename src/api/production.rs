//! The one owner of the rule "every Project has a `<project>-production` Environment".
//!
//! # Guarantees
//! - [`environment_for`] is the Environment a Project must have: named
//!   `<project>-production`, display name `production`, labelled, and owned by the Project
//!   (controller, blocking its deletion). The API server creates it right after the Project
//!   ([`super::objects::Api::ensure_production_environment`]), and the garbage collector's
//!   housekeeping creates it again if it is ever missing ([`super::gc`]).
//! - [`protected_by`] names the Project whose production Environment an Environment is:
//!   admission refuses its deletion while that Project exists.
//! - [`MAX_PROJECT_NAME`] keeps `<project>-production` a valid DNS-1123 label.

use serde_json::{Value, json};

use super::object;

/// Suffix of a project's production environment name.
pub const PRODUCTION_SUFFIX: &str = "-production";
/// Longest project name whose production environment name is still a DNS-1123 label.
pub const MAX_PROJECT_NAME: usize = 63 - PRODUCTION_SUFFIX.len();

/// The name of `project`'s production Environment.
pub fn environment_name(project: &str) -> String {
    format!("{project}{PRODUCTION_SUFFIX}")
}

/// The production Environment `project` must have; `None` while the Project is being deleted.
pub fn environment_for(project: &Value) -> Option<Value> {
    if object::is_deleting(project) {
        return None;
    }
    let name = object::name(project);
    Some(json!({
        "apiVersion": berth_crds::API_VERSION,
        "kind": "Environment",
        "metadata": {
            "name": environment_name(name),
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
    }))
}

/// The Project whose production Environment `environment` is, if it is one.
pub fn protected_by(environment: &Value) -> Option<&str> {
    let project = environment.pointer("/spec/project").and_then(Value::as_str)?;
    (object::name(environment) == environment_name(project)).then_some(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_production_environment_of_a_project() {
        let project = json!({"metadata": {"name": "shop", "uid": "u1"}});
        let env = environment_for(&project).unwrap_or_default();
        assert_eq!(object::name(&env), "shop-production");
        assert_eq!(env.pointer("/metadata/ownerReferences/0/uid"), Some(&json!("u1")));
        assert_eq!(protected_by(&env), Some("shop"));
        let other = json!({"metadata": {"name": "shop-staging"}, "spec": {"project": "shop"}});
        assert_eq!(protected_by(&other), None);
        let deleting = json!({"metadata": {"name": "shop", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert!(environment_for(&deleting).is_none());
        assert_eq!(environment_name(&"a".repeat(MAX_PROJECT_NAME)).len(), 63);
    }
}
