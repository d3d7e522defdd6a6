//! End-to-end tests of GitOps: the Git adapter over smart HTTP (`git http-backend` behind
//! `tests/common/git_http.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_controllers::git::{Credentials, Error as GitError, Reference, Repositories};
use common::git_http::GitServer;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn adapter_fetches_over_smart_http_shallow_and_repeatedly() {
    let server = GitServer::start();
    let repo = server.create_repo("manifests");
    let first = repo.commit("main", &[("apps/a.yaml", "a: 1\n"), ("README.md", "x")]);
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path().to_path_buf());
    let rt = runtime();
    rt.block_on(async {
        assert_eq!(
            repos.fetch(&repo.url, &Reference::Default, None).await.unwrap(),
            first
        );
        let files = repos.files(&repo.url, &first, "apps").await.unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "a.yaml");
        assert_eq!(files[0].data, b"a: 1\n");
        // http fetches are shallow: libgit2 recorded the shallow boundary.
        let cached: Vec<_> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(cached.len(), 1);
        assert!(cached[0].join("shallow").exists(), "not a shallow fetch");

        let second = repo.commit("main", &[("apps/b.yaml", "b: 2\n")]);
        let branch = Reference::Branch("main".into());
        assert_eq!(repos.fetch(&repo.url, &branch, None).await.unwrap(), second);
        let files = repos.files(&repo.url, &second, "apps").await.unwrap();
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["b.yaml"]
        );

        repo.tag("v1", &first);
        assert_eq!(
            repos
                .fetch(&repo.url, &Reference::Tag("v1".into()), None)
                .await
                .unwrap(),
            first
        );
        let err = repos
            .fetch(&repo.url, &Reference::Branch("absent".into()), None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::RefNotFound { .. }), "{err}");
    });
}

#[test]
fn adapter_uses_basic_auth_and_reports_a_wrong_password() {
    let server = GitServer::start_with_basic_auth("deploy", "correct-horse");
    let repo = server.create_repo("private");
    let sha = repo.commit("main", &[("a.yaml", "a: 1\n")]);
    let cache = tempfile::tempdir().unwrap();
    let repos = Repositories::new(cache.path().to_path_buf());
    let good = Credentials::Basic {
        username: "deploy".into(),
        password: "correct-horse".into(),
    };
    let bad = Credentials::Basic {
        username: "deploy".into(),
        password: "wrong-battery".into(),
    };
    runtime().block_on(async {
        let err = repos
            .fetch(&repo.url, &Reference::Default, None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
        let err = repos
            .fetch(&repo.url, &Reference::Default, Some(&bad))
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
        assert!(!err.to_string().contains("wrong-battery"), "{err}");
        assert_eq!(
            repos
                .fetch(&repo.url, &Reference::Default, Some(&good))
                .await
                .unwrap(),
            sha
        );
    });
}
