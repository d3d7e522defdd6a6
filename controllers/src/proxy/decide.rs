//! Deciding what a Proxy reconcile does: a pure function from what is wanted ([`Desired`])
//! and what was observed ([`Observed`]) to a [`Plan`] of steps, the status to report and
//! when to look again.
//!
//! # Guarantees
//! - Pure: no I/O, no clock; the same inputs give the same plan (condition transition
//!   times are stamped when the report is written).
//! - Container first: while the Traefik container is missing, stale or stopped, the plan
//!   only fixes it and asks for a second observation ([`Next::ObserveAgain`]); after that
//!   the container is taken as it is, so a reconcile observes at most twice.
//! - Slots: a new revision is written whole into the slot not in use and the other slot is
//!   emptied after it (in the same upload); the slot holding the wanted revision is never
//!   rewritten while another one is live ([`switch`]).
//! - `status.routes`, `status.backends`, `status.errors` and `Ready=True` are reported only
//!   once the wanted revision is the only one live in Traefik.
//! - Networks: the container is attached to every wanted network and detached from every
//!   other Destination network on its server ([`Networks`]); a network no Destination names
//!   (another tool's) and the container's own network ([`super::DEFAULT_NETWORK`], or the
//!   one its spec names) are never detached.
//! - One Proxy per server: of the Proxies naming a server, the oldest (creation time, then
//!   name; one being deleted included, as its container holds the ports until its
//!   finalizer removed it) serves it ([`serving`]). Any other stands by ([`standby`]): it
//!   removes a container of its own if one exists, creates none, binds no port, and reports
//!   `Running=False` and `Ready=False` with reason `ServerHasProxy` naming the serving one.
//! - A report repeated on an unchanged world is the same report: the status helper then
//!   writes nothing, so a reconcile never triggers itself through its own status.

use std::collections::BTreeSet;

use berth_crds::{
    kinds::{
        ProxySpec,
        proxy::{ProxyCondition, ProxyReason, ProxyStatus},
    },
    meta::ConditionStatus,
};
use chrono::{DateTime, Utc};

use super::{
    DEFAULT_NETWORK, RESYNC, VERIFY_AGAIN, container,
    observe::{ContainerObs, Observed, TraefikObs},
    render,
};
use crate::docker::{ContainerSpec, Labels};

/// How soon a proxy whose Traefik API does not answer yet is looked at again.
pub const API_AGAIN: std::time::Duration = std::time::Duration::from_millis(250);

/// One of the two files of Traefik's watched directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    /// `a.yml`: wins over `b` when both define a name.
    A,
    /// `b.yml`.
    B,
}

impl Slot {
    /// The slot's name, as in revision markers.
    pub fn name(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
        }
    }

    /// The slot's file name in [`super::DYNAMIC_DIR`].
    pub fn file(self) -> &'static str {
        match self {
            Self::A => "a.yml",
            Self::B => "b.yml",
        }
    }
}

/// The networks of a Proxy's server, as far as its container is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    /// Destination networks of routed Applications: the container must be on each.
    pub wanted: BTreeSet<String>,
    /// The network of every Destination berth knows on the server, those being deleted
    /// included: the container is detached from those of them not wanted, and only those.
    pub berth: BTreeSet<String>,
}

/// What the Proxy wants, computed (purely) from its spec and the Applications on its server.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The Traefik container.
    pub container: ContainerSpec,
    /// The container spec's config hash (what a current container is labelled with).
    pub config_hash: String,
    /// The networks to attach the container to and those it may be detached from.
    pub networks: Networks,
    /// The routing configuration.
    pub rendered: render::Rendered,
    /// Its revision.
    pub revision: String,
}

impl Desired {
    /// What Proxy `name` (uid `uid`, `spec`) wants, given the routed `apps` and the
    /// server's `networks`; the container carries `extra_labels`.
    pub fn new(
        name: &str,
        uid: &str,
        spec: &ProxySpec,
        extra_labels: &Labels,
        apps: &[render::App],
        networks: Networks,
    ) -> Result<Self, serde_yaml::Error> {
        let rendered = render::render(
            apps,
            &render::Settings {
                acme: spec.acme.is_some(),
                https_port: spec.https_port,
            },
        );
        let revision = render::revision(&rendered.config)?;
        let container = container::container_spec(name, uid, spec, extra_labels);
        Ok(Self {
            config_hash: container.config_hash(),
            container,
            networks,
            rendered,
            revision,
        })
    }
}

