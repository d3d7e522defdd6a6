//! Webhook receivers: a signed push notification asks for an immediate sync.
//!
//! `POST /hooks/git/{namespace}/{name}` requests a sync of a GitRepository;
//! `POST /hooks/apps/{namespace}/{name}` a fetch and build of an Application built from Git.
//! No bearer token: the signature is the authentication. The object's Source
//! (`spec.sourceRef` / `spec.source.git.sourceRef`) names the Secret key holding the webhook
//! secret; GitHub (and generic) Sources verify `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256
//! of the raw body), GitLab Sources `X-Gitlab-Token` (the secret itself).
//!
//! # Guarantees
//! - Comparisons are constant-time (`hmac`'s verify, `subtle`).
//! - Anything short of a valid signature — missing or wrong signature, unknown object, no
//!   Source, no secret — is the same 401 and changes nothing, so a caller learns nothing
//!   about which objects exist (the reason is logged).
//! - A valid request only sets the [`REQUESTED_AT`] annotation to the current time
//!   (level-triggered: the controller acts when it differs from the value it last handled),
//!   and answers 202.
//! - For Applications, a push payload's `ref` must be the app's branch (`spec.source.git.ref`,
//!   or any branch when unset); other pushes are answered 202 and ignored.
//!
//! # Caveats
//! - No replay protection beyond the signature: replaying a signed push only requests
//!   another (idempotent) sync.

use berth_crds::{
    Object, Resource,
    kinds::{ApplicationSpec, GitRepositorySpec, SecretSpec, SourceSpec, source::GitProvider},
    meta::REQUESTED_AT,
};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{
    error::{Error, Result},
    objects::{Api, WriteOptions, resolve},
    response::{Body, json_response},
};

/// Which kind a hook is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `/hooks/git/...`: a GitRepository.
    Git,
    /// `/hooks/apps/...`: an Application built from Git.
    App,
}

/// The one answer to every unauthenticated request.
fn unauthorized() -> Error {
    Error::Unauthorized("invalid or missing webhook signature".into())
}

/// Handles a webhook for `ns/name`; `body` is the raw request body.
pub async fn handle(
    api: &Api,
    hook: Hook,
    method: &Method,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>> {
    if method != Method::POST {
        return Err(Error::MethodNotAllowed(method.to_string()));
    }
    let deny = |why: &str| {
        tracing::warn!(hook = ?hook, namespace = ns, name, reason = why, "webhook refused");
        unauthorized()
    };
    let (kind, source_ref, branch) = match hook {
        Hook::Git => {
            let obj: Object<GitRepositorySpec> = match typed(api, Some(ns), name).await? {
                Some(o) => o,
                None => return Err(deny("no such gitrepository")),
            };
            ("GitRepository", obj.spec.source_ref, None)
        }
        Hook::App => {
            let obj: Object<ApplicationSpec> = match typed(api, Some(ns), name).await? {
                Some(o) => o,
                None => return Err(deny("no such application")),
            };
            let Some(git) = obj.spec.source.git else {
                return Err(deny("application is not built from git"));
            };
            ("Application", git.source_ref, Some(git.ref_))
        }
    };
    let Some(source_name) = source_ref else {
        return Err(deny("no sourceRef"));
    };
    let Some((provider, secret)) = webhook_secret(api, &source_name).await? else {
        return Err(deny("source has no readable webhook secret"));
    };
    if !verify(provider, headers, &body, secret.as_bytes()) {
        return Err(deny("bad signature"));
    }
    if let Some(branch) = branch {
        let pushed = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("ref").and_then(Value::as_str).map(str::to_owned));
        if !pushed
            .as_deref()
            .is_some_and(|p| branch_matches(branch.as_deref(), p))
        {
            tracing::info!(namespace = ns, name, pushed = ?pushed, "webhook push for another ref; ignored");
            return Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({"status": "ignored", "reason": "the push is not for the application's ref"}),
            ));
        }
    }
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT: now}}});
    api.patch(resolve(kind)?, Some(ns), name, patch, WriteOptions::default())
        .await?;
    tracing::info!(kind, namespace = ns, name, "webhook accepted; sync requested");
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"status": "accepted", "requestedAt": now}),
    ))
}

