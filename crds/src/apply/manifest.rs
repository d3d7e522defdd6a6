//! Manifests as text: splitting multi-document YAML, validating every document with the
//! kinds' schemas and ordering them by dependency.
//!
//! # Guarantees
//! - [`documents`] either returns every document, valid by the same schemas the server
//!   uses, or fails naming each bad document's file, index (1-based) and fields.
//! - [`Document`]s come back in dependency order (Projects, Environments, infrastructure,
//!   Secrets, then workloads), stable within a kind.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::json;
use crate::registry::{self, KindInfo};

/// Kinds in the order they are applied: what others refer to comes first.
const ORDER: &[&str] = &[
    "Project",
    "Environment",
    "Server",
    "Destination",
    "Proxy",
    "Source",
    "BackupStorage",
    "Notifier",
    "Secret",
    "Application",
    "Database",
    "Service",
    "BackupSchedule",
    "Backup",
    "Restore",
    "GitRepository",
];

/// Why a set of manifests cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Some documents are invalid; one line per problem, each naming file, document and field.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// The manifests hold no object.
    #[error("no objects found in the manifests")]
    Empty,
}

/// One object from a manifest, with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file (`-` for standard input).
    pub source: String,
    /// The document's position in its file, from 1.
    pub index: usize,
    /// Its kind.
    pub info: &'static KindInfo,
    /// The object, with the default namespace filled in and `status` dropped.
    pub object: Value,
}

impl Document {
    /// The object's name.
    pub fn name(&self) -> &str {
        json::name(&self.object)
    }

    /// The object's namespace (for namespaced kinds).
    pub fn namespace(&self) -> Option<&str> {
        self.info
            .namespaced
            .then(|| json::namespace(&self.object).unwrap_or_default())
    }

    /// Where the document is, for messages: `file, document 2 (Application web)`.
    pub fn origin(&self) -> String {
        format!(
            "{}, document {} ({} {})",
            self.source,
            self.index,
            self.info.kind,
            self.name()
        )
    }
}

/// Parses and validates every document of `files` (name, text) and returns them in
/// dependency order. `namespace` fills in a missing `metadata.namespace` of namespaced kinds.
pub fn documents<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
    namespace: Option<&str>,
) -> Result<Vec<Document>, Error> {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for (source, text) in files {
        parse(source, text, namespace, &mut docs, &mut errors);
    }
    let mut seen = BTreeSet::new();
    for d in &docs {
        let id = (d.info.kind, d.namespace().map(str::to_owned), d.name().to_owned());
        if !seen.insert(id) {
            errors.push(format!(
                "{}: the same object appears twice in the manifests",
                d.origin()
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    if docs.is_empty() {
        return Err(Error::Empty);
    }
    docs.sort_by_key(|d| rank(d.info));
    Ok(docs)
}

/// The position of `info`'s kind in the dependency order.
pub fn rank(info: &KindInfo) -> usize {
    ORDER.iter().position(|k| *k == info.kind).unwrap_or(ORDER.len())
}

fn parse(source: &str, text: &str, ns: Option<&str>, docs: &mut Vec<Document>, errors: &mut Vec<String>) {
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = match Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{source}, document {index}: invalid YAML: {e}"));
                // The parser cannot resynchronise after a syntax error.
                return;
            }
        };
        if value.is_null() {
            continue;
        }
        match document(source, index, value, ns) {
            Ok(d) => docs.push(d),
            Err(e) => errors.push(e),
        }
    }
}

fn document(source: &str, index: usize, mut value: Value, ns: Option<&str>) -> Result<Document, String> {
    let at = |what: &str| format!("{source}, document {index}{what}");
    let Some(map) = value.as_object_mut() else {
        return Err(format!(
            "{}: must be a mapping with apiVersion, kind, metadata and spec",
            at("")
        ));
    };
    let kind = match map.get("kind") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err(format!("{}: kind: Invalid value: must be a string", at(""))),
        None => {
            return Err(format!(
                "{}: kind: Required value: every object needs a kind",
                at("")
            ));
        }
    };
    let Some(info) = registry::kinds().iter().find(|k| k.kind == kind) else {
        let hint = registry::lookup(&kind)
            .map(|k| format!(" (did you mean {:?}?)", k.kind))
            .unwrap_or_default();
        return Err(format!(
            "{}: kind: Unsupported value: {kind:?} is not a berth kind{hint}",
            at("")
        ));
    };
    map.remove("status");
    if info.namespaced
        && let (Some(ns), Some(Value::Object(meta))) = (ns, map.get_mut("metadata"))
    {
        meta.entry("namespace")
            .or_insert_with(|| Value::String(ns.to_owned()));
    }
    let name = json::name(&value).to_owned();
    info.validate(&value)
        .map_err(|errs| format!("{}: {errs}", at(&format!(" ({kind} {name})"))))?;
    Ok(Document {
        source: source.to_owned(),
        index,
        info,
        object: value,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load_text(text: &str) -> Result<Vec<Document>, Error> {
        documents([("m.yaml", text)], Some("p-production"))
    }

    const APP: &str = "apiVersion: berth.dev/v1\nkind: Application\nmetadata: {name: web}\nspec: {source: {image: nginx}, destination: d}\n";
    const PROJECT: &str = "apiVersion: berth.dev/v1\nkind: Project\nmetadata: {name: p}\nspec: {}\n";

    #[test]
    fn documents_come_back_in_dependency_order_with_their_namespace() {
        let docs = load_text(&format!("{APP}---\n{PROJECT}")).unwrap();
        let kinds: Vec<&str> = docs.iter().map(|d| d.info.kind).collect();
        assert_eq!(kinds, ["Project", "Application"]);
        assert_eq!(docs[1].namespace(), Some("p-production"));
        assert_eq!(docs[1].index, 1);
    }

    #[test]
    fn an_invalid_document_names_file_index_and_field() {
        let bad = APP.replace("destination: d", "destination: d, replicas: many");
        let err = load_text(&format!("{PROJECT}---\n{bad}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.yaml, document 2 (Application web)"), "{err}");
        assert!(err.contains("spec.replicas"), "{err}");
    }

    #[test]
    fn unknown_kinds_and_bad_yaml_are_reported() {
        let err = load_text("apiVersion: berth.dev/v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("document 1: kind: Unsupported value: \"Pod\""),
            "{err}"
        );
        let err = load_text(&format!("{PROJECT}---\nkind: [unclosed\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("document 2: invalid YAML"), "{err}");
    }

    #[test]
    fn duplicates_and_empty_sets_are_rejected() {
        let err = load_text(&format!("{PROJECT}---\n{PROJECT}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("appears twice"), "{err}");
        assert_eq!(load_text("---\n").unwrap_err(), Error::Empty);
    }
}
