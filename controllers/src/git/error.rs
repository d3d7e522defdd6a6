//! The Git adapter's one error type, mapped once from libgit2's errors.

/// What can go wrong fetching or reading a Git repository.
///
/// Messages never carry credentials: URLs are shown without their user-info and libgit2's
/// own words are scrubbed of the secret values in use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The branch, tag or commit does not exist in the remote repository.
    #[error("{reference} not found in {url}")]
    RefNotFound {
        /// The reference, e.g. `branch "main"`.
        reference: String,
        /// The repository URL (without credentials).
        url: String,
    },
    /// A commit was asked for that has not been fetched (or does not exist).
    #[error("commit {commit} not found in {url}")]
    CommitNotFound {
        /// The commit SHA.
        commit: String,
        /// The repository URL (without credentials).
        url: String,
    },
    /// The directory does not exist in the commit (or is a file).
    #[error("path {path:?} not found in commit {commit}")]
    PathNotFound {
        /// The directory asked for.
        path: String,
        /// The commit SHA.
        commit: String,
    },
    /// The remote refused the credentials, or wanted some and none were given.
    #[error("authentication failed for {url}: {message}")]
    AuthFailed {
        /// The repository URL (without credentials).
        url: String,
        /// What the transport reported.
        message: String,
    },
    /// The SSH host key did not match the configured known host.
    #[error("host key of {host} does not match the known host")]
    HostKeyMismatch {
        /// The host that was connected to.
        host: String,
    },
    /// The remote could not be reached or the transfer broke.
    #[error("transport error for {url}: {message}")]
    Transport {
        /// The repository URL (without credentials).
        url: String,
        /// What the transport reported.
        message: String,
    },
    /// The URL is not one the adapter can fetch (scheme or syntax).
    #[error("unsupported repository url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (without credentials).
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A Secret's keys do not form credentials.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// The local repository cache could not be used.
    #[error("repository cache {path}: {message}")]
    Cache {
        /// The cache directory.
        path: String,
        /// What failed.
        message: String,
    },
    /// Any other libgit2 failure.
    #[error("git error: {0}")]
    Git(String),
}

/// `url` without a `user:password@` part, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://{}", &rest[at + 1..]);
        }
    }
    url.to_string()
}

/// `message` with every occurrence of each secret replaced by `***`.
pub(crate) fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(*s, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_user_info() {
        assert_eq!(redact_url("https://u:p@h/r.git"), "https://h/r.git");
        assert_eq!(redact_url("https://h/a@b"), "https://h/a@b");
        assert_eq!(redact_url("git@host:path"), "git@host:path");
        assert_eq!(scrub("bad token s3cret here", &["s3cret"]), "bad token *** here");
    }
}
