//! Fetching one reference of a remote into its bare cache repository (blocking; libgit2).

use std::path::Path;
use std::sync::{Arc, Mutex};

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, FetchOptions, Oid,
    RemoteCallbacks, Repository,
};

use super::credentials::{Credentials, host_key_matches};
use super::error::{redact_url, scrub};
use super::{Error, Reference};

/// How a remote URL is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Http,
    Ssh,
    Local,
}

fn transport(url: &str) -> Result<Transport, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: redact_url(url),
        reason: reason.to_string(),
    };
    match url.split_once("://") {
        Some(("https" | "http", _)) => Ok(Transport::Http),
        Some(("ssh", _)) => Ok(Transport::Ssh),
        Some(("file", _)) => Ok(Transport::Local),
        Some((scheme, _)) => Err(invalid(&format!(
            "scheme {scheme:?} is not https, http, ssh or file"
        ))),
        // scp-like `user@host:path`
        None if url.contains('@') && url.contains(':') => Ok(Transport::Ssh),
        None => Err(invalid(
            "expected https://, http://, ssh://, file:// or user@host:path",
        )),
    }
}

/// What the callbacks saw, read after a failed fetch to name the failure.
#[derive(Debug, Default)]
struct Seen {
    /// The remote asked for credentials and none (or none of an allowed type) were given.
    auth_missing: bool,
    /// The remote asked again after credentials were given: it refused them.
    auth_rejected: bool,
    /// The SSH host key did not match the known host; the host.
    host_key_mismatch: Option<String>,
}

/// Fetches `reference` of `url` into the bare repository at `dir` and returns its commit.
pub(super) fn fetch(
    dir: &Path,
    url: &str,
    reference: &Reference,
    creds: Option<&Credentials>,
) -> Result<String, Error> {
    let transport = transport(url)?;
    let repo = open_or_init(dir)?;
    let (refspecs, local, advertised) = match reference {
        Reference::Default => (
            vec!["+HEAD:refs/berth/default".to_string()],
            "refs/berth/default".to_string(),
            "HEAD".to_string(),
        ),
        Reference::Branch(b) => (
            vec![format!("+refs/heads/{b}:refs/berth/heads/{b}")],
            format!("refs/berth/heads/{b}"),
            format!("refs/heads/{b}"),
        ),
        Reference::Tag(t) => (
            vec![format!("+refs/tags/{t}:refs/berth/tags/{t}")],
            format!("refs/berth/tags/{t}"),
            format!("refs/tags/{t}"),
        ),
        Reference::Commit(c) => return fetch_commit(&repo, url, transport, c, creds),
    };
    let remote_refs = run_fetch(&repo, url, transport, &refspecs, creds, true)?;
    if !remote_refs.contains(&advertised) {
        return Err(Error::RefNotFound {
            reference: reference.to_string(),
            url: redact_url(url),
        });
    }
    let commit = repo
        .find_reference(&local)
        .and_then(|r| r.peel_to_commit())
        .map_err(|e| Error::RefNotFound {
            reference: format!("{reference} ({})", e.message()),
            url: redact_url(url),
        })?;
    Ok(commit.id().to_string())
}

fn fetch_commit(
    repo: &Repository,
    url: &str,
    transport: Transport,
    commit: &str,
    creds: Option<&Credentials>,
) -> Result<String, Error> {
    let not_found = || Error::CommitNotFound {
        commit: commit.to_string(),
        url: redact_url(url),
    };
    let oid = Oid::from_str(commit).map_err(|_| not_found())?;
    let present = |repo: &Repository| repo.find_commit(oid).is_ok();
    if present(repo) {
        return Ok(oid.to_string());
    }
    // Servers that allow unadvertised wants give us the one commit; others refuse it.
    let local = format!("refs/berth/commits/{oid}");
    match run_fetch(repo, url, transport, &[format!("+{oid}:{local}")], creds, true) {
        Ok(_) if present(repo) => return Ok(oid.to_string()),
        Ok(_) => {}
        Err(e @ (Error::AuthFailed { .. } | Error::HostKeyMismatch { .. })) => return Err(e),
        Err(e) => tracing::debug!(error = %e, "fetch by commit refused; fetching every branch and tag"),
    }
    let all = [
        "+refs/heads/*:refs/berth/all/heads/*".to_string(),
        "+refs/tags/*:refs/berth/all/tags/*".to_string(),
    ];
    run_fetch(repo, url, transport, &all, creds, false)?;
    if present(repo) {
        Ok(oid.to_string())
    } else {
        Err(not_found())
    }
}