/// Why the container is recreated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recreate {
    /// It runs another image.
    Image {
        /// The image it runs.
        from: String,
        /// The image wanted.
        to: String,
    },
    /// Same image, other configuration (ports, arguments, labels, CA certificates).
    Config,
}

impl std::fmt::Display for Recreate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Image { from, to } => write!(f, "image {from} -> {to}"),
            Self::Config => f.write_str("configuration changed"),
        }
    }
}

/// One thing to do, in plan order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the container and lay out its files (both slots empty, CA certificates).
    CreateContainer,
    /// Remove the container, then create it as [`Step::CreateContainer`] does.
    RecreateContainer {
        /// Why.
        why: Recreate,
    },
    /// Start the (created or stopped) container; its files survive in its writable layer.
    StartContainer,
    /// Remove the container (a standby Proxy's, see [`standby`]).
    RemoveContainer,
    /// Attach the container to a destination network.
    ConnectNetwork(String),
    /// Detach the container from a destination network no routed Application needs.
    DisconnectNetwork(String),
    /// Write the configuration at `revision` whole into `slot`.
    UploadSlot {
        /// The slot written.
        slot: Slot,
        /// The revision written (named by the slot's marker).
        revision: String,
    },
    /// Empty a slot.
    EmptySlot(Slot),
}

/// When to reconcile again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Traefik's API does not answer yet ([`API_AGAIN`]).
    TraefikApi,
    /// A configuration was uploaded: verify it is live (after 100 ms).
    AwaitLive,
    /// Settled: look again for drift and Secrets ([`RESYNC`]).
    Resync,
}

impl Requeue {
    /// The delay.
    pub fn after(self) -> std::time::Duration {
        match self {
            Self::TraefikApi => API_AGAIN,
            Self::AwaitLive => VERIFY_AGAIN,
            Self::Resync => RESYNC,
        }
    }
}

/// A condition to set (stamped with the time when written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// Which condition.
    pub type_: ProxyCondition,
    /// Its status.
    pub status: ConditionStatus,
    /// Why.
    pub reason: ProxyReason,
    /// For humans.
    pub message: String,
}

/// The status to write: every field but the conditions' times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The next status, conditions as they were.
    pub status: ProxyStatus,
    /// Conditions to set on it, in order.
    pub conditions: Vec<ConditionUpdate>,
}

impl Report {
    /// The update of condition `type_`, if the report sets it.
    pub fn condition(&self, type_: ProxyCondition) -> Option<&ConditionUpdate> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// A state the reconcile cannot go on from: it fails (and is retried with backoff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The container has no address to reach Traefik's API on.
    NoAddress(String),
    /// The container vanished between being created or started and observed again.
    Vanished(String),
}

/// What follows the steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Observe again and decide again (the container was just created or started).
    ObserveAgain,
    /// Write the status and requeue.
    Report {
        /// The status.
        report: Box<Report>,
        /// When to look again.
        requeue: Requeue,
    },
    /// Fail the reconcile.
    Fail(Refusal),
}

/// What a reconcile does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Then.
    pub next: Next,
}

