//! The Database controller's decision: from what [`super::observe`] read (and what the steps
//! so far did) to the next [`Plan`] — Docker steps to run, or the status to write and when
//! to look again.
//!
//! # Guarantees
//! - Pure: no I/O and no clock reads (`now` and the [`Tunables`] are arguments); the same
//!   [`Observed`] gives the same plan.
//! - Checks run in a fixed order, and the first that fails decides: destination, credentials,
//!   server, spec, container ownership, image, container state, readiness.
//! - A container is replaced only when it is a berth Database container whose config hash or
//!   owner uid differs from what should run; the image is pulled before the running
//!   container is touched, so a failed pull keeps it running.
//! - Once this reconcile created, started or replaced the container, it is not acted on
//!   again: the rest of the reconcile only reports readiness.
//!
//! # Caveats
//! - A reconcile is several rounds of decide → act; [`Plan::Steps`] asks for another round,
//!   [`Plan::Done`] ends the reconcile. The caller bounds the number of rounds.

use std::time::Duration;

use berth_crds::{
    kinds::{
        database::{DatabaseCondition, DatabaseReason, DatabaseStatus},
        event::EventType,
    },
    meta::ConditionStatus,
};
use chrono::{DateTime, Utc};

pub use super::observe::{
    ContainerFacts, ContainerRun, DockerFacts, Identity, Observed, PullFacts, SecretFacts,
};
use super::{
    engine::{self, Credentials, ExecPlan},
    plan,
};
use crate::{
    container_config,
    docker::{ContainerSpec, Labels, Owner, label},
    status,
};

/// Characters of the config hash quoted in condition messages.
const HASH_SHOWN: usize = 12;

/// The timings of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunables {
    /// How long an engine may take to first pass its probe before `Progressing=False`.
    pub progress_deadline: Duration,
    /// When to look again while the engine starts.
    pub starting_requeue: Duration,
    /// When to look again once the engine missed the progress deadline.
    pub overdue_requeue: Duration,
}

impl Default for Tunables {
    fn default() -> Self {
        Self {
            progress_deadline: Duration::from_secs(300),
            starting_requeue: Duration::from_millis(500),
            overdue_requeue: Duration::from_secs(5),
        }
    }
}

/// Why a running container must be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollReason {
    /// It belongs to an earlier Database of the same name (another uid).
    Owner,
    /// The image changed (`spec.image` or `spec.version`).
    Image {
        /// The image it runs.
        from: String,
        /// The image that should run.
        to: String,
    },
    /// Another part of the effective config changed (env, args, credentials, limits...).
    Config,
}

/// One thing to do against the API or Docker.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Generate a password and create the credentials Secret; observe it again.
    GenerateCredentials {
        /// The Secret's name.
        secret: String,
    },
    /// Connect to the destination's server.
    Connect {
        /// The Server's name.
        server: String,
    },
    /// Inspect the container of the Database's name.
    Inspect {
        /// The container.
        container: String,
    },
    /// Pull the image unless the daemon has it, reporting progress in `Progressing`.
    PullImage {
        /// The image.
        image: String,
        /// The status to report progress on (see [`pulling`]).
        progress: Box<DatabaseStatus>,
    },
    /// Stop the container cleanly and remove it (the volume stays).
    Recreate {
        /// The container.
        container: String,
        /// Why.
        reason: RollReason,
    },
    /// Ensure the volume, then create and start the container; inspect it.
    Create {
        /// The data volume.
        volume: String,
        /// The volume's labels.
        volume_labels: Labels,
        /// The container.
        container: Box<ContainerSpec>,
    },
    /// Start the stopped container; inspect it.
    Start {
        /// The container.
        container: String,
    },
    /// Run the engine's readiness probe in the container.
    Probe {
        /// The container.
        container: String,
        /// The probe.
        exec: ExecPlan,
    },
    /// Read the container's last log lines.
    ReadLogs {
        /// The container.
        container: String,
    },
}

/// An event to record about the Database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Normal or Warning.
    pub type_: EventType,
    /// The reason.
    pub reason: DatabaseReason,
    /// The message.
    pub message: String,
}

/// How a reconcile ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status to write (nothing is written when it equals the stored one).
    pub status: DatabaseStatus,
    /// Events to record, before the status is written.
    pub events: Vec<Note>,
    /// When to look again without a change; `None`: on a change only.
    pub requeue: Option<Duration>,
    /// Whether the reconcile then fails with the error of the last step (retried with
    /// backoff).
    pub fail: bool,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Run these in order (a failed pull ends the list), record what they found in
    /// [`Observed`], and decide again.
    Steps(Vec<Step>),
    /// Record the events, write the status and end the reconcile.
    Done(Box<Outcome>),
}

