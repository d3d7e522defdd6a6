//! The GitRepository controller: keeps the manifests of a Git repository applied, with
//! prune and self-heal, as Flux's Kustomization and Argo CD's Application do.
//!
//! Each sync fetches `spec.ref` (through [`crate::git`]), reads every `*.yaml`/`*.yml` under
//! `spec.path` (recursively), validates ALL documents with the kinds' schemas, dry-runs them
//! all through the API (admission included), and only then applies them in dependency order
//! with the same three-way merge as `berth apply` ([`berth_crds::apply`]). Every applied
//! object carries the labels `gitops.berth.dev/namespace` and `gitops.berth.dev/name`
//! naming its GitRepository, and is listed in `status.inventory`.
//!
//! # Guarantees
//! - One invalid document (schema, field rules, a namespace other than the GitRepository's,
//!   an object managed by another GitRepository, or a server-side refusal in the dry run)
//!   fails the sync with `Ready=False reason=ValidationFailed` naming file, document index
//!   and field, and a Warning event; nothing of that commit is applied.
//! - Namespaced objects default to the GitRepository's namespace and may not name another;
//!   cluster-scoped kinds (Projects, Destinations, ...) may be managed (berth has one admin).
//! - `prune` (default on) deletes objects of the previous inventory that left the repository
//!   AND still carry this GitRepository's labels — never anything else.
//! - `selfHeal` (default on) re-applies at every interval even when the commit did not move,
//!   so API edits to fields the repository sets are reverted (fields it does not set are left
//!   alone); with `selfHeal: false` a sync applies only when the commit or the spec changed
//!   or a sync was requested.
//! - `suspend` stops all syncing (`Ready=False reason=Suspended`); objects are left as they are.
//! - An immediate sync is requested by changing the [`REQUESTED_AT`] annotation (the webhook
//!   receiver does); the value handled is kept in status, so a restart loses no request.
//! - Level-triggered: a run syncs only when one is due (interval elapsed, spec changed, sync
//!   requested, or the last attempt failed), so its own status writes do not loop.
//!
//! # Caveats
//! - Deleting a GitRepository leaves what it applied in place (as Flux with `prune: false`);
//!   delete the objects by their labels if they should go too. No finalizer is needed since
//!   nothing outside the API is created.
//! - An object that left a repository with `prune: false` keeps its labels; another
//!   GitRepository refuses it (ValidationFailed, "already managed by") until they are removed.
//! - Another writer between the dry run and the writes can still make a write fail part-way
//!   (`reason=ApplyFailed`); what was applied stays in the inventory and the sync retries.

mod sync;

use std::{collections::BTreeSet, path::PathBuf, sync::Arc, time::Duration};

use berth_crds::{
    Object,
    kinds::{
        GitRepositorySpec, SecretSpec,
        event::EventType,
        git_repository::{GitRef, GitRepositoryReason as Reason, GitRepositoryStatus, InventoryEntry},
    },
    meta::{ConditionStatus, REQUESTED_AT},
    rules,
};

use self::sync::{Counts, Failure, Owner};
use crate::{
    client::{self, Client},
    controller::{Action, Controller, ControllerConfig, Reconciler},
    events::Recorder,
    git::{self, Credentials, Reference, Repositories},
    manager::Manager,
    status,
};
use berth_runtime::Api;

/// The controller's name (metrics, logs, `--disable-controller`).
pub const NAME: &str = "gitrepository";

/// A failed GitRepository reconcile (the condition says why; it retries with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sync failed.
    #[error("sync failed ({reason}): {message}")]
    Sync {
        /// The condition reason.
        reason: Reason,
        /// The condition message.
        message: String,
    },
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
}

/// Reconciles GitRepositories.
pub struct GitRepositoryReconciler {
    client: Arc<dyn Client>,
    api: Api<GitRepositorySpec>,
    secrets: Api<SecretSpec>,
    repos: Repositories,
    recorder: Recorder,
}

/// Adds the GitRepository controller to `manager`; bare repositories are cached under
/// `cache_dir`.
pub fn install(manager: &mut Manager, config: ControllerConfig, cache_dir: PathBuf) {
    let informer = manager.informer::<GitRepositorySpec>();
    let controller = Controller::new(NAME, informer).with_config(config);
    let reconciler = GitRepositoryReconciler {
        client: manager.client_for(NAME),
        api: manager.api_for(NAME),
        secrets: manager.api_for(NAME),
        repos: Repositories::new(cache_dir),
        recorder: Recorder::new(manager.client_for(NAME), "gitrepository-controller"),
    };
    manager.add(controller, reconciler);
}

/// The reference `spec.ref` names.
fn reference(r: Option<&GitRef>) -> Reference {
    match r {
        Some(GitRef { branch: Some(b), .. }) => Reference::Branch(b.clone()),
        Some(GitRef { tag: Some(t), .. }) => Reference::Tag(t.clone()),
        Some(GitRef { commit: Some(c), .. }) => Reference::Commit(c.clone()),
        _ => Reference::Default,
    }
}