/// One fetch of `refspecs`; returns the names the remote advertised.
fn run_fetch(
    repo: &Repository,
    url: &str,
    transport: Transport,
    refspecs: &[String],
    creds: Option<&Credentials>,
    shallow: bool,
) -> Result<Vec<String>, Error> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut callbacks = RemoteCallbacks::new();
    let creds_owned = creds.cloned();
    let seen_cb = seen.clone();
    let mut given = false;
    callbacks.credentials(move |_url, user_from_url, allowed| {
        let mut seen = seen_cb.lock().unwrap_or_else(|p| p.into_inner());
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user_from_url.unwrap_or("git"));
        }
        if given {
            seen.auth_rejected = true;
            return Err(git2::Error::new(
                ErrorCode::Auth,
                ErrorClass::Callback,
                "credentials rejected",
            ));
        }
        given = true;
        match &creds_owned {
            Some(Credentials::Basic { username, password })
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, password)
            }
            Some(Credentials::SshKey { private_key, .. }) if allowed.contains(CredentialType::SSH_KEY) => {
                Cred::ssh_key_from_memory(user_from_url.unwrap_or("git"), None, private_key, None)
            }
            _ => {
                seen.auth_missing = true;
                Err(git2::Error::new(
                    ErrorCode::Auth,
                    ErrorClass::Callback,
                    "authentication required but no usable credentials given",
                ))
            }
        }
    });
    let known_host = match creds {
        Some(Credentials::SshKey { known_host, .. }) => known_host.clone(),
        _ => None,
    };
    let seen_cert = seen.clone();
    callbacks.certificate_check(move |cert, host| {
        match (cert.as_hostkey().and_then(|k| k.hostkey()), &known_host) {
            (Some(key), Some(line)) => {
                if host_key_matches(line, key) {
                    Ok(CertificateCheckStatus::CertificateOk)
                } else {
                    let mut seen = seen_cert.lock().unwrap_or_else(|p| p.into_inner());
                    seen.host_key_mismatch = Some(host.to_string());
                    Err(git2::Error::new(
                        ErrorCode::Certificate,
                        ErrorClass::Ssh,
                        "host key mismatch",
                    ))
                }
            }
            _ => Ok(CertificateCheckStatus::CertificatePassthrough),
        }
    });
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks);
    options.download_tags(AutotagOption::None);
    if transport != Transport::Local {
        if shallow {
            options.depth(1);
        } else if repo.is_shallow() {
            // libgit2's GIT_FETCH_DEPTH_UNSHALLOW: deepen past an earlier shallow fetch.
            options.depth(i32::MAX);
        }
    }
    let mut remote = repo
        .remote_anonymous(url)
        .map_err(|e| map_error(e, url, creds, &seen))?;
    remote
        .fetch(refspecs, Some(&mut options), None)
        .map_err(|e| map_error(e, url, creds, &seen))?;
    let advertised = remote
        .list()
        .map_err(|e| map_error(e, url, creds, &seen))?
        .iter()
        .map(|head| head.name().to_string())
        .collect();
    Ok(advertised)
}

fn map_error(e: git2::Error, url: &str, creds: Option<&Credentials>, seen: &Mutex<Seen>) -> Error {
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let secrets = creds.map(Credentials::secrets).unwrap_or_default();
    let message = scrub(e.message(), &secrets).to_lowercase();
    let url = redact_url(url);
    if let Some(host) = &seen.host_key_mismatch {
        return Error::HostKeyMismatch { host: host.clone() };
    }
    if seen.auth_rejected {
        return Error::AuthFailed {
            url,
            message: "the remote refused the credentials".to_string(),
        };
    }
    if seen.auth_missing || e.code() == ErrorCode::Auth {
        return Error::AuthFailed { url, message };
    }
    match e.class() {
        ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssh | ErrorClass::Ssl | ErrorClass::Os => {
            Error::Transport { url, message }
        }
        ErrorClass::Repository if e.code() == ErrorCode::NotFound => Error::Transport { url, message },
        _ => Error::Git(format!("{url}: {message}")),
    }
}

/// The bare repository at `dir`, created (or re-created when unreadable) as needed.
fn open_or_init(dir: &Path) -> Result<Repository, Error> {
    let cache_err = |message: String| Error::Cache {
        path: dir.display().to_string(),
        message,
    };
    if dir.exists() {
        match Repository::open_bare(dir) {
            Ok(repo) => return Ok(repo),
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "unreadable git cache, re-creating it");
                std::fs::remove_dir_all(dir).map_err(|e| cache_err(e.to_string()))?;
            }
        }
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| cache_err(e.to_string()))?;
    }
    Repository::init_bare(dir).map_err(|e| cache_err(e.message().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_by_url() {
        assert_eq!(transport("https://h/r").unwrap(), Transport::Http);
        assert_eq!(transport("ssh://git@h/r").unwrap(), Transport::Ssh);
        assert_eq!(transport("git@github.com:o/r.git").unwrap(), Transport::Ssh);
        assert_eq!(transport("file:///tmp/r").unwrap(), Transport::Local);
        assert!(matches!(transport("ftp://h/r"), Err(Error::InvalidUrl { .. })));
        assert!(matches!(transport("/tmp/r"), Err(Error::InvalidUrl { .. })));
    }
}