/// The container spec the Database should run, with `creds`.
pub fn want(o: &Observed, creds: &Credentials, network: &str) -> Result<ContainerSpec, plan::Error> {
    let owner = owner(&o.id);
    let lookup = |secret: &str, key: &str| o.env_secrets.get(&(secret.to_owned(), key.to_owned())).cloned();
    let inputs = plan::Inputs {
        engine: engine::engine(o.spec.engine),
        owner: &owner,
        scope: &o.scope,
        network,
        credentials: creds,
        secret: &lookup,
    };
    plan::container(&o.spec, &inputs)
}

/// The owner of the Database's container and volume.
pub fn owner(id: &Identity) -> Owner {
    Owner {
        kind: "Database".into(),
        namespace: id.namespace.clone(),
        name: id.name.clone(),
        uid: id.uid.clone(),
    }
}

/// `status` while the image pulls: `Progressing=True PullingImage` with `message`.
pub fn pulling(
    status: &DatabaseStatus,
    message: &str,
    generation: i64,
    now: DateTime<Utc>,
) -> DatabaseStatus {
    let mut progress = status.clone();
    set(
        &mut progress,
        DatabaseCondition::Progressing,
        ConditionStatus::True,
        DatabaseReason::PullingImage,
        message,
        generation,
        now,
    );
    progress
}

