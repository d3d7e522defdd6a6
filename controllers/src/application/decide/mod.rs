//! The decide step of an Application reconcile: from the spec, the previous status and what
//! was observed ([`Observed`]) to a plan of [`Step`]s and the status to write.
//!
//! # Guarantees
//! - Pure: no I/O and no clock; `now` and the timing options are inputs, so the same inputs
//!   give the same plan (see the table in `decide/tests.rs`).
//! - Two rounds per reconcile. [`replicas`] converges each desired replica: replace one
//!   that differs from its spec (config hash or owner UID), create a missing one (with the
//!   service alias at creation only when nothing of the app runs), start an exited one now
//!   or wait out its crash-loop backoff ([`plan::backoff`]; the count resets once a run
//!   lasted [`Timing::min_ready`], and two or more restarts are a `CrashLoopBackOff`). Act
//!   runs those steps, observe inspects the touched containers again, then [`rollout`]
//!   decides readiness, the service alias of ready replicas, the routing switch, the removal
//!   of old containers and the status (phase, conditions, requeue).
//! - Rollout: old containers keep serving until every new replica is ready; then the status
//!   lists only the new ones ready and is written, act waits for the Proxy to route to them
//!   ([`Step::AwaitProxy`]), and only then removes the old ones. New replicas not ready
//!   within [`Timing::progress_deadline`] fail the rollout (`HealthCheckFailed`, `Degraded`)
//!   with the previous version serving.
//! - Steady while waiting: an app waiting for its route (`Ready=False RouteNotLive`, polled
//!   every [`ROUTE_POLL`]) decided again with only the clock moved gets the status it has,
//!   so act writes nothing and the app does not trigger itself (nor its server's Proxies,
//!   which every Application change triggers) through its own status.
//!
//! # Caveats
//! - The last log lines quoted in failure messages are read by act ([`LogsInto`]): the plan
//!   says which container's logs go into which conditions.

use std::time::Duration;

use berth_crds::kinds::application::{AppCondition, AppReason, ApplicationStatus};
use chrono::{DateTime, Utc};

use super::{observe::Observed, plan};
use crate::docker::ContainerSpec;

mod rollout;
mod status;
#[cfg(test)]
mod tests;

pub use self::rollout::{RolloutInputs, rollout};
pub use self::status::{base_status, blocked, nothing_built, set, template_reason};

/// How often to look again while waiting for the Proxy to route to new containers.
pub const ROUTE_POLL: Duration = Duration::from_millis(250);
/// How often to look again at a replica whose health check has not passed yet.
pub const HEALTH_POLL: Duration = Duration::from_secs(1);
/// How often to look again at a failed rollout.
pub const FAILED_POLL: Duration = Duration::from_secs(5);
/// How many log lines a failure message quotes.
pub const LOG_LINES: usize = 10;

/// The timing options of [`super::AppOptions`] that decisions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Without a health check, how long a container must run to count as ready (and as
    /// having run long enough to reset its crash-loop count).
    pub min_ready: Duration,
    /// How long new replicas may take to become ready.
    pub progress_deadline: Duration,
}

/// Appends the last [`LOG_LINES`] log lines of `container` to the messages of `into`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsInto {
    /// The container whose logs are quoted.
    pub container: String,
    /// The conditions whose messages end with them.
    pub into: Vec<AppCondition>,
}

/// One thing act does, in plan order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Remove the container named `spec.name` (it differs from its spec), then create and
    /// start `spec`.
    Replace {
        /// The container to run instead.
        spec: ContainerSpec,
    },
    /// Create and start `spec` (pulling its image when absent).
    Create {
        /// The container.
        spec: ContainerSpec,
    },
    /// Start an exited (or never started) container.
    Start {
        /// The container.
        container: String,
        /// Its quick restarts so far (before this start).
        restarts: u32,
        /// The exit code of its last run.
        exit_code: Option<i64>,
    },
    /// Leave an exited container down until its crash-loop backoff has passed (the plan's
    /// requeue comes back for it).
    WaitBackoff {
        /// The container.
        container: String,
        /// How long it still waits.
        delay: Duration,
    },
    /// Re-attach a ready container to the network with the service aliases.
    AddAlias {
        /// The container.
        container: String,
        /// The destination network.
        network: String,
        /// The aliases it answers to from then on.
        aliases: Vec<String>,
    },
    /// Write the status (with the logs of [`LogsInto`] quoted, if any).
    WriteStatus {
        /// The status.
        status: Box<ApplicationStatus>,
        /// Whose logs go into which messages.
        logs: Option<LogsInto>,
    },
    /// Stop here: the Proxy does not route to the new containers yet (the plan requeues
    /// after [`ROUTE_POLL`]).
    AwaitProxy,
    /// Remove a container of an older config (or a replica no longer wanted).
    RemoveOld {
        /// Docker's ID.
        id: String,
        /// The container name.
        name: String,
    },
    /// Record a Warning event.
    Warn {
        /// The event's reason.
        reason: AppReason,
        /// The event's message.
        message: String,
    },
}

