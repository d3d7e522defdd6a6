//! The adapter against `file://` repositories made with git2 in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use git2::{Repository, Signature};

use super::*;

/// A non-bare "remote" with helpers to commit files to a branch.
struct Remote {
    _dir: tempfile::TempDir,
    repo: Repository,
    url: String,
}

impl Remote {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let url = format!("file://{}", dir.path().display());
        Self { _dir: dir, repo, url }
    }

    /// Commits exactly `files` (path, mode, contents) as the new tree of `branch`.
    fn commit(&self, branch: &str, files: &[(&str, i32, &str)]) -> String {
        let tree = self.tree(files);
        let sig = Signature::now("test", "test@example.invalid").unwrap();
        let refname = format!("refs/heads/{branch}");
        let parent = self
            .repo
            .find_reference(&refname)
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<_> = parent.iter().collect();
        let oid = self
            .repo
            .commit(
                Some(&refname),
                &sig,
                &sig,
                "test",
                &self.repo.find_tree(tree).unwrap(),
                &parents,
            )
            .unwrap();
        oid.to_string()
    }

    fn tree(&self, files: &[(&str, i32, &str)]) -> git2::Oid {
        // Build nested trees from '/'-separated paths.
        let mut tb = self.repo.treebuilder(None).unwrap();
        let mut subdirs: std::collections::BTreeMap<&str, Vec<(&str, i32, &str)>> = Default::default();
        for (path, mode, data) in files {
            match path.split_once('/') {
                Some((dir, rest)) => subdirs.entry(dir).or_default().push((rest, *mode, data)),
                None => {
                    let blob = self.repo.blob(data.as_bytes()).unwrap();
                    tb.insert(path, blob, *mode).unwrap();
                }
            }
        }
        for (dir, entries) in subdirs {
            let sub = self.tree(&entries);
            tb.insert(dir, sub, 0o040000).unwrap();
        }
        tb.write().unwrap()
    }

    fn tag(&self, name: &str, commit: &str, annotated: bool) {
        let obj = self
            .repo
            .find_object(git2::Oid::from_str(commit).unwrap(), None)
            .unwrap();
        if annotated {
            let sig = Signature::now("test", "test@example.invalid").unwrap();
            self.repo.tag(name, &obj, &sig, "release", false).unwrap();
        } else {
            self.repo.tag_lightweight(name, &obj, false).unwrap();
        }
    }
}

fn cache() -> (tempfile::TempDir, Repositories) {
    let dir = tempfile::tempdir().unwrap();
    let repos = Repositories::new(dir.path().join("git"));
    (dir, repos)
}

#[tokio::test]
async fn fetches_refs_and_reads_files_without_a_worktree() {
    let remote = Remote::new();
    let first = remote.commit(
        "main",
        &[
            ("README.md", 0o100644, "hi"),
            ("deploy/app.yaml", 0o100644, "kind: Application"),
            ("deploy/nested/run.sh", 0o100755, "#!/bin/sh"),
            ("deploy/link", 0o120000, "app.yaml"),
        ],
    );
    let (_dir, repos) = cache();
    let sha = repos.fetch(&remote.url, &Reference::Default, None).await.unwrap();
    assert_eq!(sha, first);
    assert_eq!(
        repos
            .fetch(&remote.url, &Reference::Branch("main".into()), None)
            .await
            .unwrap(),
        first
    );

    let mut files = repos.files(&remote.url, &sha, "deploy").await.unwrap();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let summary: Vec<_> = files
        .iter()
        .map(|f| (f.path.as_str(), f.mode, f.data.as_slice()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("app.yaml", 0o100644, &b"kind: Application"[..]),
            ("link", 0o120000, &b"app.yaml"[..]),
            ("nested/run.sh", 0o100755, &b"#!/bin/sh"[..]),
        ]
    );
    assert_eq!(repos.files(&remote.url, &sha, "").await.unwrap().len(), 4);
    assert_eq!(
        repos
            .files(&remote.url, &sha, "/deploy/nested/")
            .await
            .unwrap()
            .len(),
        1
    );

    // A new commit is seen by the next fetch; the old one stays readable.
    let second = remote.commit("main", &[("deploy/app.yaml", 0o100644, "kind: Secret")]);
    assert_eq!(
        repos.fetch(&remote.url, &Reference::Default, None).await.unwrap(),
        second
    );
    assert_eq!(
        repos.files(&remote.url, &second, "deploy").await.unwrap().len(),
        1
    );
    assert_eq!(repos.files(&remote.url, &first, "deploy").await.unwrap().len(), 3);
}

