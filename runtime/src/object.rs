//! Object keys ([`ObjectRef`]) and the kind of a type ([`info`]).
//!
//! # Guarantees
//! - An [`ObjectRef`] names one object of a known kind: namespace (for namespaced kinds) and
//!   name. It is the work queue's key and the cache's key.
//! - [`info`] is infallible: the registry entry of every berth kind, found by its type.

use std::fmt;

use berth_crds::{Object, Resource, registry::KindInfo};
use serde_json::Value;

/// The namespace and name of an object; the kind is implied by the cache or queue holding it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The Environment, for namespaced kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `name` in `namespace`.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// A reference to a cluster-scoped object.
    pub fn cluster(name: &str) -> Self {
        Self::new(None, name)
    }

    /// The reference of a typed object.
    pub fn of<K: Resource>(obj: &Object<K>) -> Self {
        Self::new(obj.metadata.namespace.as_deref(), &obj.metadata.name)
    }

    /// The reference of an object held as JSON.
    pub fn of_value(obj: &Value) -> Self {
        Self::new(berth_crds::json::namespace(obj), berth_crds::json::name(obj))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The registry entry of kind `K`.
pub fn info<K: Resource>() -> &'static KindInfo {
    berth_crds::registry::info::<K>()
}

/// The resourceVersion of a JSON object as a revision (0 when absent or not a number).
pub fn resource_version(obj: &Value) -> i64 {
    berth_crds::json::meta_str(obj, "resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// The resourceVersion of a typed object as a revision (0 when absent or not a number).
pub fn revision<K: Resource>(obj: &Object<K>) -> i64 {
    obj.metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_crds::kinds::ProjectSpec;
    use serde_json::json;

    #[test]
    fn refs_and_fields() {
        let obj: Object<ProjectSpec> = serde_json::from_value(json!({
            "apiVersion": "berth.dev/v1", "kind": "Project",
            "metadata": {"name": "web", "resourceVersion": "42", "generation": 3, "uid": "u",
                "labels": {"a": "b"}},
            "spec": {}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ObjectRef::of(&obj).to_string(), "web");
        assert_eq!(ObjectRef::new(Some("shop"), "web").to_string(), "shop/web");
        assert_eq!(revision(&obj), 42);
        assert_eq!(info::<ProjectSpec>().kind, "Project");
        let v = json!({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "7"}});
        assert_eq!(
            (ObjectRef::of_value(&v).to_string(), resource_version(&v)),
            ("n/a".into(), 7)
        );
    }
}