/// The first round's plan: what to do with each desired replica.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaPlan {
    /// Replace, Create, Start or WaitBackoff steps.
    pub steps: Vec<Step>,
    /// Each replica's crash-loop count after this round, in replica order.
    pub restarts: Vec<u32>,
    /// The last replica with two or more quick restarts, and their count.
    pub crash: Option<(String, u32)>,
    /// When to reconcile again (the soonest of what the steps need).
    pub requeue: Option<Duration>,
}

/// The second round's plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The steps, ending with the status write (or with [`Step::AwaitProxy`]).
    pub steps: Vec<Step>,
    /// When to reconcile again; `None`: on the next change.
    pub requeue: Option<Duration>,
}

impl Plan {
    /// Whether the plan stops to wait for the Proxy.
    pub fn awaits_proxy(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::AwaitProxy))
    }
}

/// The soonest of several requeue wishes.
#[derive(Debug, Default, Clone, Copy)]
struct Soonest(Option<Duration>);

impl Soonest {
    fn at(&mut self, d: Duration) {
        self.0 = Some(self.0.map_or(d, |r| r.min(d)));
    }
}

fn since(now: DateTime<Utc>, t: DateTime<Utc>) -> Duration {
    (now - t).to_std().unwrap_or_default()
}

/// The first round: what to do with each desired replica (see the module docs).
/// `uid` is the app's, `aliases` its service aliases ([`plan::service_aliases`]), `old` the
/// previous status.
pub fn replicas(
    observed: &Observed,
    uid: &str,
    aliases: &[String],
    old: &ApplicationStatus,
    timing: Timing,
    now: DateTime<Utc>,
) -> ReplicaPlan {
    let mut out = ReplicaPlan::default();
    let mut soonest = Soonest::default();
    for r in &observed.replicas {
        let mut restarts = old
            .containers
            .iter()
            .find(|c| c.name == r.spec.name)
            .map_or(0, |c| c.restarts);
        // Replaced by hand: same name, other config.
        let differs = r.state.as_ref().is_some_and(|s| {
            s.config_hash.as_deref() != Some(r.spec.config_hash().as_str()) || s.uid.as_deref() != Some(uid)
        });
        let state = r.state.as_ref().filter(|_| !differs);
        match state {
            None => {
                let mut spec = r.spec.clone();
                if !observed.anything_runs
                    && let Some(net) = &mut spec.network
                {
                    // Nothing of the app serves, so the aliases cannot lead anywhere that
                    // does: give them at creation, sparing the re-attach once ready.
                    net.unhashed_aliases.extend(aliases.iter().cloned());
                }
                out.steps.push(if differs {
                    Step::Replace { spec }
                } else {
                    Step::Create { spec }
                });
                soonest.at(timing.min_ready);
            }
            Some(s) if s.running => {}
            Some(s) => {
                let ran = match (s.started_at, s.finished_at) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
                    _ => Duration::ZERO,
                };
                if ran >= timing.min_ready {
                    restarts = 0;
                }
                let wanted = plan::backoff(restarts);
                let waited = s.finished_at.map_or(wanted, |t| since(now, t));
                if s.created || waited >= wanted {
                    out.steps.push(Step::Start {
                        container: r.spec.name.clone(),
                        restarts,
                        exit_code: s.exit_code,
                    });
                    if !s.created {
                        restarts += 1;
                    }
                    soonest.at(timing.min_ready);
                } else {
                    out.steps.push(Step::WaitBackoff {
                        container: r.spec.name.clone(),
                        delay: wanted - waited,
                    });
                    soonest.at(wanted - waited);
                }
                if restarts >= 2 {
                    out.crash = Some((r.spec.name.clone(), restarts));
                }
            }
        }
        out.restarts.push(restarts);
    }
    out.requeue = soonest.0;
    out
}
