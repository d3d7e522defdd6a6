//! The Git adapter: the only code in berth that knows Git exists.
//!
//! Why this surface: the GitRepository controller and Application builds need two verbs —
//! "which commit is this reference now" ([`Repositories::fetch`]) and "the files of that
//! commit under this directory" ([`Repositories::files`]) — not worktrees, indexes or
//! libgit2's types. Each remote URL gets one bare repository in the cache directory (named by
//! a hash of the URL); files are read straight from its object database, so nothing is ever
//! checked out and two commits can be read at once.
//!
//! # Guarantees
//! - Fetches of one URL are serialised (a per-URL lock in this process); different URLs
//!   fetch in parallel. libgit2 runs on tokio's blocking pool, never on a runtime thread.
//! - http(s) and ssh fetches are shallow (depth 1); `file://` (libgit2's local transport,
//!   which cannot deepen) fetches the whole history of the one reference.
//! - A reference that the remote no longer advertises is [`Error::RefNotFound`], even if an
//!   older fetch left it in the cache.
//! - Error messages never contain credentials (URLs lose their user-info, secrets are
//!   scrubbed from libgit2's words).
//!
//! # Caveats
//! - Two processes sharing one cache directory are not coordinated.
//! - A commit not reachable from an advertised branch or tag cannot be fetched by SHA from
//!   servers that refuse unadvertised wants; such a fetch falls back to every branch and
//!   tag, unshallow.
//! - Submodules are not fetched; their entries are skipped by [`Repositories::files`].

mod credentials;
mod error;
mod fetch;
mod tree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use credentials::Credentials;
pub use error::Error;

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The remote's default branch (its `HEAD`).
    Default,
    /// A branch by name.
    Branch(String),
    /// A tag by name (annotated tags are peeled to their commit).
    Tag(String),
    /// A full commit SHA.
    Commit(String),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => write!(f, "default branch"),
            Self::Branch(b) => write!(f, "branch {b:?}"),
            Self::Tag(t) => write!(f, "tag {t:?}"),
            Self::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

/// One file of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// The path relative to the requested directory, `/`-separated.
    pub path: String,
    /// The Git file mode: `0o100644`, `0o100755`, or `0o120000` for a symlink (whose `data`
    /// is the link target).
    pub mode: u32,
    /// The contents.
    pub data: Vec<u8>,
}

/// A cache of bare repositories, one per remote URL. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct Repositories {
    cache_dir: PathBuf,
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Repositories {
    /// A cache under `cache_dir` (created on first fetch).
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            locks: Arc::default(),
        }
    }

    /// Fetches `reference` (shallow where the transport allows) and returns its commit SHA.
    pub async fn fetch(
        &self,
        url: &str,
        reference: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<String, Error> {
        let lock = self.lock(url);
        let _guard = lock.lock().await;
        let (dir, url2, reference, creds) = (
            self.repo_dir(url),
            url.to_string(),
            reference.clone(),
            creds.cloned(),
        );
        tokio::task::spawn_blocking(move || fetch::fetch(&dir, &url2, &reference, creds.as_ref()))
            .await
            .map_err(|e| Error::Git(format!("fetch task failed: {e}")))?
    }

    /// Every file under `dir` (`""` = root) of an already-fetched commit, read from the
    /// object database (no worktree).
    pub async fn files(&self, url: &str, commit: &str, dir: &str) -> Result<Vec<File>, Error> {
        let lock = self.lock(url);
        let _guard = lock.lock().await;
        let (repo, url2, commit, dir) = (
            self.repo_dir(url),
            url.to_string(),
            commit.to_string(),
            dir.to_string(),
        );
        tokio::task::spawn_blocking(move || tree::files(&repo, &url2, &commit, &dir))
            .await
            .map_err(|e| Error::Git(format!("read task failed: {e}")))?
    }

    fn lock(&self, url: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(url.to_string()).or_default().clone()
    }

    fn repo_dir(&self, url: &str) -> PathBuf {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(url.as_bytes());
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.cache_dir.join(name)
    }
}

#[cfg(test)]
mod tests;