/// The object `[ns/]name` of `S`'s kind, typed; `None` when absent.
async fn typed<S: Resource>(api: &Api, ns: Option<&str>, name: &str) -> Result<Option<Object<S>>> {
    match api.get(resolve(S::KIND)?, ns, name).await {
        Ok(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| Error::Internal(format!("stored {} {name:?} does not parse: {e}", S::KIND))),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The provider and webhook secret of Source `name`, when it has a readable one.
async fn webhook_secret(api: &Api, name: &str) -> Result<Option<(GitProvider, String)>> {
    let Some(source) = typed::<SourceSpec>(api, None, name).await? else {
        return Ok(None);
    };
    let Some(r) = source.spec.webhook_secret_ref else {
        return Ok(None);
    };
    let Some(secret) = typed::<SecretSpec>(api, Some(&r.namespace), &r.name).await? else {
        return Ok(None);
    };
    Ok(secret
        .spec
        .data
        .get(&r.key)
        .filter(|s| !s.is_empty())
        .map(|s| (source.spec.provider, s.clone())))
}

/// Whether the request carries `secret`'s signature for `provider`.
pub fn verify(provider: GitProvider, headers: &HeaderMap, body: &[u8], secret: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match provider {
        GitProvider::Gitlab => {
            header("x-gitlab-token").is_some_and(|t| bool::from(t.as_bytes().ct_eq(secret)))
        }
        GitProvider::Github | GitProvider::Generic => {
            let Some(sig) = header("x-hub-signature-256").and_then(|s| s.strip_prefix("sha256=")) else {
                return false;
            };
            let Some(sig) = hex_decode(sig) else { return false };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        }
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether a push of `pushed` (`refs/heads/main`) is for an app following `branch`.
fn branch_matches(branch: Option<&str>, pushed: &str) -> bool {
    match branch {
        None => pushed.starts_with("refs/heads/"),
        Some(b) => {
            pushed == b
                || pushed.strip_prefix("refs/heads/") == Some(b)
                || pushed.strip_prefix("refs/tags/") == Some(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    #[test]
    fn github_signatures_are_hmac_sha256_of_the_body() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let good = sign(b"s3cret", body);
        assert!(verify(
            GitProvider::Github,
            &headers(&[("x-hub-signature-256", &good)]),
            body,
            b"s3cret"
        ));
        assert!(verify(
            GitProvider::Generic,
            &headers(&[("x-hub-signature-256", &good)]),
            body,
            b"s3cret"
        ));
        assert!(!verify(
            GitProvider::Github,
            &headers(&[("x-hub-signature-256", &good)]),
            b"other",
            b"s3cret"
        ));
        assert!(!verify(
            GitProvider::Github,
            &headers(&[("x-hub-signature-256", &good)]),
            body,
            b"wrong"
        ));
        assert!(!verify(GitProvider::Github, &headers(&[]), body, b"s3cret"));
        assert!(!verify(
            GitProvider::Github,
            &headers(&[("x-hub-signature-256", "sha256=zz")]),
            body,
            b"s3cret"
        ));
        assert!(!verify(
            GitProvider::Github,
            &headers(&[("x-gitlab-token", "s3cret")]),
            body,
            b"s3cret"
        ));
    }

    #[test]
    fn gitlab_tokens_equal_the_secret() {
        assert!(verify(
            GitProvider::Gitlab,
            &headers(&[("x-gitlab-token", "s3cret")]),
            b"",
            b"s3cret"
        ));
        assert!(!verify(
            GitProvider::Gitlab,
            &headers(&[("x-gitlab-token", "s3cre")]),
            b"",
            b"s3cret"
        ));
        assert!(!verify(GitProvider::Gitlab, &headers(&[]), b"", b"s3cret"));
    }

    #[test]
    fn app_pushes_match_their_branch() {
        assert!(branch_matches(None, "refs/heads/feature"));
        assert!(!branch_matches(None, "refs/tags/v1"));
        assert!(branch_matches(Some("main"), "refs/heads/main"));
        assert!(!branch_matches(Some("main"), "refs/heads/other"));
        assert!(branch_matches(Some("refs/heads/main"), "refs/heads/main"));
    }
}
