//! Which commit an Application built from Git runs: how `spec.source.git.ref` reads, when
//! the remote is asked again, and the image tag of a build.
//!
//! # Guarantees
//! - Pure functions of the spec, the annotation and the recorded [`BuildStatus`]: a restart
//!   takes the same decisions.
//! - The remote is asked only when nothing was resolved yet, when `metadata.generation`
//!   moved past the one the ref was resolved at, or when the `berth.dev/requested-at`
//!   annotation differs from the last one handled; Docker events alone never cause a fetch.
//! - The image tag names the commit and a hash of every other build input (context path,
//!   Dockerfile, build args), so a change of any of them is a new image and a rollout.

use berth_crds::kinds::application::{BuildStatus, GitBuild};
use sha2::{Digest, Sha256};

use crate::git::Reference;

/// Characters of the commit in image tags.
pub const COMMIT_LEN: usize = 12;
/// The repository part of built images' names (never pushed anywhere).
pub const REGISTRY: &str = "berth.local";

/// The references to try, in order, for `ref`: the default branch when unset; a 40- or
/// 64-hex string is a commit; `refs/heads/x` and `refs/tags/x` are what they say; any other
/// name is tried as a branch, then as a tag.
pub fn candidates(ref_: Option<&str>) -> Vec<Reference> {
    let Some(r) = ref_.map(str::trim).filter(|r| !r.is_empty()) else {
        return vec![Reference::Default];
    };
    if let Some(b) = r.strip_prefix("refs/heads/") {
        return vec![Reference::Branch(b.to_string())];
    }
    if let Some(t) = r.strip_prefix("refs/tags/") {
        return vec![Reference::Tag(t.to_string())];
    }
    if matches!(r.len(), 40 | 64) && r.chars().all(|c| c.is_ascii_hexdigit()) {
        return vec![Reference::Commit(r.to_ascii_lowercase())];
    }
    vec![Reference::Branch(r.to_string()), Reference::Tag(r.to_string())]
}

/// Why the remote is asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolve {
    /// Nothing was resolved yet.
    First,
    /// The spec changed since the ref was resolved.
    SpecChanged,
    /// The `berth.dev/requested-at` annotation changed (a push webhook, or a user).
    Requested,
}

/// Whether to resolve the ref now (see the module's guarantees); `None` keeps the recorded
/// commit.
pub fn resolve_needed(
    generation: i64,
    requested_at: Option<&str>,
    build: Option<&BuildStatus>,
) -> Option<Resolve> {
    let Some(b) = build.filter(|b| b.commit.is_some()) else {
        return Some(Resolve::First);
    };
    if b.resolved_generation != Some(generation) {
        return Some(Resolve::SpecChanged);
    }
    if requested_at.is_some() && requested_at != b.requested_at.as_deref() {
        return Some(Resolve::Requested);
    }
    None
}

/// `berth.local/<ns>-<name>:<commit 12>-<inputs 8>`: the image a build of `commit` is
/// tagged with.
pub fn image_tag(namespace: &str, name: &str, commit: &str, git: &GitBuild) -> String {
    let mut h = Sha256::new();
    h.update(git.path.as_deref().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(git.dockerfile.as_bytes());
    for (k, v) in &git.build_args {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([b'=']);
        h.update(v.as_bytes());
    }
    let inputs: String = h.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect();
    let short = &commit[..commit.len().min(COMMIT_LEN)];
    format!("{REGISTRY}/{namespace}-{name}:{short}-{inputs}")
}

/// The build context's directory in the repository (`""` for the root).
pub fn context_dir(git: &GitBuild) -> String {
    git.path
        .as_deref()
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_read_as_commit_branch_or_tag() {
        assert_eq!(candidates(None), [Reference::Default]);
        assert_eq!(candidates(Some(" ")), [Reference::Default]);
        let sha = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(
            candidates(Some(sha)),
            [Reference::Commit(sha.to_ascii_lowercase())]
        );
        let sha256 = "a".repeat(64);
        assert_eq!(candidates(Some(&sha256)), [Reference::Commit(sha256.clone())]);
        // Hex, but not a full SHA: a name like any other.
        assert_eq!(
            candidates(Some("cafe")),
            [Reference::Branch("cafe".into()), Reference::Tag("cafe".into())]
        );
        assert_eq!(
            candidates(Some("main")),
            [Reference::Branch("main".into()), Reference::Tag("main".into())]
        );
        assert_eq!(candidates(Some("refs/tags/v1")), [Reference::Tag("v1".into())]);
        assert_eq!(
            candidates(Some("refs/heads/dev")),
            [Reference::Branch("dev".into())]
        );
    }

    #[test]
    fn the_remote_is_asked_only_when_something_asks_for_it() {
        let built = BuildStatus {
            commit: Some("c1".into()),
            resolved_generation: Some(3),
            requested_at: Some("2026-01-01T00:00:00Z".into()),
            ..BuildStatus::default()
        };
        assert_eq!(resolve_needed(3, None, None), Some(Resolve::First));
        let unresolved = BuildStatus::default();
        assert_eq!(resolve_needed(3, None, Some(&unresolved)), Some(Resolve::First));
        // Health events, resyncs: same generation, same annotation.
        assert_eq!(
            resolve_needed(3, Some("2026-01-01T00:00:00Z"), Some(&built)),
            None
        );
        // The annotation removed is no request either.
        assert_eq!(resolve_needed(3, None, Some(&built)), None);
        assert_eq!(resolve_needed(4, None, Some(&built)), Some(Resolve::SpecChanged));
        assert_eq!(
            resolve_needed(3, Some("2026-01-01T00:00:05Z"), Some(&built)),
            Some(Resolve::Requested)
        );
    }

    #[test]
    fn image_tags_name_the_commit_and_change_with_every_build_input() {
        let git = GitBuild {
            url: "http://h/r.git".into(),
            dockerfile: "Dockerfile".into(),
            ..GitBuild::default()
        };
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let tag = image_tag("shop-production", "web", commit, &git);
        assert!(
            tag.starts_with("berth.local/shop-production-web:0123456789ab-"),
            "{tag}"
        );
        assert_eq!(tag, image_tag("shop-production", "web", commit, &git), "stable");
        let with_arg = GitBuild {
            build_args: [("V".to_string(), "1".to_string())].into(),
            ..git.clone()
        };
        let in_dir = GitBuild {
            path: Some("web".into()),
            ..git.clone()
        };
        let other_file = GitBuild {
            dockerfile: "Dockerfile.prod".into(),
            ..git.clone()
        };
        for other in [&with_arg, &in_dir, &other_file] {
            assert_ne!(tag, image_tag("shop-production", "web", commit, other));
        }
        // The url is not a build input: moving the repository rebuilds nothing.
        let moved = GitBuild {
            url: "http://elsewhere/r.git".into(),
            ..git.clone()
        };
        assert_eq!(tag, image_tag("shop-production", "web", commit, &moved));
        assert_eq!(context_dir(&in_dir), "web");
        assert_eq!(context_dir(&git), "");
        let dotted = GitBuild {
            path: Some("./web/".into()),
            ..git.clone()
        };
        assert_eq!(context_dir(&dotted), "web");
    }
}