fn short(commit: &str) -> String {
    commit.chars().take(7).collect()
}

impl GitRepositoryReconciler {
    async fn credentials(&self, ns: &str, secret: &str) -> Result<Credentials, Failure> {
        let invalid = |m: String| Failure::Fetch(git::Error::InvalidCredentials(m));
        let found = match self.secrets.within(Some(ns)).get(secret).await {
            Ok(found) => found,
            Err(client::Error::NotFound { .. }) => {
                return Err(invalid(format!("secret {secret:?} not found in {ns:?}")));
            }
            Err(e) => return Err(invalid(format!("secret {secret:?}: {e}"))),
        };
        Credentials::from_secret_data(&found.spec.data)
            .map_err(|e| invalid(format!("secret {secret:?}: {e}")))
    }

    async fn run(&self, obj: &Object<GitRepositorySpec>) -> Result<Action, Error> {
        let name = obj.name().to_owned();
        let ns = obj.namespace().unwrap_or_default().to_owned();
        if obj.is_deleting() {
            return Ok(Action::await_change());
        }
        let repo = obj;
        let spec = &repo.spec;
        let generation = obj.generation();
        let previous = repo.status.clone().unwrap_or_default();
        let mut next = previous.clone();
        next.observed_generation = Some(generation);
        let now = status::now();

        if spec.suspend {
            let message = match &previous.last_applied_commit {
                Some(c) => format!("syncing is suspended; last applied commit {}", short(c)),
                None => "syncing is suspended".to_string(),
            };
            status::set_condition(
                &mut next.conditions,
                "Ready",
                ConditionStatus::False,
                Reason::Suspended.as_str(),
                &message,
                generation,
                now,
            );
            status::update(&self.api, obj, &next).await?;
            return Ok(Action::await_change());
        }

        let interval = rules::parse_duration(&spec.interval).unwrap_or(Duration::from_secs(60));
        let requested = obj.metadata.annotations.get(REQUESTED_AT).cloned();
        let ready = berth_crds::meta::is_true(&previous.conditions, berth_crds::meta::ConditionType::Ready);
        let spec_changed = previous.observed_generation != Some(generation);
        let request_pending = requested != previous.last_handled_requested_at;
        let elapsed = previous
            .last_sync_time
            .map(|t| (now - t).to_std().unwrap_or(Duration::ZERO));
        let due_in = elapsed.map_or(Duration::ZERO, |e| interval.saturating_sub(e));
        if ready && !spec_changed && !request_pending && !due_in.is_zero() {
            return Ok(Action::requeue(due_in));
        }

        let owner = Owner {
            namespace: &ns,
            name: &name,
        };
        let result = self
            .sync(spec, &previous, owner, spec_changed || request_pending || !ready)
            .await;
        next.last_handled_requested_at = requested;
        let (state, reason, message) = match result {
            Ok(SyncResult {
                commit,
                counts,
                inventory,
                applied,
            }) => {
                if applied {
                    next.inventory = inventory;
                    next.managed_objects = u32::try_from(next.inventory.len()).unwrap_or(u32::MAX);
                    next.last_applied_commit = Some(commit.clone());
                    next.short_commit = Some(short(&commit));
                }
                next.last_attempted_commit = None;
                next.last_sync_time = Some(now);
                let message = if applied {
                    format!("applied commit {}: {counts}", short(&commit))
                } else {
                    format!("commit {} already applied (self-heal is off)", short(&commit))
                };
                if applied
                    && let Err(e) = self
                        .recorder
                        .publish(obj, EventType::Normal, Reason::Synced.as_str(), &message)
                        .await
                {
                    tracing::warn!(error = %e, "could not record the Synced event");
                }
                tracing::info!(commit = %short(&commit), %counts, applied, "synced");
                (ConditionStatus::True, Reason::Synced, message)
            }
            Err(SyncError {
                reason,
                failure,
                commit,
                inventory,
            }) => {
                if let Some(inventory) = inventory {
                    next.managed_objects = u32::try_from(inventory.len()).unwrap_or(u32::MAX);
                    next.inventory = inventory;
                }
                next.last_attempted_commit = commit.clone();
                let message = match &commit {
                    Some(c) => format!("commit {}: {failure}", short(c)),
                    None => failure.to_string(),
                };
                tracing::warn!(%reason, error = %message, "sync failed");
                if let Err(e) = self
                    .recorder
                    .publish(obj, EventType::Warning, reason.as_str(), &message)
                    .await
                {
                    tracing::warn!(error = %e, "could not record the {reason} event");
                }
                (ConditionStatus::False, reason, message)
            }
        };
        status::set_condition(
            &mut next.conditions,
            "Ready",
            state,
            reason.as_str(),
            &message,
            generation,
            now,
        );
        status::update(&self.api, obj, &next).await?;
        match state {
            ConditionStatus::True => Ok(Action::requeue(interval)),
            // The commit will not become valid by retrying: wait for the next poll (or push).
            _ if reason == Reason::ValidationFailed => Ok(Action::requeue(interval)),
            _ => Err(Error::Sync { reason, message }),
        }
    }

