//! The Git step of an Application reconcile: resolve `spec.source.git.ref` when something
//! asks for it ([`revision`]), start a background build ([`build`]) when the commit's image
//! does not exist yet, record the outcome in `status.build`, and name the image to run.
//!
//! # Guarantees
//! - The image to run is the latest one built successfully (`status.build.latestImage`):
//!   while a newer commit builds, or after its build failed, the previous version keeps
//!   running and is repaired like any image app's.
//! - Everything decided lives in `status.build`; what only this process knows (a build
//!   running, an outcome not recorded yet) is recovered after a restart: a build found
//!   `Building` with no task here is looked up in Docker (the image exists: done) or started
//!   again.
//! - After a successful build, the Application's other built images are removed except the
//!   previous one (images still used by a container stay).
//!
//! # Caveats
//! - Fetching (resolving the ref) runs inside the reconcile: a slow Git server holds one
//!   worker for the fetch; the build itself does not.
//! - `spec.source.git.sourceRef` does not give fetch credentials yet: private repositories
//!   need a URL the server can fetch without them.

use std::sync::Arc;

use berth_crds::{
    Object,
    kinds::{
        ApplicationSpec,
        application::{AppCondition, AppReason, ApplicationStatus, BuildPhase, BuildStatus, GitBuild},
    },
    meta::{ConditionStatus, REQUESTED_AT},
};
use chrono::{DateTime, Utc};

use super::{
    AppReconciler, Error,
    build::{Outcome, Request},
    revision::{self, COMMIT_LEN},
    set,
};
use crate::{
    docker::{Docker, Labels, Owner, label},
    git::{self, Reference},
    object::ObjectRef,
    status,
};

/// Label of built images: the commit they were built from.
pub const COMMIT_LABEL: &str = "dev.berth.commit";

/// The reason of a `Progressing` condition that says a build runs; such a condition never
/// times a rollout (see [`take_building`]).
pub const BUILDING: &str = AppReason::Building.as_str();

/// What the Git step decided.
pub(super) struct Step {
    /// The image to run: the latest successful build, if any.
    pub image: Option<String>,
    /// A failed fetch, returned after converging so that it retries with backoff.
    pub fetch_error: Option<Error>,
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(COMMIT_LEN)]
}