impl Plan {
    /// The report, if the plan ends with one.
    pub fn report(&self) -> Option<&Report> {
        match &self.next {
            Next::Report { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// What to do about the routing configuration, given what Traefik has live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// The wanted revision is the only one live: nothing to upload.
    Live,
    /// Write the wanted revision whole into slot `write`, then empty slot `empty`.
    Write {
        /// The slot not in use.
        write: Slot,
        /// The slot in use (or a stale one).
        empty: Slot,
    },
    /// The wanted revision is live next to an older one: Traefik has not caught up with
    /// the emptied slot yet, or emptying it was lost. Empty `slot` (again); never rewrite
    /// the slot holding the wanted revision, which would drop its routes for an instant.
    Empty {
        /// The slot holding the older revision.
        slot: Slot,
    },
}

/// Switches from the live `(slot, revision)` markers. Slot `a` wins over `b` in Traefik
/// when both define a name, so when the state is unclear (none or both live) the new
/// revision goes to `a`.
pub fn switch(markers: &[(String, String)], revision: &str) -> Switch {
    match markers {
        [(_, live)] if live == revision => Switch::Live,
        [(slot, _)] if slot == "a" => Switch::Write {
            write: Slot::B,
            empty: Slot::A,
        },
        [(a, ra), (b, rb)] if a != b && (ra == revision) != (rb == revision) => {
            let older = if ra == revision { b } else { a };
            Switch::Empty {
                slot: if older == "a" { Slot::A } else { Slot::B },
            }
        }
        _ => Switch::Write {
            write: Slot::A,
            empty: Slot::B,
        },
    }
}

/// A Proxy naming a server, as [`serving`] weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its `metadata.creationTimestamp` (set on every stored object).
    pub created: Option<DateTime<Utc>>,
}

/// The Proxy that serves a server, among `candidates` (every Proxy naming that server, one
/// being deleted included): the oldest, ties broken by name, so every reader (the Proxy
/// and Application controllers) picks the same one whatever the order of its cache.
pub fn serving<'a>(candidates: impl IntoIterator<Item = Candidate<'a>>) -> Option<&'a str> {
    candidates
        .into_iter()
        .min_by_key(|c| (c.created, c.name))
        .map(|c| c.name)
}

/// The plan of a Proxy on `server` that `serving` (another Proxy) serves: no container (its
/// own is removed if it exists), and `Running=False`, `Ready=False` with reason
/// `ServerHasProxy`. The status keeps only the conditions: no container, routes or
/// backends. Requeued at [`Requeue::Resync`]; the serving Proxy going away triggers it at
/// once.
pub fn standby(
    serving: &str,
    server: &str,
    container: Option<&ContainerObs>,
    old: &ProxyStatus,
    generation: i64,
) -> Plan {
    let message =
        format!("proxy {serving:?} serves server {server:?}: this one stands by (no container, no ports)");
    let condition = |type_| ConditionUpdate {
        type_,
        status: ConditionStatus::False,
        reason: ProxyReason::ServerHasProxy,
        message: message.clone(),
    };
    Plan {
        steps: container.map(|_| Step::RemoveContainer).into_iter().collect(),
        next: Next::Report {
            report: Box::new(Report {
                status: ProxyStatus {
                    observed_generation: Some(generation),
                    conditions: old.conditions.clone(),
                    ..ProxyStatus::default()
                },
                conditions: vec![
                    condition(ProxyCondition::Running),
                    condition(ProxyCondition::Ready),
                ],
            }),
            requeue: Requeue::Resync,
        },
    }
}

/// The plan for a Proxy at `generation` whose status was `old`.
pub fn decide(desired: &Desired, observed: &Observed, old: &ProxyStatus, generation: i64) -> Plan {
    let Some(c) = &observed.container else {
        if observed.after_container_steps {
            return Plan {
                steps: Vec::new(),
                next: Next::Fail(Refusal::Vanished(desired.container.name.clone())),
            };
        }
        return Plan {
            steps: vec![Step::CreateContainer, Step::StartContainer],
            next: Next::ObserveAgain,
        };
    };
    if !observed.after_container_steps
        && let Some(steps) = container_steps(desired, c)
    {
        return Plan {
            steps,
            next: Next::ObserveAgain,
        };
    }
    let mut steps = network_steps(desired, c);
    let live = match &observed.traefik {
        TraefikObs::NoAddress => {
            return Plan {
                steps,
                next: Next::Fail(Refusal::NoAddress(c.name.clone())),
            };
        }
        TraefikObs::Unreachable(e) => {
            let report = report(
                desired,
                c,
                old,
                generation,
                old.revision.clone(),
                Ready::Pending(format!("waiting for traefik's api: {e}")),
            );
            return Plan {
                steps,
                next: Next::Report {
                    report: Box::new(report),
                    requeue: Requeue::TraefikApi,
                },
            };
        }
        TraefikObs::Live(live) => live,
    };
    let live_revision = match live.markers.as_slice() {
        [(_, rev)] => Some(rev.clone()),
        _ => old.revision.clone(),
    };
    let revision = &desired.revision;
    let (ready, requeue) = match switch(&live.markers, revision) {
        Switch::Live => (Ready::Live(&live.errors), Requeue::Resync),
        Switch::Write { write, empty } => {
            steps.push(Step::UploadSlot {
                slot: write,
                revision: revision.clone(),
            });
            steps.push(Step::EmptySlot(empty));
            (Ready::Pending(pending(revision)), Requeue::AwaitLive)
        }
        Switch::Empty { slot } => {
            steps.push(Step::EmptySlot(slot));
            (Ready::Pending(pending(revision)), Requeue::AwaitLive)
        }
    };
    let report = report(desired, c, old, generation, live_revision, ready);
    Plan {
        steps,
        next: Next::Report {
            report: Box::new(report),
            requeue,
        },
    }
}

