//! The second round of the decide step: readiness, the service aliases of ready replicas, the
//! routing switch, the removal of old containers, and the status to write.

use std::time::Duration;

use berth_crds::{
    kinds::application::{AppCondition, AppContainer, AppReason, ApplicationPhase, ApplicationStatus},
    meta::{Condition, ConditionStatus},
};
use chrono::{DateTime, Utc};

use super::{
    FAILED_POLL, HEALTH_POLL, LogsInto, Plan, ROUTE_POLL, ReplicaPlan, Soonest, Step, Timing, since,
    status::{finish, set},
};
use crate::{
    application::{
        from_git,
        observe::{Observed, OldContainer, Replica},
    },
    docker::Health,
};

/// Whether a replica is ready: running, and healthy under its health check, else running
/// for `min_ready`; when not yet, when to look again.
fn readiness(r: &Replica, timing: Timing, now: DateTime<Utc>) -> (bool, Option<Duration>) {
    let Some(s) = r.state.as_ref().filter(|s| s.running) else {
        return (false, None);
    };
    match (&r.spec.health_check, s.health) {
        (Some(_), Some(Health::Healthy)) => (true, None),
        (Some(_), _) => (false, Some(HEALTH_POLL)),
        (None, _) => {
            let up = s.started_at.map_or(Duration::ZERO, |t| since(now, t));
            if up >= timing.min_ready {
                (true, None)
            } else {
                (false, Some(timing.min_ready - up + Duration::from_millis(50)))
            }
        }
    }
}

/// What the second round reads besides [`Observed`].
pub struct RolloutInputs<'a> {
    /// The first round's plan (restart counts, crash loop, requeue).
    pub replicas: &'a ReplicaPlan,
    /// The previous status.
    pub old: &'a ApplicationStatus,
    /// The status built so far ([`super::base_status`], the Git step, recorded digests).
    pub next: &'a ApplicationStatus,
    /// The template's short hash.
    pub hash: &'a str,
    /// The service aliases ([`crate::application::plan::service_aliases`]).
    pub aliases: &'a [String],
    /// The destination network.
    pub network: &'a str,
    /// The app's `metadata.generation`.
    pub generation: i64,
    /// For a Git source: `Some`, with the `Progressing=Building` condition taken off
    /// (`from_git::take_building`).
    pub git: Option<Option<Condition>>,
    /// The timing options.
    pub timing: Timing,
    /// The time of the decision.
    pub now: DateTime<Utc>,
}