/// The next plan for `o`.
pub fn decide(o: &Observed, now: DateTime<Utc>, t: &Tunables) -> Plan {
    let (ns, name, generation) = (&o.id.namespace, &o.id.name, o.id.generation);
    let engine = engine::engine(o.spec.engine);
    let host = container_config::alias(ns, name);
    let mut next = DatabaseStatus {
        observed_generation: Some(generation),
        conditions: o.status.conditions.clone(),
        internal_endpoint: Some(format!("{host}:{}", engine.port)),
        connection_url_template: Some(engine.url_template(&host)),
        container: Some(plan::container_name(ns, name)),
        volume: Some(plan::volume_name(&o.spec, ns, name)),
        ..DatabaseStatus::default()
    };
    let block = |next: DatabaseStatus, reason, message: String, fail| {
        Plan::Done(Box::new(blocked(next, reason, &message, generation, now, fail)))
    };

    // Where it runs, and as whom.
    let Some(dest) = &o.destination else {
        let message = format!("spec.destination: destination {:?} not found", o.spec.destination);
        return block(next, DatabaseReason::DestinationNotFound, message, false);
    };
    let (secret_name, creds) = match credentials(o) {
        CredentialsChoice::Use(secret, creds) => (secret, creds),
        CredentialsChoice::Generate(secret) => {
            return Plan::Steps(vec![Step::GenerateCredentials { secret }]);
        }
        CredentialsChoice::Block(reason, message) => return block(next, reason, message, false),
    };
    next.credentials_secret = Some(secret_name);
    match &o.docker {
        DockerFacts::Unknown => {
            return Plan::Steps(vec![Step::Connect {
                server: dest.server.clone(),
            }]);
        }
        DockerFacts::Unavailable(message) => {
            return block(next, DatabaseReason::ServerUnavailable, message.clone(), true);
        }
        DockerFacts::Connected | DockerFacts::Inspected(_) => {}
    }

    // What should run.
    let want = match want(o, &creds, &dest.network) {
        Ok(c) => c,
        Err(e) => {
            let reason = match e {
                plan::Error::Env(_) => DatabaseReason::SecretNotFound,
                plan::Error::ReservedEnv { .. } => DatabaseReason::InvalidSpec,
            };
            return block(next, reason, e.to_string(), false);
        }
    };
    next.public_endpoint = o.spec.public_port.map(|p| format!("{}:{p}", dest.server));
    let DockerFacts::Inspected(container) = &o.docker else {
        return Plan::Steps(vec![Step::Inspect {
            container: want.name.clone(),
        }]);
    };

    // Converge: one container, this config, running.
    let hash = want.config_hash();
    if let Some(c) = container
        && !manages(c, &o.scope)
    {
        let message = format!(
            "a container named {} exists and is not a berth Database container; \
             remove or rename it",
            want.name
        );
        return block(next, DatabaseReason::ContainerConflict, message, false);
    }
    if !o.converged {
        let roll = container
            .as_ref()
            .and_then(|c| roll_reason(c, &hash, &o.id.uid, &want.image));
        if container.is_none() || roll.is_some() {
            let mut steps = Vec::new();
            match &o.pull {
                None => steps.push(Step::PullImage {
                    image: want.image.clone(),
                    progress: Box::new(next.clone()),
                }),
                Some(PullFacts::Pulled) => {}
                Some(PullFacts::Failed(message)) if roll.is_some() => {
                    let kept = format!("{message}; the running container is kept");
                    set(
                        &mut next,
                        DatabaseCondition::Progressing,
                        ConditionStatus::False,
                        DatabaseReason::ImagePullFailed,
                        &kept,
                        generation,
                        now,
                    );
                    return Plan::Done(Box::new(Outcome {
                        status: next,
                        events: Vec::new(),
                        requeue: None,
                        fail: true,
                    }));
                }
                Some(PullFacts::Failed(message)) => {
                    return block(next, DatabaseReason::ImagePullFailed, message.clone(), true);
                }
            }
            if let Some(reason) = roll {
                steps.push(Step::Recreate {
                    container: want.name.clone(),
                    reason,
                });
            }
            steps.push(Step::Create {
                volume: plan::volume_name(&o.spec, ns, name),
                volume_labels: plan::labels(&owner(&o.id), &o.scope),
                container: Box::new(want),
            });
            return Plan::Steps(steps);
        }
        if container.as_ref().is_some_and(|c| c.run == ContainerRun::Stopped) {
            return Plan::Steps(vec![Step::Start {
                container: want.name.clone(),
            }]);
        }
    }
    let running = container.as_ref().is_some_and(|c| c.run == ContainerRun::Running);
    if let Some(c) = container {
        next.image = Some(format!("{}@{}", c.image, c.image_id));
    }

    // Ready: the engine's own probe.
    let ready = running
        && match o.probe {
            Some(ready) => ready,
            None => {
                return Plan::Steps(vec![Step::Probe {
                    container: want.name.clone(),
                    exec: engine.ready(&creds),
                }]);
            }
        };
    let short = &hash[..HASH_SHOWN.min(hash.len())];
    if ready {
        set(
            &mut next,
            DatabaseCondition::Ready,
            ConditionStatus::True,
            DatabaseReason::EngineReady,
            "the engine answers its readiness probe",
            generation,
            now,
        );
        set(
            &mut next,
            DatabaseCondition::Progressing,
            ConditionStatus::False,
            DatabaseReason::Available,
            &format!("running config {short}"),
            generation,
            now,
        );
        return Plan::Done(Box::new(Outcome {
            status: next,
            events: Vec::new(),
            requeue: None,
            fail: false,
        }));
    }
    set(
        &mut next,
        DatabaseCondition::Ready,
        ConditionStatus::False,
        DatabaseReason::Starting,
        "waiting for the engine's readiness probe",
        generation,
        now,
    );
    let progressing_since = o
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == DatabaseCondition::Progressing && c.status == ConditionStatus::True)
        .map(|c| c.last_transition_time);
    let overdue = progressing_since
        .is_some_and(|since| (now - since).to_std().unwrap_or_default() >= t.progress_deadline);
    if overdue {
        let Some(logs) = &o.logs else {
            return Plan::Steps(vec![Step::ReadLogs {
                container: want.name.clone(),
            }]);
        };
        let message = format!(
            "not ready within {}s; last log lines:\n{logs}",
            t.progress_deadline.as_secs()
        );
        // Overdue implies Progressing was True: the warning is recorded once, on the
        // transition to False.
        let events = vec![Note {
            type_: EventType::Warning,
            reason: DatabaseReason::ProbeFailed,
            message: "the engine did not become ready".into(),
        }];
        set(
            &mut next,
            DatabaseCondition::Progressing,
            ConditionStatus::False,
            DatabaseReason::ProbeFailed,
            &message,
            generation,
            now,
        );
        return Plan::Done(Box::new(Outcome {
            status: next,
            events,
            requeue: Some(t.overdue_requeue),
            fail: false,
        }));
    }
    set(
        &mut next,
        DatabaseCondition::Progressing,
        ConditionStatus::True,
        DatabaseReason::Starting,
        &format!("starting config {short}"),
        generation,
        now,
    );
    Plan::Done(Box::new(Outcome {
        status: next,
        events: Vec::new(),
        requeue: Some(t.starting_requeue),
        fail: false,
    }))
}

/// The credentials decision.
enum CredentialsChoice {
    /// Use these, from this Secret.
    Use(String, Credentials),
    /// Generate the Secret of this name.
    Generate(String),
    /// Cannot run: reason and message.
    Block(DatabaseReason, String),
}

