//! `CustomResourceDefinition` documents (apiextensions.k8s.io/v1) for every berth kind.
//!
//! The CRDs are generated from the Rust types, checked in as `crds/<singular>.yaml`, and a
//! test fails when the checked-in files drift from the code (`make crds` rewrites them).
//!
//! # Guarantees
//! - Output is deterministic: keys are sorted and kinds come in [`crate::registry::kinds`]
//!   order.
//! - The `openAPIV3Schema` of `spec` and `status` is the exact schema
//!   [`KindInfo::validate`] enforces.
//!
//! # Caveats
//! - Object schemas carry `additionalProperties: false` so that berth rejects unknown fields
//!   with their name; a Kubernetes API server would refuse that keyword next to
//!   `properties` (it prunes unknown fields instead), so these CRDs document berth's API
//!   and are not meant for `kubectl apply` to a real cluster as they are.

use serde_json::{Value, json};

use crate::registry::{KindInfo, kinds};

/// Errors of CRD rendering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CRD could not be rendered as YAML.
    #[error("cannot render the crd as yaml: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// The CRD of `kind`.
pub fn crd(kind: &KindInfo) -> Value {
    let columns: Vec<Value> = kind
        .printer_columns
        .iter()
        .map(|c| json!({"name": c.name, "type": c.type_, "jsonPath": c.json_path, "description": c.description}))
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", kind.plural, crate::GROUP)},
        "spec": {
            "group": crate::GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": kind.list_kind(),
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": kind.short_names,
            },
            "scope": if kind.namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": crate::VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": kind.spec_schema(),
                        "status": kind.status_schema(),
                    },
                }},
            }],
        },
    })
}

/// The CRD of `kind` as a YAML document.
pub fn crd_yaml(kind: &KindInfo) -> Result<String, Error> {
    Ok(serde_yaml::to_string(&crd(kind))?)
}

/// The CRD file name of `kind`, e.g. `application.yaml`.
pub fn file_name(kind: &KindInfo) -> String {
    format!("{}.yaml", kind.singular)
}

/// Every kind's CRD as `(file name, YAML)`, in registry order.
pub fn all() -> Result<Vec<(String, String)>, Error> {
    kinds().iter().map(|k| Ok((file_name(k), crd_yaml(k)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_key(v: &Value, key: &str, path: String) -> Option<String> {
        match v {
            Value::Object(m) => m.iter().find_map(|(k, x)| {
                if k == key {
                    Some(format!("{path}.{k}"))
                } else {
                    find_key(x, key, format!("{path}.{k}"))
                }
            }),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| find_key(x, key, format!("{path}[{i}]"))),
            _ => None,
        }
    }

    #[test]
    fn crds_are_structural() {
        for k in kinds() {
            let c = crd(k);
            for key in [
                "$ref",
                "$defs",
                "definitions",
                "$schema",
                "oneOf",
                "anyOf",
                "const",
            ] {
                assert_eq!(find_key(&c, key, String::new()), None, "{} has {key}", k.kind);
            }
            assert_eq!(c["metadata"]["name"], format!("{}.berth.dev", k.plural));
            let schema = &c["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            assert_eq!(schema["properties"]["spec"]["type"], "object", "{}", k.kind);
            assert_eq!(schema["properties"]["status"]["type"], "object", "{}", k.kind);
        }
    }

    #[test]
    fn application_crd_has_names_scope_and_defaults() {
        let Some(app) = crate::registry::lookup("app") else {
            panic!("no Application kind")
        };
        let c = crd(app);
        assert_eq!(c["spec"]["scope"], "Namespaced");
        assert_eq!(c["spec"]["names"]["listKind"], "ApplicationList");
        assert_eq!(c["spec"]["names"]["shortNames"], json!(["app", "apps"]));
        let spec = &c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["properties"]["replicas"]["default"], 1);
        assert_eq!(spec["properties"]["restartPolicy"]["default"], "unless-stopped");
        assert_eq!(
            spec["properties"]["restartPolicy"]["enum"],
            json!(["always", "on-failure", "unless-stopped", "no"])
        );
        assert_eq!(
            spec["properties"]["ports"]["items"]["additionalProperties"],
            false
        );
        let Some(project) = crate::registry::lookup("project") else {
            panic!("no Project kind")
        };
        assert_eq!(crd(project)["spec"]["scope"], "Cluster");
    }
}