#[tokio::test]
async fn tags_and_commits() {
    let remote = Remote::new();
    let first = remote.commit("main", &[("a.yaml", 0o100644, "1")]);
    let second = remote.commit("main", &[("a.yaml", 0o100644, "2")]);
    remote.tag("v1", &first, true);
    remote.tag("light", &second, false);
    let (_dir, repos) = cache();
    assert_eq!(
        repos
            .fetch(&remote.url, &Reference::Tag("v1".into()), None)
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        repos
            .fetch(&remote.url, &Reference::Tag("light".into()), None)
            .await
            .unwrap(),
        second
    );

    let (_dir2, fresh) = cache();
    assert_eq!(
        fresh
            .fetch(&remote.url, &Reference::Commit(first.clone()), None)
            .await
            .unwrap(),
        first
    );
    let missing = "0123456789012345678901234567890123456789";
    let err = fresh
        .fetch(&remote.url, &Reference::Commit(missing.into()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CommitNotFound { .. }), "{err}");
}

#[tokio::test]
async fn missing_refs_commits_and_paths_are_errors() {
    let remote = Remote::new();
    let sha = remote.commit("main", &[("a.yaml", 0o100644, "1")]);
    remote.commit("feature", &[("b.yaml", 0o100644, "1")]);
    let (_dir, repos) = cache();
    let err = repos
        .fetch(&remote.url, &Reference::Branch("nope".into()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RefNotFound { .. }), "{err}");
    assert!(err.to_string().contains("branch \"nope\" not found"), "{err}");

    // A branch deleted upstream is gone, even though the cache still has it.
    repos
        .fetch(&remote.url, &Reference::Branch("feature".into()), None)
        .await
        .unwrap();
    remote
        .repo
        .find_reference("refs/heads/feature")
        .unwrap()
        .delete()
        .unwrap();
    let err = repos
        .fetch(&remote.url, &Reference::Branch("feature".into()), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RefNotFound { .. }), "{err}");

    repos.fetch(&remote.url, &Reference::Default, None).await.unwrap();
    let err = repos.files(&remote.url, &sha, "nope").await.unwrap_err();
    assert!(matches!(err, Error::PathNotFound { .. }), "{err}");
    let err = repos.files(&remote.url, &sha, "a.yaml").await.unwrap_err();
    assert!(matches!(err, Error::PathNotFound { .. }), "{err}");
    let err = repos
        .files(&remote.url, "0123456789012345678901234567890123456789", "")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CommitNotFound { .. }), "{err}");
    let err = repos.files("file:///never/fetched", &sha, "").await.unwrap_err();
    assert!(matches!(err, Error::CommitNotFound { .. }), "{err}");
}

#[tokio::test]
async fn unreachable_remotes_and_bad_urls() {
    let (dir, repos) = cache();
    let url = format!("file://{}", dir.path().join("absent").display());
    let err = repos.fetch(&url, &Reference::Default, None).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. } | Error::Git(_)), "{err}");
    let err = repos
        .fetch("ftp://user:hunter2@h/r", &Reference::Default, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn concurrent_fetches_of_one_url_do_not_collide() {
    let remote = Remote::new();
    let sha = remote.commit("main", &[("a.yaml", 0o100644, "1")]);
    let (_dir, repos) = cache();
    let fetches = (0..8).map(|_| {
        let (repos, url) = (repos.clone(), remote.url.clone());
        tokio::spawn(async move { repos.fetch(&url, &Reference::Default, None).await })
    });
    for f in futures::future::join_all(fetches).await {
        assert_eq!(f.unwrap().unwrap(), sha);
    }
    assert!(Path::new(&repos.repo_dir(&remote.url)).join("HEAD").exists());
}