fn credentials(o: &Observed) -> CredentialsChoice {
    let read = |secret: &str, credentials: &Result<Credentials, String>| match credentials {
        Ok(c) => CredentialsChoice::Use(secret.to_owned(), c.clone()),
        Err(e) => CredentialsChoice::Block(
            DatabaseReason::InvalidCredentials,
            format!("spec.credentialsSecretRef: {e}"),
        ),
    };
    if let Some(r) = &o.spec.credentials_secret_ref {
        return match &o.secret {
            SecretFacts::Found { credentials, .. } => read(r, credentials),
            SecretFacts::Generated(c) => CredentialsChoice::Use(r.clone(), c.clone()),
            SecretFacts::Missing => CredentialsChoice::Block(
                DatabaseReason::SecretNotFound,
                format!("spec.credentialsSecretRef: secret {r:?} not found"),
            ),
        };
    }
    let secret = super::credentials::secret_name(&o.id.name);
    match &o.secret {
        SecretFacts::Missing => CredentialsChoice::Generate(secret),
        SecretFacts::Generated(c) => CredentialsChoice::Use(secret, c.clone()),
        SecretFacts::Found { owned: false, .. } => CredentialsChoice::Block(
            DatabaseReason::SecretConflict,
            format!(
                "secret {secret:?} exists and is not owned by this database; \
                 name it in spec.credentialsSecretRef to use it"
            ),
        ),
        SecretFacts::Found { credentials, .. } => read(&secret, credentials),
    }
}

/// Whether `c` is a Database container of this berth (managed, kind, scope): only those
/// are ever replaced.
fn manages(c: &ContainerFacts, scope: &Labels) -> bool {
    let is = |k: &str, v: &str| c.labels.get(k).map(String::as_str) == Some(v);
    is(label::MANAGED, "true") && is(label::KIND, "Database") && scope.iter().all(|(k, v)| is(k, v))
}

/// Why `c` must be replaced to run config `hash` of owner `uid`, if it must.
fn roll_reason(c: &ContainerFacts, hash: &str, uid: &str, image: &str) -> Option<RollReason> {
    if c.labels.get(label::UID).map(String::as_str) != Some(uid) {
        return Some(RollReason::Owner);
    }
    if c.labels.get(label::CONFIG_HASH).map(String::as_str) == Some(hash) {
        return None;
    }
    Some(if c.image == image {
        RollReason::Config
    } else {
        RollReason::Image {
            from: c.image.clone(),
            to: image.to_owned(),
        }
    })
}

/// `Ready=False` and `Progressing=False` with `reason`; on a change only.
fn blocked(
    mut next: DatabaseStatus,
    reason: DatabaseReason,
    message: &str,
    generation: i64,
    now: DateTime<Utc>,
    fail: bool,
) -> Outcome {
    for condition in [DatabaseCondition::Ready, DatabaseCondition::Progressing] {
        set(
            &mut next,
            condition,
            ConditionStatus::False,
            reason,
            message,
            generation,
            now,
        );
    }
    Outcome {
        status: next,
        events: Vec::new(),
        requeue: None,
        fail,
    }
}

