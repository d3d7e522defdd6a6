//! The statuses the decide step writes: the base every reconcile starts from, the blocked
//! and nothing-built ones, and the conditions of a converged or progressing app.

use berth_crds::{
    kinds::{
        ApplicationSpec,
        application::{AppCondition, AppReason, ApplicationPhase, ApplicationStatus, BuildPhase},
    },
    meta::{Condition, ConditionStatus},
};
use chrono::{DateTime, Utc};

use super::super::{from_git, plan};

/// Sets condition `type_` of `next` at `now`.
pub fn set(
    next: &mut ApplicationStatus,
    type_: AppCondition,
    s: ConditionStatus,
    reason: &str,
    message: &str,
    generation: i64,
    now: DateTime<Utc>,
) {
    crate::status::set_condition(
        &mut next.conditions,
        type_.as_str(),
        s,
        reason,
        message,
        generation,
        now,
    );
}

/// The status every reconcile starts from: the previous conditions, digest and build, the
/// spec's URLs, and nothing about containers.
pub fn base_status(spec: &ApplicationSpec, old: &ApplicationStatus, generation: i64) -> ApplicationStatus {
    ApplicationStatus {
        observed_generation: Some(generation),
        conditions: old.conditions.clone(),
        urls: spec
            .domains
            .iter()
            .map(|d| {
                let scheme = if d.https { "https" } else { "http" };
                format!("{scheme}://{}{}", d.host, d.path.as_deref().unwrap_or(""))
            })
            .collect(),
        image_digest: old.image_digest.clone(),
        commit: old.commit.clone(),
        build: old.build.clone(),
        ..ApplicationStatus::default()
    }
}

/// The app cannot run as specified: `Ready` and `Progressing` false with `reason`, phase
/// `Failed`, the previous containers kept in status.
pub fn blocked(
    next: &mut ApplicationStatus,
    old: &ApplicationStatus,
    reason: AppReason,
    message: &str,
    generation: i64,
    now: DateTime<Utc>,
) {
    let r = reason.as_str();
    set(
        next,
        AppCondition::Ready,
        ConditionStatus::False,
        r,
        message,
        generation,
        now,
    );
    set(
        next,
        AppCondition::Progressing,
        ConditionStatus::False,
        r,
        message,
        generation,
        now,
    );
    next.phase = Some(ApplicationPhase::Failed);
    next.containers = old.containers.clone();
}

/// The reason a template could not be made.
pub fn template_reason(e: &plan::Error) -> AppReason {
    match e {
        plan::Error::MissingSecret { .. } => AppReason::SecretNotFound,
        plan::Error::HostPathForbidden { .. } => AppReason::HostPathForbidden,
        plan::Error::FilesNeedHostRoot => AppReason::HostFilesDisabled,
        plan::Error::NoImage => AppReason::NoImage,
    }
}

/// The status of a Git app whose first build runs or failed: nothing to run.
pub fn nothing_built(
    next: &mut ApplicationStatus,
    building: Option<Condition>,
    generation: i64,
    now: DateTime<Utc>,
) {
    let failed = next.build.as_ref().is_some_and(|b| b.phase == BuildPhase::Failed);
    let built = next
        .conditions
        .iter()
        .find(|c| c.type_ == AppCondition::Built)
        .cloned();
    let (reason, message) = built.map_or_else(
        || (AppReason::Pending.to_string(), "no image built yet".to_string()),
        |c| (c.reason, c.message),
    );
    set(
        next,
        AppCondition::Ready,
        ConditionStatus::False,
        &reason,
        &message,
        generation,
        now,
    );
    if failed {
        from_git::put_failed(next, generation, now);
        next.phase = Some(ApplicationPhase::Failed);
    } else {
        from_git::put_building(next, building, generation, true, now);
        if !next
            .conditions
            .iter()
            .any(|c| c.type_ == AppCondition::Progressing && c.reason == AppReason::Building)
        {
            set(
                next,
                AppCondition::Progressing,
                ConditionStatus::False,
                &reason,
                &message,
                generation,
                now,
            );
        }
        next.phase = Some(ApplicationPhase::Pending);
    }
}

/// `Ready`'s message while the proxy does not route to the ready containers yet.
const ROUTE_NOT_LIVE: &str = "waiting for the proxy to route the domains to the ready containers";

/// Sets the conditions and phase of a converged (`done`) or still-progressing app. A
/// converged app is `Ready` once its route is live (`route_live`), else
/// `Ready=False reason=RouteNotLive`: each condition is set once, so one that stays as it
/// was keeps its `lastTransitionTime` (and the status is not rewritten).
pub(super) fn finish(
    next: &mut ApplicationStatus,
    generation: i64,
    rollout: &str,
    crashing: bool,
    done: bool,
    route_live: bool,
    now: DateTime<Utc>,
) {
    let n = next.containers.iter().filter(|c| c.ready).count();
    let ready = format!("{n} ready");
    let healthy = AppReason::Healthy.as_str();
    if done {
        let (state, reason, message) = if route_live {
            (ConditionStatus::True, AppReason::ReplicasReady, ready.as_str())
        } else {
            (ConditionStatus::False, AppReason::RouteNotLive, ROUTE_NOT_LIVE)
        };
        set(
            next,
            AppCondition::Ready,
            state,
            reason.as_str(),
            message,
            generation,
            now,
        );
        let reason = AppReason::RolloutComplete.as_str();
        set(
            next,
            AppCondition::Progressing,
            ConditionStatus::False,
            reason,
            rollout,
            generation,
            now,
        );
        set(
            next,
            AppCondition::Degraded,
            ConditionStatus::False,
            healthy,
            "",
            generation,
            now,
        );
        next.phase = Some(if next.containers.is_empty() {
            ApplicationPhase::Stopped
        } else {
            ApplicationPhase::Running
        });
    } else {
        let (state, reason) = if n > 0 {
            (ConditionStatus::True, AppReason::PreviousVersionServing)
        } else {
            (ConditionStatus::False, AppReason::ReplicasNotReady)
        };
        set(
            next,
            AppCondition::Ready,
            state,
            reason.as_str(),
            &ready,
            generation,
            now,
        );
        let reason = AppReason::RollingUpdate.as_str();
        set(
            next,
            AppCondition::Progressing,
            ConditionStatus::True,
            reason,
            rollout,
            generation,
            now,
        );
        if !crashing {
            set(
                next,
                AppCondition::Degraded,
                ConditionStatus::False,
                healthy,
                "",
                generation,
                now,
            );
        }
        next.phase = Some(ApplicationPhase::Progressing);
    }
}