    /// Fetches, validates, dry-runs, applies and prunes. `force` applies even an unchanged
    /// commit with self-heal off.
    async fn sync(
        &self,
        spec: &GitRepositorySpec,
        previous: &GitRepositoryStatus,
        owner: Owner<'_>,
        force: bool,
    ) -> Result<SyncResult, SyncError> {
        let fail = |reason: Reason, failure: Failure, commit: Option<&str>| SyncError {
            reason,
            failure,
            commit: commit.map(str::to_owned),
            inventory: None,
        };
        let creds = match &spec.credentials_secret_ref {
            Some(secret) => Some(
                self.credentials(owner.namespace, secret)
                    .await
                    .map_err(|f| fail(Reason::CredentialsFailed, f, None))?,
            ),
            None => None,
        };
        let reference = reference(spec.ref_.as_ref());
        let commit = self
            .repos
            .fetch(&spec.url, &reference, creds.as_ref())
            .await
            .map_err(|e| {
                let reason = match e {
                    git::Error::AuthFailed { .. } => Reason::AuthFailed,
                    git::Error::RefNotFound { .. } | git::Error::CommitNotFound { .. } => Reason::RefNotFound,
                    _ => Reason::FetchFailed,
                };
                fail(reason, Failure::Fetch(e), None)
            })?;
        let unchanged = previous.last_applied_commit.as_deref() == Some(commit.as_str());
        if unchanged && !spec.self_heal && !force {
            return Ok(SyncResult {
                commit,
                counts: Counts::default(),
                inventory: previous.inventory.clone(),
                applied: false,
            });
        }
        let dir = spec.path.as_deref().unwrap_or_default();
        let docs = sync::load(&self.repos, &spec.url, &commit, dir, owner)
            .await
            .map_err(|f| {
                let reason = match f {
                    Failure::Fetch(git::Error::PathNotFound { .. }) => Reason::PathNotFound,
                    Failure::Fetch(_) => Reason::FetchFailed,
                    _ => Reason::ValidationFailed,
                };
                fail(reason, f, Some(&commit))
            })?;
        sync::dry_run(self.client.as_ref(), &docs, owner)
            .await
            .map_err(|f| {
                let reason = if matches!(f, Failure::Validation(_)) {
                    Reason::ValidationFailed
                } else {
                    Reason::ApplyFailed
                };
                fail(reason, f, Some(&commit))
            })?;
        let mut counts = Counts::default();
        let (applied, outcome) = sync::apply_all(self.client.as_ref(), &docs, &mut counts).await;
        let keep: BTreeSet<_> = docs.iter().map(sync::entry).collect();
        if let Err(failure) = outcome {
            // Keep tracking everything we may have created: the old inventory plus this run's.
            let mut inventory: BTreeSet<_> = previous.inventory.iter().cloned().collect();
            inventory.extend(applied);
            return Err(SyncError {
                reason: Reason::ApplyFailed,
                failure,
                commit: Some(commit),
                inventory: Some(inventory.into_iter().collect()),
            });
        }
        let mut inventory: BTreeSet<_> = applied.into_iter().collect();
        if spec.prune {
            let (kept, outcome) = sync::prune(
                self.client.as_ref(),
                &previous.inventory,
                &keep,
                owner,
                &mut counts,
            )
            .await;
            inventory.extend(kept);
            if let Err(failure) = outcome {
                return Err(SyncError {
                    reason: Reason::PruneFailed,
                    failure,
                    commit: Some(commit),
                    inventory: Some(inventory.into_iter().collect()),
                });
            }
        }
        Ok(SyncResult {
            commit,
            counts,
            inventory: inventory.into_iter().collect(),
            applied: true,
        })
    }
}

/// A successful sync.
struct SyncResult {
    commit: String,
    counts: Counts,
    inventory: Vec<InventoryEntry>,
    /// Whether documents were applied (false: the commit was unchanged and self-heal off).
    applied: bool,
}

/// A failed sync: the condition reason, what failed, at which commit, and the inventory to
/// record when it changed.
struct SyncError {
    reason: Reason,
    failure: Failure,
    commit: Option<String>,
    inventory: Option<Vec<InventoryEntry>>,
}

#[async_trait::async_trait]
impl Reconciler<GitRepositorySpec> for GitRepositoryReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Object<GitRepositorySpec>>) -> Result<Action, Self::Error> {
        self.run(&obj).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_from_spec() {
        assert_eq!(reference(None), Reference::Default);
        let r = GitRef {
            tag: Some("v1".into()),
            ..GitRef::default()
        };
        assert_eq!(reference(Some(&r)), Reference::Tag("v1".into()));
        assert_eq!(short("0123456789abcdef"), "0123456");
    }
}
