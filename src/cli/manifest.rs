//! Manifests: reading `-f FILE|DIR|-`; splitting, validating and ordering the documents is
//! [`berth_crds::apply::manifest`]'s, shared with GitOps.
//!
//! # Guarantees
//! - [`load`] either returns every document, valid by the same `berth_crds` schemas the
//!   server uses, or fails naming the file, the document's index (1-based) and each field.
//! - [`Document`]s come back in dependency order (Projects, Environments, infrastructure,
//!   Secrets, then workloads), stable within a kind.
//!
//! # Caveats
//! - Directories are read one level deep: `*.yaml`, `*.yml` and `*.json`, sorted by name.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use berth_crds::apply::manifest;
pub use berth_crds::apply::manifest::{Document, rank};

use super::error::{Error, Result};

/// Reads every manifest under `paths`, validates all documents, and returns them in
/// dependency order. `namespace` fills in a missing `metadata.namespace`.
pub fn load(paths: &[PathBuf], namespace: Option<&str>) -> Result<Vec<Document>> {
    let mut files = Vec::new();
    for p in paths {
        expand(p, &mut files)?;
    }
    manifest::documents(files.iter().map(|(s, t)| (s.as_str(), t.as_str())), namespace)
        .map_err(|e| Error::Manifest(e.to_string()))
}

fn expand(path: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let io = |e: std::io::Error| Error::Manifest(format!("{}: {e}", path.display()));
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(io)?;
        out.push(("-".into(), text));
        return Ok(());
    }
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
            })
            .collect();
        entries.sort();
        for e in entries {
            expand(&e, out)?;
        }
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    out.push((path.display().to_string(), text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Vec<Document>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.yaml");
        std::fs::write(&p, text).unwrap();
        load(&[p], Some("p-production"))
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
    fn duplicates_are_rejected() {
        let err = load_text(&format!("{PROJECT}---\n{PROJECT}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("appears twice"), "{err}");
    }
}