/// The second round: readiness, aliases, routing switch, old containers, status.
pub fn rollout(observed: &Observed, input: RolloutInputs<'_>) -> Plan {
    let RolloutInputs {
        replicas: first,
        old,
        next,
        hash,
        aliases,
        network,
        generation,
        git,
        timing,
        now,
    } = input;
    let mut next = next.clone();
    let mut steps = Vec::new();
    let mut soonest = Soonest(first.requeue);
    let ready: Vec<bool> = observed
        .replicas
        .iter()
        .map(|r| {
            let (ready, again) = readiness(r, timing, now);
            if let Some(d) = again {
                soonest.at(d);
            }
            ready
        })
        .collect();

    // Ready containers answer to the service aliases; others only to their own name.
    for (r, _) in observed.replicas.iter().zip(&ready).filter(|(_, ready)| **ready) {
        let has = r
            .state
            .as_ref()
            .is_some_and(|s| aliases.iter().all(|a| s.aliases.contains(a)));
        if !has {
            let mut all = aliases.to_vec();
            all.push(r.spec.name.clone());
            steps.push(Step::AddAlias {
                container: r.spec.name.clone(),
                network: network.to_owned(),
                aliases: all,
            });
        }
    }
    let olds = &observed.olds;
    let all_ready = ready.iter().all(|r| *r);
    next.replicas = observed
        .replicas
        .iter()
        .filter(|r| r.state.as_ref().is_some_and(|s| s.running))
        .count() as u32;
    next.ready_replicas = ready.iter().filter(|r| **r).count() as u32;
    next.image = observed
        .replicas
        .iter()
        .find_map(|r| r.state.as_ref().map(|s| format!("{}@{}", s.image, s.image_id)));
    let mut containers: Vec<AppContainer> = observed
        .replicas
        .iter()
        .zip(&ready)
        .enumerate()
        .map(|(i, (r, ready))| AppContainer {
            name: r.spec.name.clone(),
            replica: r.index,
            config_hash: hash.to_owned(),
            ready: *ready,
            restarts: first.restarts.get(i).copied().unwrap_or(0),
        })
        .collect();
    let old_entry = |c: &OldContainer, ready: bool| AppContainer {
        name: c.name.clone(),
        replica: c.replica,
        config_hash: c.config_hash.clone(),
        ready,
        restarts: 0,
    };

    // Rollout progress, timed from the Progressing condition of this config.
    let rollout = format!("rollout of config {hash}");
    let progressing = old
        .conditions
        .iter()
        .find(|c| c.type_ == AppCondition::Progressing);
    let started = progressing
        .filter(|c| c.message.contains(&rollout) && c.status == ConditionStatus::True)
        .map(|c| c.last_transition_time);
    let failed_before =
        progressing.is_some_and(|c| c.message.contains(&rollout) && c.reason == AppReason::HealthCheckFailed);
    let crashing = first.crash.is_some();
    let mut logs = None;
    if all_ready {
        if !olds.is_empty() {
            // Switch routing first: only the new containers are ready.
            containers.extend(olds.iter().map(|c| old_entry(c, false)));
            next.containers = containers.clone();
            finish(&mut next, generation, &rollout, crashing, true, true, now);
            steps.push(Step::WriteStatus {
                status: Box::new(next.clone()),
                logs: None,
            });
            if !observed.proxy_serves {
                steps.push(Step::AwaitProxy);
                return Plan {
                    steps,
                    requeue: Some(ROUTE_POLL),
                };
            }
            steps.extend(olds.iter().map(|c| Step::RemoveOld {
                id: c.id.clone(),
                name: c.name.clone(),
            }));
            containers.retain(|c| observed.replicas.iter().any(|r| r.spec.name == c.name));
        }
        next.containers = containers;
        // Ready means reachable: for an app with domains, once its route is live. Set in
        // one go (not True then False), or its transition time would move every reconcile
        // and each status write would run the app, and its server's Proxies, again at once.
        finish(
            &mut next,
            generation,
            &rollout,
            crashing,
            true,
            observed.proxy_serves,
            now,
        );
        if !observed.proxy_serves {
            soonest.at(ROUTE_POLL);
        }
    } else {
        // Old containers keep serving.
        containers.extend(olds.iter().map(|c| old_entry(c, c.running)));
        next.containers = containers;
        let deadline_passed = started.is_some_and(|t| since(now, t) >= timing.progress_deadline);
        if !crashing && (failed_before || deadline_passed) {
            let culprit = observed
                .replicas
                .iter()
                .zip(&ready)
                .find(|(_, ready)| !**ready)
                .map(|(r, _)| r.spec.name.clone());
            let message = format!(
                "{rollout}: {} not ready within {}s; the previous version keeps serving. last log lines:\n",
                culprit.as_deref().unwrap_or("a replica"),
                timing.progress_deadline.as_secs()
            );
            if !failed_before {
                steps.push(Step::Warn {
                    reason: AppReason::HealthCheckFailed,
                    message: format!(
                        "new containers of config {hash} did not become ready; kept the old version"
                    ),
                });
            }
            let failed = AppReason::HealthCheckFailed.as_str();
            set(
                &mut next,
                AppCondition::Progressing,
                ConditionStatus::False,
                failed,
                &message,
                generation,
                now,
            );
            let serving = next.containers.iter().any(|c| c.ready);
            let (state, reason) = if serving {
                (ConditionStatus::True, AppReason::PreviousVersionServing)
            } else {
                (ConditionStatus::False, AppReason::HealthCheckFailed)
            };
            let not_ready = "new replicas are not ready";
            set(
                &mut next,
                AppCondition::Ready,
                state,
                reason.as_str(),
                not_ready,
                generation,
                now,
            );
            set(
                &mut next,
                AppCondition::Degraded,
                ConditionStatus::True,
                failed,
                &message,
                generation,
                now,
            );
            next.phase = Some(ApplicationPhase::Degraded);
            logs = culprit.map(|container| LogsInto {
                container,
                into: vec![AppCondition::Progressing, AppCondition::Degraded],
            });
            soonest.at(FAILED_POLL);
        } else {
            finish(&mut next, generation, &rollout, crashing, false, true, now);
            if let Some((c, n)) = &first.crash {
                let message = format!("{c} keeps exiting ({n} restarts); last log lines:\n");
                let reason = AppReason::CrashLoopBackOff.as_str();
                set(
                    &mut next,
                    AppCondition::Degraded,
                    ConditionStatus::True,
                    reason,
                    &message,
                    generation,
                    now,
                );
                next.phase = Some(ApplicationPhase::Degraded);
                logs = Some(LogsInto {
                    container: c.clone(),
                    into: vec![AppCondition::Degraded],
                });
            }
            if let Some(t) = started {
                let left = timing.progress_deadline.saturating_sub(since(now, t));
                soonest.at(left.max(Duration::from_millis(100)));
            }
        }
    }
    if let Some(building) = git {
        from_git::put_building(&mut next, building, generation, false, now);
        from_git::put_failed(&mut next, generation, now);
    }
    steps.push(Step::WriteStatus {
        status: Box::new(next),
        logs,
    });
    Plan {
        steps,
        requeue: soonest.0,
    }
}
