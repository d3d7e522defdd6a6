//! Manifests: reading `-f FILE|DIR|-`; splitting, validating and ordering the documents is
//! [`berth_crds::apply::manifest`]'s, shared with GitOps.
//!
//! # Guarantees
//! - [`load`] either returns every document, valid by the same `berth_crds` schemas the
//!   server uses, or fails naming the file, the document's index (1-based) and each field.
//! - [`Document`]s come back in dependency order (Projects, Environments, Secrets,
//!   infrastructure, then workloads), stable within a kind.
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

    // Parsing, validation and ordering are `berth_crds::apply::manifest`'s, tested there;
    // here only what reading files adds: the file's path in every document and message.
    #[test]
    fn documents_and_errors_name_the_file_they_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.yaml");
        let project = "apiVersion: berth.dev/v1\nkind: Project\nmetadata: {name: p}\nspec: {}\n";
        std::fs::write(&p, project).unwrap();
        let docs = load(std::slice::from_ref(&p), None).unwrap();
        assert_eq!(docs[0].source, p.display().to_string());
        std::fs::write(&p, format!("{project}---\nkind: [unclosed\n")).unwrap();
        let err = load(std::slice::from_ref(&p), None).unwrap_err().to_string();
        assert!(
            err.contains(&format!("{}, document 2: invalid YAML", p.display())),
            "{err}"
        );
    }
}
