//! Reading the files of a fetched commit from the object database (blocking; libgit2).

use std::path::Path;

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use super::error::redact_url;
use super::{Error, File};

/// Every blob under `dir` of `commit` in the bare repository at `repo_dir`.
pub(super) fn files(repo_dir: &Path, url: &str, commit: &str, dir: &str) -> Result<Vec<File>, Error> {
    let not_found = || Error::CommitNotFound {
        commit: commit.to_string(),
        url: redact_url(url),
    };
    let repo = Repository::open_bare(repo_dir).map_err(|_| not_found())?;
    let oid = Oid::from_str(commit).map_err(|_| not_found())?;
    let root = repo
        .find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(|_| not_found())?;
    let dir = dir.trim_matches('/');
    let dir = if dir == "." { "" } else { dir };
    let tree = if dir.is_empty() {
        root
    } else {
        let path_err = || Error::PathNotFound {
            path: dir.to_string(),
            commit: commit.to_string(),
        };
        root.get_path(Path::new(dir))
            .and_then(|entry| entry.to_object(&repo))
            .and_then(|object| object.peel_to_tree())
            .map_err(|_| path_err())?
    };
    let mut files = Vec::new();
    let mut failure = None;
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        if entry.kind() != Some(ObjectType::Blob) {
            // Trees are descended into; submodule commits are skipped.
            return TreeWalkResult::Ok;
        }
        match repo.find_blob(entry.id()) {
            Ok(blob) => files.push(File {
                path: format!("{parent}{}", String::from_utf8_lossy(entry.name_bytes())),
                mode: u32::try_from(entry.filemode()).unwrap_or(0o100644),
                data: blob.content().to_vec(),
            }),
            Err(e) => {
                failure = Some(Error::Git(format!(
                    "reading blob {}: {}",
                    entry.id(),
                    e.message()
                )));
                return TreeWalkResult::Abort;
            }
        }
        TreeWalkResult::Ok
    })
    .map_err(|e| {
        failure
            .take()
            .unwrap_or_else(|| Error::Git(e.message().to_string()))
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(files)
}