fn set(
    next: &mut DatabaseStatus,
    condition: DatabaseCondition,
    s: ConditionStatus,
    reason: DatabaseReason,
    message: &str,
    generation: i64,
    now: DateTime<Utc>,
) {
    status::set_condition(
        &mut next.conditions,
        condition.as_str(),
        s,
        reason.as_str(),
        message,
        generation,
        now,
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use berth_crds::{kinds::DestinationSpec, meta::Condition};

    const T: Tunables = Tunables {
        progress_deadline: Duration::from_secs(300),
        starting_requeue: Duration::from_millis(500),
        overdue_requeue: Duration::from_secs(5),
    };

    fn now() -> DateTime<Utc> {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn creds() -> Credentials {
        Credentials {
            username: "postgres".into(),
            password: "pw".into(),
            database: "orders".into(),
        }
    }

    /// A first creation: the destination and the generated Secret exist, no container.
    fn base() -> Observed {
        Observed {
            id: Identity {
                namespace: "shop".into(),
                name: "orders".into(),
                uid: "u1".into(),
                generation: 3,
            },
            spec: serde_json::from_str(r#"{"engine":"postgresql","destination":"default","version":"16"}"#)
                .unwrap(),
            status: DatabaseStatus::default(),
            scope: Labels::from([("dev.berth.run".to_string(), "r1".to_string())]),
            destination: Some(DestinationSpec {
                server: "localhost".into(),
                network: "berth".into(),
            }),
            secret: SecretFacts::Found {
                owned: true,
                credentials: Ok(creds()),
            },
            env_secrets: BTreeMap::new(),
            docker: DockerFacts::Inspected(None),
            pull: None,
            converged: false,
            probe: None,
            logs: None,
        }
    }

    /// The container `o` would create, as Docker reports it once it runs as `run`.
    fn container(o: &Observed, run: ContainerRun) -> DockerFacts {
        let spec = want(o, &creds(), "berth").unwrap();
        let mut labels = spec.labels.clone();
        labels.insert(label::CONFIG_HASH.into(), spec.config_hash());
        DockerFacts::Inspected(Some(ContainerFacts {
            labels,
            run,
            image: spec.image,
            image_id: "sha256:abc".into(),
        }))
    }

    fn running(o: &mut Observed) {
        o.docker = container(o, ContainerRun::Running);
    }

    fn progressing_since(o: &mut Observed, secs_ago: i64) {
        o.status.conditions.push(Condition {
            type_: "Progressing".into(),
            status: ConditionStatus::True,
            reason: "Starting".into(),
            message: "starting".into(),
            last_transition_time: now() - chrono::Duration::seconds(secs_ago),
            observed_generation: Some(3),
        });
    }

    fn env(o: &mut Observed, json: &str) {
        o.spec.env = serde_json::from_str(json).unwrap();
    }

    /// A plan, comparable: step names, or the conditions, requeue, failure and events.
    #[derive(Debug, PartialEq)]
    enum Expect {
        Steps(Vec<&'static str>),
        Done {
            ready: Option<(ConditionStatus, DatabaseReason)>,
            progressing: Option<(ConditionStatus, DatabaseReason)>,
            requeue: Option<Duration>,
            fail: bool,
            events: Vec<DatabaseReason>,
        },
    }

    fn condition(s: &DatabaseStatus, c: DatabaseCondition) -> Option<(ConditionStatus, DatabaseReason)> {
        let found = s.conditions.iter().find(|x| x.type_ == c)?;
        let reason = ALL_REASONS.iter().find(|r| found.reason == **r)?;
        Some((found.status, *reason))
    }

    const ALL_REASONS: [DatabaseReason; 13] = [
        DatabaseReason::DestinationNotFound,
        DatabaseReason::ServerUnavailable,
        DatabaseReason::SecretNotFound,
        DatabaseReason::InvalidCredentials,
        DatabaseReason::SecretConflict,
        DatabaseReason::InvalidSpec,
        DatabaseReason::ContainerConflict,
        DatabaseReason::ImagePullFailed,
        DatabaseReason::PullingImage,
        DatabaseReason::Starting,
        DatabaseReason::ProbeFailed,
        DatabaseReason::EngineReady,
        DatabaseReason::Available,
    ];

    fn step_name(s: &Step) -> &'static str {
        match s {
            Step::GenerateCredentials { .. } => "GenerateCredentials",
            Step::Connect { .. } => "Connect",
            Step::Inspect { .. } => "Inspect",
            Step::PullImage { .. } => "PullImage",
            Step::Recreate {
                reason: RollReason::Owner,
                ..
            } => "Recreate(Owner)",
            Step::Recreate {
                reason: RollReason::Image { .. },
                ..
            } => "Recreate(Image)",
            Step::Recreate {
                reason: RollReason::Config,
                ..
            } => "Recreate(Config)",
            Step::Create { .. } => "Create",
            Step::Start { .. } => "Start",
            Step::Probe { .. } => "Probe",
            Step::ReadLogs { .. } => "ReadLogs",
        }
    }

    fn summary(p: &Plan) -> Expect {
        match p {
            Plan::Steps(steps) => Expect::Steps(steps.iter().map(step_name).collect()),
            Plan::Done(o) => Expect::Done {
                ready: condition(&o.status, DatabaseCondition::Ready),
                progressing: condition(&o.status, DatabaseCondition::Progressing),
                requeue: o.requeue,
                fail: o.fail,
                events: o.events.iter().map(|n| n.reason).collect(),
            },
        }
    }

    use ConditionStatus::{False, True};
    use DatabaseReason as R;

    fn done(
        ready: Option<(ConditionStatus, DatabaseReason)>,
        progressing: Option<(ConditionStatus, DatabaseReason)>,
        requeue: Option<Duration>,
        fail: bool,
    ) -> Expect {
        Expect::Done {
            ready,
            progressing,
            requeue,
            fail,
            events: Vec::new(),
        }
    }

    fn blocked(reason: DatabaseReason, fail: bool) -> Expect {
        done(Some((False, reason)), Some((False, reason)), None, fail)
    }

    fn starting() -> Expect {
        done(
            Some((False, R::Starting)),
            Some((True, R::Starting)),
            Some(T.starting_requeue),
            false,
        )
    }

    fn steps(names: &[&'static str]) -> Expect {
        Expect::Steps(names.to_vec())
    }

    struct Case {
        name: &'static str,
        setup: fn(&mut Observed),
        expect: Expect,
    }

    fn case(name: &'static str, setup: fn(&mut Observed), expect: Expect) -> Case {
        Case { name, setup, expect }
    }

    fn cases() -> Vec<Case> {
        vec![
            // First creation.
            case(
                "first creation pulls, then creates",
                |_| {},
                steps(&["PullImage", "Create"]),
            ),
            case(
                "first creation after the pull creates",
                |o| o.pull = Some(PullFacts::Pulled),
                steps(&["Create"]),
            ),
            case(
                "just created and running: probe it",
                |o| {
                    running(o);
                    o.converged = true;
                },
                steps(&["Probe"]),
            ),
            case(
                "first creation, pull failed: blocked, and the reconcile fails",
                |o| o.pull = Some(PullFacts::Failed("no such image".into())),
                blocked(R::ImagePullFailed, true),
            ),
            // Running.
            case(
                "running, config unchanged: keep it, probe",
                running,
                steps(&["Probe"]),
            ),
            case(
                "running and healthy: Ready, nothing to do",
                |o| {
                    running(o);
                    o.probe = Some(true);
                },
                done(
                    Some((True, R::EngineReady)),
                    Some((False, R::Available)),
                    None,
                    false,
                ),
            ),
            case(
                "probe failing: not ready, progressing, look again soon",
                |o| {
                    running(o);
                    o.probe = Some(false);
                },
                starting(),
            ),
            case(
                "probe failing within the deadline: still starting",
                |o| {
                    running(o);
                    o.probe = Some(false);
                    progressing_since(o, 299);
                },
                starting(),
            ),
            case(
                "probe failing past the deadline: read the logs first",
                |o| {
                    running(o);
                    o.probe = Some(false);
                    progressing_since(o, 300);
                },
                steps(&["ReadLogs"]),
            ),
            case(
                "probe failing past the deadline: ProbeFailed with a warning",
                |o| {
                    running(o);
                    o.probe = Some(false);
                    o.logs = Some("FATAL: oops".into());
                    progressing_since(o, 900);
                },
                Expect::Done {
                    ready: Some((False, R::Starting)),
                    progressing: Some((False, R::ProbeFailed)),
                    requeue: Some(T.overdue_requeue),
                    fail: false,
                    events: vec![R::ProbeFailed],
                },
            ),
            // Exited.
            case(
                "exited: start it",
                |o| o.docker = container(o, ContainerRun::Stopped),
                steps(&["Start"]),
            ),
            case(
                "restarting under Docker's policy (its backoff): no start, no probe",
                |o| o.docker = container(o, ContainerRun::Restarting),
                starting(),
            ),
            case(
                "started this reconcile and exited again: no second start",
                |o| {
                    o.docker = container(o, ContainerRun::Stopped);
                    o.converged = true;
                },
                starting(),
            ),
            // Config rolls.
            case(
                "version changed: pull, recreate, create",
                |o| {
                    running(o);
                    o.spec.version = Some("17".into());
                },
                steps(&["PullImage", "Recreate(Image)", "Create"]),
            ),
            case(
                "image changed: recreate",
                |o| {
                    running(o);
                    o.spec.image = Some("my/postgres:16".into());
                },
                steps(&["PullImage", "Recreate(Image)", "Create"]),
            ),
            case(
                "env changed: recreate",
                |o| {
                    running(o);
                    env(o, r#"[{"name":"TZ","value":"UTC"}]"#);
                },
                steps(&["PullImage", "Recreate(Config)", "Create"]),
            ),
            case(
                "args changed: recreate",
                |o| {
                    running(o);
                    o.spec.args = vec!["postgres".into(), "-c".into(), "max_connections=200".into()];
                },
                steps(&["PullImage", "Recreate(Config)", "Create"]),
            ),
            case(
                "credentials changed: recreate",
                |o| {
                    running(o);
                    o.secret = SecretFacts::Found {
                        owned: true,
                        credentials: Ok(Credentials {
                            password: "other".into(),
                            ..creds()
                        }),
                    };
                },
                steps(&["PullImage", "Recreate(Config)", "Create"]),
            ),
            case(
                "a container of an earlier database of that name: recreate",
                |o| {
                    running(o);
                    o.id.uid = "u2".into();
                },
                steps(&["PullImage", "Recreate(Owner)", "Create"]),
            ),
            case(
                "config changed, image pulled: recreate without pulling again",
                |o| {
                    running(o);
                    o.spec.version = Some("17".into());
                    o.pull = Some(PullFacts::Pulled);
                },
                steps(&["Recreate(Image)", "Create"]),
            ),
            case(
                "config changed, pull failed: the running container is kept, Ready untouched",
                |o| {
                    running(o);
                    o.status.conditions.push(Condition {
                        type_: "Ready".into(),
                        status: True,
                        reason: "EngineReady".into(),
                        message: String::new(),
                        last_transition_time: now(),
                        observed_generation: Some(2),
                    });
                    o.spec.version = Some("17".into());
                    o.pull = Some(PullFacts::Failed("manifest unknown".into()));
                },
                done(
                    Some((True, R::EngineReady)),
                    Some((False, R::ImagePullFailed)),
                    None,
                    true,
                ),
            ),
            // Blocked.
            case(
                "destination missing",
                |o| o.destination = None,
                blocked(R::DestinationNotFound, false),
            ),
            case(
                "generated credentials missing: generate them",
                |o| o.secret = SecretFacts::Missing,
                steps(&["GenerateCredentials"]),
            ),
            case(
                "generated credentials just made: go on",
                |o| {
                    o.secret = SecretFacts::Generated(creds());
                    o.docker = DockerFacts::Unknown;
                },
                steps(&["Connect"]),
            ),
            case(
                "referenced credentials missing: blocked",
                |o| {
                    o.spec.credentials_secret_ref = Some("mine".into());
                    o.secret = SecretFacts::Missing;
                },
                blocked(R::SecretNotFound, false),
            ),
            case(
                "referenced credentials without a password: blocked",
                |o| {
                    o.spec.credentials_secret_ref = Some("mine".into());
                    o.secret = SecretFacts::Found {
                        owned: false,
                        credentials: Err("secret \"mine\" has no key \"password\"".into()),
                    };
                },
                blocked(R::InvalidCredentials, false),
            ),
            case(
                "a referenced Secret need not be owned",
                |o| {
                    o.spec.credentials_secret_ref = Some("mine".into());
                    o.secret = SecretFacts::Found {
                        owned: false,
                        credentials: Ok(creds()),
                    };
                },
                steps(&["PullImage", "Create"]),
            ),
            case(
                "the generated Secret's name taken by a Secret not ours: blocked",
                |o| {
                    o.secret = SecretFacts::Found {
                        owned: false,
                        credentials: Ok(creds()),
                    }
                },
                blocked(R::SecretConflict, false),
            ),
            case(
                "not connected yet: connect",
                |o| o.docker = DockerFacts::Unknown,
                steps(&["Connect"]),
            ),
            case(
                "server unavailable: blocked, and the reconcile fails",
                |o| o.docker = DockerFacts::Unavailable("server \"localhost\" unreachable".into()),
                blocked(R::ServerUnavailable, true),
            ),
            case(
                "connected: inspect",
                |o| o.docker = DockerFacts::Connected,
                steps(&["Inspect"]),
            ),
            case(
                "an env var's Secret missing: blocked",
                |o| env(o, r#"[{"name":"X","secretKeyRef":{"name":"tuning","key":"k"}}]"#),
                blocked(R::SecretNotFound, false),
            ),
            case(
                "an env var's Secret found: go on",
                |o| {
                    env(o, r#"[{"name":"X","secretKeyRef":{"name":"tuning","key":"k"}}]"#);
                    o.env_secrets.insert(("tuning".into(), "k".into()), "v".into());
                },
                steps(&["PullImage", "Create"]),
            ),
            case(
                "an env var overriding a credential: blocked",
                |o| env(o, r#"[{"name":"POSTGRES_PASSWORD","value":"x"}]"#),
                blocked(R::InvalidSpec, false),
            ),
            case(
                "injectCredentials false: the env sets the credential variables itself",
                |o| {
                    o.spec.inject_credentials = false;
                    env(o, r#"[{"name":"POSTGRES_PASSWORD","value":"x"}]"#);
                },
                steps(&["PullImage", "Create"]),
            ),
            case(
                "a container of that name that is not ours: blocked, never touched",
                |o| {
                    running(o);
                    if let DockerFacts::Inspected(Some(c)) = &mut o.docker {
                        c.labels.remove(label::MANAGED);
                    }
                },
                blocked(R::ContainerConflict, false),
            ),
            case(
                "a Database container of another berth (scope): blocked",
                |o| {
                    running(o);
                    o.scope.insert("dev.berth.run".into(), "r2".into());
                },
                blocked(R::ContainerConflict, false),
            ),
        ]
    }

    #[test]
    fn decide_table() {
        let cases = cases();
        assert!(cases.len() >= 15);
        let mut failures = Vec::new();
        for c in &cases {
            let mut o = base();
            (c.setup)(&mut o);
            let got = summary(&decide(&o, now(), &T));
            if got != c.expect {
                failures.push(format!("{}:\n  want {:?}\n  got  {:?}", c.name, c.expect, got));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn a_ready_status_carries_endpoints_image_and_config() {
        let mut o = base();
        o.spec.public_port = Some(15432);
        running(&mut o);
        o.probe = Some(true);
        let Plan::Done(out) = decide(&o, now(), &T) else {
            panic!("not done");
        };
        let s = &out.status;
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.internal_endpoint.as_deref(), Some("orders.shop:5432"));
        assert_eq!(
            s.connection_url_template.as_deref(),
            Some("postgresql://$(username):$(password)@orders.shop:5432/$(database)")
        );
        assert_eq!(s.container.as_deref(), Some("shop-orders"));
        assert_eq!(s.volume.as_deref(), Some("shop-orders-data"));
        assert_eq!(s.credentials_secret.as_deref(), Some("orders-credentials"));
        assert_eq!(s.public_endpoint.as_deref(), Some("localhost:15432"));
        assert_eq!(s.image.as_deref(), Some("postgres:16@sha256:abc"));
        let hash = want(&o, &creds(), "berth").unwrap().config_hash();
        let progressing = s.conditions.iter().find(|c| c.type_ == "Progressing").unwrap();
        assert_eq!(progressing.message, format!("running config {}", &hash[..12]));
        assert_eq!(progressing.last_transition_time, now());
        assert_eq!(progressing.observed_generation, Some(3));
    }

    #[test]
    fn a_blocked_status_says_why_and_holds_only_what_is_known() {
        let mut o = base();
        o.destination = None;
        let Plan::Done(out) = decide(&o, now(), &T) else {
            panic!("not done");
        };
        assert_eq!(out.status.credentials_secret, None);
        assert_eq!(out.status.image, None);
        let ready = out.status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            ready.message,
            "spec.destination: destination \"default\" not found"
        );
    }

    #[test]
    fn a_kept_container_s_pull_failure_is_reported_with_its_cause() {
        let mut o = base();
        running(&mut o);
        o.spec.version = Some("17".into());
        o.pull = Some(PullFacts::Failed("image postgres:17: manifest unknown".into()));
        let Plan::Done(out) = decide(&o, now(), &T) else {
            panic!("not done");
        };
        let p = out
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap();
        assert_eq!(
            p.message,
            "image postgres:17: manifest unknown; the running container is kept"
        );
    }

    #[test]
    fn the_overdue_message_quotes_the_logs_and_the_deadline() {
        let mut o = base();
        running(&mut o);
        o.probe = Some(false);
        o.logs = Some("FATAL: oops".into());
        progressing_since(&mut o, 301);
        let Plan::Done(out) = decide(&o, now(), &T) else {
            panic!("not done");
        };
        let p = out
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap();
        assert_eq!(p.message, "not ready within 300s; last log lines:\nFATAL: oops");
        assert_eq!(p.last_transition_time, now(), "the status flipped");
    }

    #[test]
    fn the_steps_carry_what_act_needs() {
        let mut o = base();
        running(&mut o);
        o.spec.version = Some("17".into());
        let Plan::Steps(steps) = decide(&o, now(), &T) else {
            panic!("no steps");
        };
        assert!(matches!(&steps[0], Step::PullImage { image, .. } if image == "postgres:17"));
        assert!(matches!(
            &steps[1],
            Step::Recreate { container, reason: RollReason::Image { from, to } }
                if container == "shop-orders" && from == "postgres:16" && to == "postgres:17"
        ));
        let Step::Create {
            volume,
            volume_labels,
            container,
        } = &steps[2]
        else {
            panic!("no create");
        };
        assert_eq!(volume, "shop-orders-data");
        assert_eq!(volume_labels.get("dev.berth.run").map(String::as_str), Some("r1"));
        assert_eq!(container.image, "postgres:17");
        let pulling = match &steps[0] {
            Step::PullImage { progress, .. } => pulling(progress, "pulling: 1/3 layers", 3, now()),
            _ => unreachable!(),
        };
        let p = pulling
            .conditions
            .iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap();
        assert_eq!((p.status, p.reason.as_str()), (True, "PullingImage"));
    }
}