fn pending(revision: &str) -> String {
    format!("waiting for traefik to load revision {revision}")
}

/// Attaches the container to the wanted networks it is not on, then detaches it from the
/// berth networks it is on that are not wanted, never from its own network.
fn network_steps(desired: &Desired, c: &ContainerObs) -> Vec<Step> {
    let Networks { wanted, berth } = &desired.networks;
    let own =
        |n: &str| n == DEFAULT_NETWORK || desired.container.network.as_ref().is_some_and(|a| a.name == n);
    let connect = wanted
        .iter()
        .filter(|n| !c.networks.contains(*n))
        .map(|n| Step::ConnectNetwork(n.clone()));
    let disconnect = c
        .networks
        .iter()
        .filter(|n| berth.contains(*n) && !wanted.contains(*n) && !own(n))
        .map(|n| Step::DisconnectNetwork(n.clone()));
    connect.chain(disconnect).collect()
}

/// The steps that bring the container to the wanted spec and running, if any are needed.
fn container_steps(desired: &Desired, c: &ContainerObs) -> Option<Vec<Step>> {
    if c.config_hash.as_deref() != Some(desired.config_hash.as_str()) {
        let why = if c.image != desired.container.image {
            Recreate::Image {
                from: c.image.clone(),
                to: desired.container.image.clone(),
            }
        } else {
            Recreate::Config
        };
        return Some(vec![Step::RecreateContainer { why }, Step::StartContainer]);
    }
    (!c.running).then(|| vec![Step::StartContainer])
}

/// The state of the `Ready` condition.
enum Ready<'a> {
    /// The wanted revision is the only one live; Traefik reports these errors.
    Live(&'a [String]),
    /// Not yet, with this message.
    Pending(String),
}

fn report(
    desired: &Desired,
    c: &ContainerObs,
    old: &ProxyStatus,
    generation: i64,
    revision: Option<String>,
    ready: Ready<'_>,
) -> Report {
    let rendered = &desired.rendered;
    let mut status = ProxyStatus {
        observed_generation: Some(generation),
        conditions: old.conditions.clone(),
        container_id: Some(c.id.clone()),
        routes: old.routes,
        revision,
        errors: old.errors.clone(),
        backends: old.backends.clone(),
    };
    let running = ConditionUpdate {
        type_: ProxyCondition::Running,
        status: if c.running {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        reason: ProxyReason::Container,
        message: String::new(),
    };
    let ready = match ready {
        Ready::Live(traefik_errors) => {
            status.routes = Some(rendered.routes);
            status.backends = rendered.backends.clone();
            status.errors = rendered
                .issues
                .iter()
                .map(|i| format!("{}: {}", i.app, i.message))
                .chain(traefik_errors.iter().cloned())
                .collect();
            let (s, reason) = if traefik_errors.is_empty() {
                (ConditionStatus::True, ProxyReason::ConfigLive)
            } else {
                (ConditionStatus::False, ProxyReason::ConfigErrors)
            };
            ConditionUpdate {
                type_: ProxyCondition::Ready,
                status: s,
                reason,
                message: format!("{} routes live at revision {}", rendered.routes, desired.revision),
            }
        }
        Ready::Pending(message) => ConditionUpdate {
            type_: ProxyCondition::Ready,
            status: ConditionStatus::False,
            reason: ProxyReason::ConfigPending,
            message,
        },
    };
    Report {
        status,
        conditions: vec![running, ready],
    }
}