impl AppReconciler {
    /// Resolves, builds and records (see the module docs); writes `next.build`, `next.commit`
    /// and the `Built` condition.
    pub(super) async fn git_step(
        &self,
        obj: &Arc<Object<ApplicationSpec>>,
        git: &GitBuild,
        owner: &Owner,
        docker: &Docker,
        next: &mut ApplicationStatus,
    ) -> Result<Step, Error> {
        let Some(builder) = &self.builder else {
            let message = "berth runs without a Git cache directory: Git sources are off";
            set(
                next,
                "Built",
                ConditionStatus::False,
                "GitDisabled",
                message,
                obj.generation(),
            );
            return Ok(Step {
                image: None,
                fetch_error: None,
            });
        };
        let key = ObjectRef::of(obj);
        let generation = obj.generation();
        let requested = obj.metadata.annotations.get(REQUESTED_AT).map(String::as_str);
        let mut b = next.build.clone().unwrap_or_default();
        let mut fetch_error = None;
        if let Some(why) = revision::resolve_needed(generation, requested, next.build.as_ref()) {
            match self.resolve(git).await {
                Ok(commit) => {
                    let image = revision::image_tag(&owner.namespace, &owner.name, &commit, git);
                    tracing::info!(?why, %commit, %image, "resolved the git ref");
                    if b.image.as_deref() != Some(image.as_str()) || b.phase == BuildPhase::Failed {
                        b.commit = Some(commit.clone());
                        b.image = Some(image);
                        b.phase = BuildPhase::Building;
                        b.started_at = None;
                        b.finished_at = None;
                        b.message = None;
                    }
                    b.resolved_generation = Some(generation);
                    b.requested_at = requested.map(str::to_owned);
                    let what = git.ref_.as_deref().unwrap_or("the default branch");
                    let message = format!("{what} is commit {commit}");
                    set(
                        next,
                        "Fetched",
                        ConditionStatus::True,
                        "Resolved",
                        &message,
                        generation,
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot resolve the git ref; retrying with backoff");
                    set(
                        next,
                        "Fetched",
                        ConditionStatus::False,
                        "FetchFailed",
                        &e.to_string(),
                        generation,
                    );
                    fetch_error = Some(e);
                }
            }
        }
        if let (Some(commit), Some(image)) = (b.commit.clone(), b.image.clone()) {
            let start = |b: &mut BuildStatus| {
                b.started_at = Some(status::now());
                b.finished_at = None;
                b.message = None;
                b.phase = BuildPhase::Building;
                builder.start(Request {
                    key: key.clone(),
                    obj: obj.clone(),
                    docker: docker.clone(),
                    url: git.url.clone(),
                    commit: commit.clone(),
                    dir: revision::context_dir(git),
                    dockerfile: git.dockerfile.clone(),
                    build_args: git.build_args.clone(),
                    image: image.clone(),
                    labels: self.image_labels(owner, &commit),
                });
            };
            match b.phase {
                BuildPhase::Building => match builder.outcome(&key, &image) {
                    Some(Outcome::Running) => {
                        // A reconcile from a stale cache may have lost the start time.
                        b.started_at.get_or_insert_with(status::now);
                    }
                    Some(Outcome::Built { took }) => {
                        tracing::info!(%image, took_ms = took.as_millis() as u64, "build recorded");
                        builder.forget(&key);
                        self.built(docker, owner, &mut b, next, &commit, &image).await;
                    }
                    Some(Outcome::Failed { message }) => {
                        builder.forget(&key);
                        b.phase = BuildPhase::Failed;
                        b.finished_at = Some(status::now());
                        b.message = Some(message);
                    }
                    None => match docker.inspect_image(&image).await {
                        Ok(_) => {
                            tracing::info!(%image, "the image exists already");
                            self.built(docker, owner, &mut b, next, &commit, &image).await;
                        }
                        Err(e) if e.is_not_found() => start(&mut b),
                        Err(e) => return Err(e.into()),
                    },
                },
                BuildPhase::Succeeded => match docker.inspect_image(&image).await {
                    Ok(_) => {
                        if b.latest_image.as_deref() != Some(image.as_str()) {
                            b.latest_image = Some(image.clone());
                            next.commit = Some(commit.clone());
                        }
                    }
                    Err(e) if e.is_not_found() => {
                        tracing::info!(%image, "the built image is gone; building it again");
                        start(&mut b);
                    }
                    Err(e) => return Err(e.into()),
                },
                BuildPhase::Failed => {}
            }
        }
        let (reason, state, message) = match (&b.phase, &b.image, &b.commit) {
            (_, None, _) | (_, _, None) => match &fetch_error {
                Some(e) => ("FetchFailed", ConditionStatus::False, e.to_string()),
                None => (
                    "Pending",
                    ConditionStatus::False,
                    "the ref is not resolved yet".to_string(),
                ),
            },
            (BuildPhase::Building, Some(image), Some(commit)) => (
                BUILDING,
                ConditionStatus::False,
                format!("building {image} from commit {}", short(commit)),
            ),
            (BuildPhase::Succeeded, Some(image), Some(commit)) => (
                "Built",
                ConditionStatus::True,
                format!("built {image} from commit {}", short(commit)),
            ),
            (BuildPhase::Failed, Some(_), Some(commit)) => (
                "BuildFailed",
                ConditionStatus::False,
                format!(
                    "build of commit {} failed: {}",
                    short(commit),
                    b.message.as_deref().unwrap_or("")
                ),
            ),
        };
        set(next, "Built", state, reason, &message, generation);
        let image = b.latest_image.clone();
        next.build = Some(b);
        Ok(Step { image, fetch_error })
    }

    /// Records a successful build and prunes older images.
    async fn built(
        &self,
        docker: &Docker,
        owner: &Owner,
        b: &mut BuildStatus,
        next: &mut ApplicationStatus,
        commit: &str,
        image: &str,
    ) {
        let previous = b.latest_image.replace(image.to_string());
        b.phase = BuildPhase::Succeeded;
        b.finished_at = Some(status::now());
        b.message = None;
        next.commit = Some(commit.to_string());
        let keep: Vec<&str> = [Some(image), previous.as_deref()].into_iter().flatten().collect();
        if let Err(e) = self.prune_images(docker, owner, &keep).await {
            tracing::warn!(error = %e, "cannot prune old built images; retrying after the next build");
        }
    }

    /// Removes the Application's built images, except the tags in `keep` (and images a
    /// container still uses).
    pub(super) async fn prune_images(
        &self,
        docker: &Docker,
        owner: &Owner,
        keep: &[&str],
    ) -> Result<(), crate::docker::Error> {
        let selector = self.dockers.scoped(Labels::from([
            (label::MANAGED.to_string(), "true".to_string()),
            (label::KIND.to_string(), "Application".to_string()),
            (label::NAMESPACE.to_string(), owner.namespace.clone()),
            (label::NAME.to_string(), owner.name.clone()),
        ]));
        for i in docker.list_images(&selector).await? {
            if i.repo_tags.iter().any(|t| keep.contains(&t.as_str())) {
                continue;
            }
            let refs = if i.repo_tags.is_empty() {
                vec![i.id.clone()]
            } else {
                i.repo_tags.clone()
            };
            for r in refs {
                match docker.remove_image(&r).await {
                    Ok(()) => tracing::info!(image = %r, "removed an old built image"),
                    Err(e) if e.is_not_found() => {}
                    Err(crate::docker::Error::Conflict { message }) => {
                        tracing::debug!(image = %r, %message, "old built image still in use; kept");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The labels of an image built for `owner`: the owner's, the scope's, the commit.
    fn image_labels(&self, owner: &Owner, commit: &str) -> Labels {
        let mut labels = owner.labels();
        labels.extend(self.dockers.options.scope.clone());
        labels.insert(COMMIT_LABEL.to_string(), commit.to_string());
        labels
    }

    /// The commit `git.ref` names now: each candidate reference in turn (branch, then tag).
    async fn resolve(&self, git: &GitBuild) -> Result<String, Error> {
        let Some(builder) = &self.builder else {
            return Err(Error::Fetch {
                url: git.url.clone(),
                message: "git sources are off".to_string(),
            });
        };
        let mut missing = Vec::new();
        for r in revision::candidates(git.ref_.as_deref()) {
            match builder.repositories().fetch(&git.url, &r, None).await {
                Ok(commit) => return Ok(commit),
                Err(git::Error::RefNotFound { .. }) if !matches!(r, Reference::Default) => {
                    missing.push(r.to_string());
                }
                Err(e) => {
                    return Err(Error::Fetch {
                        url: git.url.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        Err(Error::Fetch {
            url: git.url.clone(),
            message: format!(
                "spec.source.git.ref: no {} in the repository",
                missing.join(" nor ")
            ),
        })
    }
}

/// Removes a `Progressing` condition that says a build runs, so the rollout logic never
/// times a rollout from a build's start; returns it, for [`put_building`].
pub(super) fn take_building(next: &mut ApplicationStatus) -> Option<berth_crds::meta::Condition> {
    let i = next
        .conditions
        .iter()
        .position(|c| c.type_ == AppCondition::Progressing && c.reason == AppReason::Building)?;
    Some(next.conditions.remove(i))
}

/// Says in `Progressing` that a build runs (keeping the condition taken by
/// [`take_building`], so its transition time stays put), unless a rollout is in progress or
/// failed and `always` is false. Conditions that change take `now` as their transition time.
pub(super) fn put_building(
    next: &mut ApplicationStatus,
    taken: Option<berth_crds::meta::Condition>,
    generation: i64,
    always: bool,
    now: DateTime<Utc>,
) {
    let Some(b) = next.build.as_ref().filter(|b| b.phase == BuildPhase::Building) else {
        return;
    };
    let rolling = next
        .conditions
        .iter()
        .any(|c| c.type_ == AppCondition::Progressing && c.reason != AppReason::RolloutComplete);
    if rolling && !always {
        return;
    }
    let message = format!(
        "building {} from commit {}",
        b.image.as_deref().unwrap_or(""),
        short(b.commit.as_deref().unwrap_or(""))
    );
    next.conditions.retain(|c| c.type_ != AppCondition::Progressing);
    if let Some(c) = taken {
        next.conditions.push(c);
    }
    status::set_condition(
        &mut next.conditions,
        AppCondition::Progressing.as_str(),
        ConditionStatus::True,
        BUILDING,
        &message,
        generation,
        now,
    );
}

/// After a failed build, `Progressing=False reason=BuildFailed` with Docker's words, unless a
/// rollout is in progress or failed; a changed condition takes `now` as its transition time.
pub(super) fn put_failed(next: &mut ApplicationStatus, generation: i64, now: DateTime<Utc>) {
    let Some(b) = next.build.as_ref().filter(|b| b.phase == BuildPhase::Failed) else {
        return;
    };
    let rolling = next.conditions.iter().any(|c| {
        c.type_ == AppCondition::Progressing
            && c.reason != AppReason::RolloutComplete
            && c.reason != AppReason::BuildFailed
    });
    if rolling {
        return;
    }
    let message = format!(
        "build of commit {} failed; the previous version keeps running: {}",
        short(b.commit.as_deref().unwrap_or("")),
        b.message.as_deref().unwrap_or("")
    );
    status::set_condition(
        &mut next.conditions,
        AppCondition::Progressing.as_str(),
        ConditionStatus::False,
        AppReason::BuildFailed.as_str(),
        &message,
        generation,
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn status(phase: BuildPhase, progressing: Option<(&str, ConditionStatus)>) -> ApplicationStatus {
        let mut s = ApplicationStatus {
            build: Some(BuildStatus {
                commit: Some("0123456789abcdef".into()),
                image: Some("berth.local/ns-web:0123456789ab-00000000".into()),
                phase,
                message: Some("The command '/bin/sh -c make' returned a non-zero code: 2".into()),
                ..BuildStatus::default()
            }),
            ..ApplicationStatus::default()
        };
        if let Some((reason, st)) = progressing {
            let long_ago = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            status::set_condition(&mut s.conditions, "Progressing", st, reason, "m", 1, long_ago);
        }
        s
    }

    fn progressing(s: &ApplicationStatus) -> &berth_crds::meta::Condition {
        s.conditions.iter().find(|c| c.type_ == "Progressing").unwrap()
    }

    #[test]
    fn a_running_build_is_progressing_and_keeps_its_transition_time() {
        let mut s = status(BuildPhase::Building, Some((BUILDING, ConditionStatus::True)));
        let taken = take_building(&mut s);
        assert!(taken.is_some());
        assert!(s.conditions.is_empty(), "the rollout logic never sees it");
        // The rollout logic found nothing to do.
        set(
            &mut s,
            "Progressing",
            ConditionStatus::False,
            "RolloutComplete",
            "rollout of config x",
            1,
        );
        put_building(&mut s, taken.clone(), 1, false, Utc::now());
        let c = progressing(&s);
        assert_eq!((c.status, c.reason.as_str()), (ConditionStatus::True, BUILDING));
        assert_eq!(c.last_transition_time, taken.unwrap().last_transition_time);
        assert!(c.message.contains("from commit 0123456789ab"), "{}", c.message);
    }

    #[test]
    fn a_rollout_after_a_build_is_timed_from_its_own_start() {
        let mut s = status(BuildPhase::Succeeded, Some((BUILDING, ConditionStatus::True)));
        let taken = take_building(&mut s);
        set(
            &mut s,
            "Progressing",
            ConditionStatus::True,
            "RollingUpdate",
            "rollout of config y",
            1,
        );
        put_building(&mut s, taken.clone(), 1, false, Utc::now());
        let c = progressing(&s);
        assert_eq!(c.reason, "RollingUpdate");
        assert_ne!(c.last_transition_time, taken.unwrap().last_transition_time);
    }

    #[test]
    fn a_build_during_a_rollout_leaves_progressing_to_the_rollout() {
        let mut s = status(
            BuildPhase::Building,
            Some(("RollingUpdate", ConditionStatus::True)),
        );
        put_building(&mut s, None, 1, false, Utc::now());
        assert_eq!(progressing(&s).reason, "RollingUpdate");
        put_building(&mut s, None, 1, true, Utc::now());
        assert_eq!(progressing(&s).reason, BUILDING, "unless nothing runs yet");
    }

    #[test]
    fn a_failed_build_says_so_unless_a_rollout_failed() {
        let mut s = status(
            BuildPhase::Failed,
            Some(("RolloutComplete", ConditionStatus::False)),
        );
        put_failed(&mut s, 1, Utc::now());
        let c = progressing(&s);
        assert_eq!(
            (c.status, c.reason.as_str()),
            (ConditionStatus::False, "BuildFailed")
        );
        assert!(c.message.contains("returned a non-zero code: 2"), "{}", c.message);
        assert!(c.message.contains("previous version keeps running"));
        let mut s = status(
            BuildPhase::Failed,
            Some(("HealthCheckFailed", ConditionStatus::False)),
        );
        put_failed(&mut s, 1, Utc::now());
        assert_eq!(progressing(&s).reason, "HealthCheckFailed");
        let mut s = status(
            BuildPhase::Succeeded,
            Some(("RolloutComplete", ConditionStatus::False)),
        );
        put_failed(&mut s, 1, Utc::now());
        assert_eq!(progressing(&s).reason, "RolloutComplete");
    }
}
