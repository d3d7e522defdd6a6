//! The Application controller: runs an Application's replicas as Docker containers on its
//! Destination, rolls them on every change of effective config, and repairs drift.
//!
//! # Guarantees
//! - Containers are named `<ns>-<name>-<hash>-<replica>` from the effective config
//!   ([`plan`]), labelled with the owner (`dev.berth.*`, replica, config hash) and the scope
//!   labels, and attached to the destination network under their own name; once ready they
//!   also answer to the service alias `<name>.<ns>` (re-attached with it), so while any
//!   container of the app runs, the alias only resolves to containers that serve. When none
//!   runs (a first deploy, the only replica removed), a new container gets the alias at
//!   creation: nothing else could answer to it, and the re-attach (a network disconnect and
//!   connect, about a third of a create and start) is spared. Everything is derived from the
//!   spec, the Secrets and Docker's state: a restart of berth loses nothing.
//! - Rolling update: new replicas start beside the old ones; once all are ready (healthy
//!   under the spec's health check, else running for [`AppOptions::min_ready`]) the status
//!   lists only the new ones `ready: true`; for apps with domains berth then waits until the
//!   server's Proxy reports them in `status.backends["<ns>/<name>"]` (no Proxy: no wait);
//!   then the old ones are removed. Likewise an app with domains is only Ready once that
//!   Proxy routes to its containers. New replicas not ready within
//!   [`AppOptions::progress_deadline`] leave the old ones serving, set
//!   `Progressing=False reason=HealthCheckFailed` with their last log lines, and record a
//!   Warning event.
//! - Drift: Docker events of the app's containers trigger a reconcile (see
//!   [`crate::docker_triggers`]); an exited container is restarted (immediately the first
//!   time, then after 1 s doubling to 5 min while it keeps exiting within `min_ready`: the
//!   restart count lives in status, the exit time in Docker), a removed one recreated, one
//!   replaced by hand (other config) replaced. Orphans (berth containers of Applications that
//!   no longer exist) are removed at start and at every resync.
//! - Git sources ([`from_git`]): the ref is resolved only when the spec or the
//!   `berth.dev/requested-at` annotation changed (or nothing was resolved yet), the image is
//!   built in the background ([`build`]) and then rolled out like a new image; a failed build
//!   keeps the running version. `status.build` holds all of it.
//! - Deletion (finalizer `berth.dev/application`) removes the containers, and the built
//!   images and build logs of a Git source; named volumes are kept unless
//!   `spec.deleteVolumes`. It copes with the destination or server being gone.
//!
//! # Caveats
//! - Docker events are followed on the `localhost` endpoint only; apps on other servers are
//!   repaired at resync.
//! - Image pulls, and the fetch that resolves a Git ref, run inside the reconcile: a slow
//!   pull or Git server holds one worker (builds do not). Its progress is
//!   the `Progressing` condition's message (`PullingImage`), refreshed every
//!   [`workload::PULL_PROGRESS_EVERY`]; `status.imageDigest` records the registry digest.

pub mod build;
pub mod build_log;
pub mod from_git;
pub mod plan;
pub mod pull;
pub mod revision;

use std::{path::PathBuf, sync::Arc, time::Duration};

use berth_crds::{
    kinds::{
        ApplicationSpec, DestinationSpec,
        application::{AppContainer, ApplicationStatus},
        event::EventType,
    },
    meta::ConditionStatus,
    registry::KindInfo,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    client::Client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    docker::{self, ContainerSpec, ContainerState, Docker, Health, Labels, Owner, label},
    docker_triggers,
    events::Recorder,
    finalizer::{self, Event},
    git::Repositories,
    informer::Informer,
    manager::Manager,
    object::{self, ObjectRef},
    server::{self, Dockers},
    status, workload,
};

/// The controller's name (metrics, logs).
pub const NAME: &str = "application";
/// The finalizer that removes the containers.
pub const FINALIZER: &str = "berth.dev/application";
/// The Application informer's index of referenced Secrets (`<ns>/<secret>`).
pub const SECRET_INDEX: &str = "secrets";
/// The Application informer's index of `spec.destination`.
pub const DESTINATION_INDEX: &str = "destination";

/// Tunables of the Application controller.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Without a health check, how long a container must run to count as ready (and as
    /// having run long enough to reset its crash-loop count).
    pub min_ready: Duration,
    /// How long new replicas may take to become ready before the rollout is failed.
    pub progress_deadline: Duration,
    /// Where bind mounts may come from (`--host-root`); `None` forbids them.
    pub host_root: Option<PathBuf>,
    /// Where build logs of Git sources go ([`build_log`]); `None`: beside the Git cache
    /// directory (`<git cache>/../builds`), as [`crate::install`] sets it.
    pub build_logs: Option<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            min_ready: Duration::from_secs(2),
            progress_deadline: Duration::from_secs(60),
            host_root: None,
            build_logs: None,
        }
    }
}

/// A failed Application reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cached object does not parse as an Application.
    #[error("application {name:?} is malformed: {source}")]
    Malformed {
        /// The application.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The server could not be used.
    #[error(transparent)]
    Server(#[from] server::Error),
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// The image could not be pulled (retried with backoff).
    #[error(transparent)]
    Workload(#[from] workload::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
    /// The Git ref could not be resolved (retried with backoff; the running version stays).
    #[error("cannot fetch {url}: {message}")]
    Fetch {
        /// The repository.
        url: String,
        /// The Git adapter's words.
        message: String,
    },
}

/// Reconciles Applications.
pub struct AppReconciler {
    client: Arc<dyn Client>,
    kind: &'static KindInfo,
    secrets: Informer,
    destinations: Informer,
    proxies: Option<Informer>,
    dockers: Dockers,
    recorder: Recorder,
    options: AppOptions,
    /// Builds of Git sources; `None` when berth runs without a Git cache.
    builder: Option<build::Builder>,
}

fn referenced_secrets(app: &Value) -> Vec<String> {
    let ns = object::namespace(app).unwrap_or_default();
    let mut out: Vec<String> = app
        .pointer("/spec/env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.pointer("/secretKeyRef/name").and_then(Value::as_str))
        .map(|s| format!("{ns}/{s}"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Adds the Application controller and its orphan sweeper to `manager`; with `repos` (the
/// Git cache) and [`AppOptions::build_logs`], also the builder of Git sources.
pub fn install(
    manager: &mut Manager,
    config: ControllerConfig,
    dockers: Dockers,
    options: AppOptions,
    repos: Option<Repositories>,
) -> Result<(), server::Error> {
    let kind = server::kind("Application")?;
    let apps = manager.informer(kind);
    let secrets = manager.informer(server::kind("Secret")?);
    let destinations = manager.informer(server::kind("Destination")?);
    let servers = manager.informer(server::kind("Server")?);
    let proxies = berth_crds::lookup("Proxy").map(|k| manager.informer(k));
    apps.add_index(SECRET_INDEX, referenced_secrets);
    apps.add_index(DESTINATION_INDEX, |app| {
        app.pointer("/spec/destination")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect()
    });
    let (by_secret, by_dest, with_domains) = (apps.clone(), apps.clone(), apps.clone());
    let connector = dockers.clone();
    let triggers = docker_triggers::owner_triggers(
        Box::new(move || {
            let d = connector.clone();
            Box::pin(async move { d.local().await })
        }),
        "Application",
        dockers.options.scope.clone(),
    );
    let mut controller = Controller::new(NAME, apps.clone())
        .with_config(config.clone())
        .watches(&secrets, move |s| {
            let key = format!("{}/{}", object::namespace(s).unwrap_or_default(), object::name(s));
            by_secret
                .by_index(SECRET_INDEX, &key)
                .iter()
                .map(|a| ObjectRef::of(a))
                .collect()
        })
        .watches(&destinations, move |d| {
            by_dest
                .by_index(DESTINATION_INDEX, object::name(d))
                .iter()
                .map(|a| ObjectRef::of(a))
                .collect()
        })
        .watches(&servers, |_| Vec::new())
        .triggers(triggers);
    if let Some(p) = &proxies {
        controller = controller.watches(p, move |_| {
            with_domains
                .list()
                .iter()
                .filter(|a| {
                    a.pointer("/spec/domains")
                        .and_then(Value::as_array)
                        .is_some_and(|d| !d.is_empty())
                })
                .map(|a| ObjectRef::of(a))
                .collect()
        });
    }
    let recorder = Recorder::new(manager.client_for(NAME), "application-controller");
    let builder = match (repos, &options.build_logs) {
        (Some(repos), Some(logs)) => {
            let (builder, done) = build::Builder::new(repos, recorder.clone(), kind, logs.clone());
            controller = controller.triggers(done);
            let stopper = builder.clone();
            manager.add_task(move |stop| {
                Box::pin(async move {
                    stop.cancelled().await;
                    stopper.stop();
                })
            });
            Some(builder)
        }
        _ => None,
    };
    let reconciler = AppReconciler {
        client: manager.client_for(NAME),
        kind,
        secrets,
        destinations,
        proxies,
        dockers: dockers.clone(),
        recorder,
        options,
        builder,
    };
    manager.add(controller, reconciler);
    let every = config.resync;
    manager.add_task(move |stop| Box::pin(sweep_orphans(apps, dockers, every, stop)));
    Ok(())
}

/// Removes berth containers of Applications that no longer exist, at start and every `every`.
async fn sweep_orphans(apps: Informer, dockers: Dockers, every: Duration, stop: CancellationToken) {
    tokio::select! {
        () = apps.wait_ready() => {}
        () = stop.cancelled() => return,
    }
    loop {
        match sweep_once(&apps, &dockers).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed orphaned application containers"),
            Err(e) => tracing::warn!(error = %e, "orphan sweep failed; retrying at the next resync"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn sweep_once(apps: &Informer, dockers: &Dockers) -> Result<usize, docker::Error> {
    let docker = dockers.local().await?;
    let selector = dockers.scoped(Labels::from([
        (label::MANAGED.to_string(), "true".to_string()),
        (label::KIND.to_string(), "Application".to_string()),
    ]));
    let mut removed = 0;
    for c in docker.list_containers(&selector).await? {
        let Some(owner) = Owner::from_labels(&c.labels) else {
            continue;
        };
        let alive = apps
            .get(&ObjectRef::new(Some(&owner.namespace), &owner.name))
            .is_some_and(|a| object::uid(&a) == owner.uid);
        if !alive {
            tracing::info!(container = %c.name, app = %owner.name, namespace = %owner.namespace, "removing orphan");
            match docker.remove_container(&c.id).await {
                Ok(()) => removed += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => tracing::warn!(container = %c.name, error = %e, "cannot remove orphan"),
            }
        }
    }
    Ok(removed)
}

/// One desired replica and what Docker says about it.
struct Replica {
    spec: ContainerSpec,
    index: u32,
    state: Option<ContainerState>,
    restarts: u32,
    ready: bool,
}

fn parse_time(t: &Option<String>) -> Option<DateTime<Utc>> {
    t.as_deref()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn elapsed_since(t: DateTime<Utc>) -> Duration {
    (Utc::now() - t).to_std().unwrap_or_default()
}

impl AppReconciler {
    fn owner_selector(&self, ns: &str, name: &str) -> Labels {
        self.dockers.scoped(Labels::from([
            (label::MANAGED.to_string(), "true".to_string()),
            (label::KIND.to_string(), "Application".to_string()),
            (label::NAMESPACE.to_string(), ns.to_string()),
            (label::NAME.to_string(), name.to_string()),
        ]))
    }

    async fn apply(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj).to_owned();
        let ns = object::namespace(obj).unwrap_or_default().to_owned();
        let app = object::typed::<ApplicationSpec>(obj).map_err(|source| Error::Malformed {
            name: name.clone(),
            source,
        })?;
        let generation = object::generation(obj);
        let old = app.status.clone().unwrap_or_default();
        let mut next = ApplicationStatus {
            observed_generation: Some(generation),
            conditions: old.conditions.clone(),
            urls: app
                .spec
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
        };
        let building = from_git::take_building(&mut next);
        let blocked = |next: &mut ApplicationStatus, reason: &str, message: &str| {
            set(next, "Ready", ConditionStatus::False, reason, message, generation);
            set(
                next,
                "Progressing",
                ConditionStatus::False,
                reason,
                message,
                generation,
            );
            next.phase = Some("Failed".into());
            next.containers = old.containers.clone();
        };

        // Where it runs.
        let Some(dest_obj) = self.destinations.get(&ObjectRef::cluster(&app.spec.destination)) else {
            let msg = format!("destination {:?} not found", app.spec.destination);
            blocked(&mut next, "DestinationNotFound", &msg);
            self.write(obj, &next).await?;
            return Ok(Action::await_change());
        };
        let dest = object::typed::<DestinationSpec>(&dest_obj).map_err(|source| Error::Malformed {
            name: app.spec.destination.clone(),
            source,
        })?;
        let docker = match self.dockers.for_server(&dest.spec.server).await {
            Ok(d) => d,
            Err(e) => {
                blocked(&mut next, "ServerUnavailable", &e.to_string());
                self.write(obj, &next).await?;
                return Err(e.into());
            }
        };

        // What should run.
        let owner = Owner {
            kind: "Application".into(),
            namespace: ns.clone(),
            name: name.clone(),
            uid: object::uid(obj).to_owned(),
        };
        let secrets = self.secrets.clone();
        let secret_ns = ns.clone();
        let lookup = move |secret: &str, key: &str| {
            secrets
                .get(&ObjectRef::new(Some(&secret_ns), secret))
                .and_then(|s| {
                    s.pointer(&format!("/spec/data/{key}"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
        };
        // For a Git source: the image of the latest successful build.
        let mut fetch_error = None;
        let built = match &app.spec.source.git {
            Some(git) => {
                let step = self.git_step(obj, git, &owner, &docker, &mut next).await?;
                fetch_error = step.fetch_error;
                let Some(image) = step.image else {
                    // Nothing was built yet: nothing to run.
                    self.nothing_built(&mut next, building, generation);
                    self.write(obj, &next).await?;
                    return fetch_error.map_or(Ok(Action::await_change()), Err);
                };
                Some(image)
            }
            None => {
                // An image source (again): nothing of a build applies.
                next.build = None;
                next.commit = None;
                next.conditions
                    .retain(|c| c.type_ != "Built" && c.type_ != "Fetched");
                None
            }
        };
        let inputs = plan::Inputs {
            owner: &owner,
            scope: &self.dockers.options.scope,
            network: &dest.spec.network,
            secret: &lookup,
            host_root: self.options.host_root.as_deref(),
            built_image: built.as_deref(),
        };
        let template = match plan::template(&app.spec, &inputs) {
            Ok(t) => t,
            Err(e) => {
                let reason = match e {
                    plan::Error::MissingSecret { .. } => "SecretNotFound",
                    plan::Error::HostPathForbidden { .. } => "HostPathForbidden",
                    plan::Error::NoImage => "NoImage",
                };
                blocked(&mut next, reason, &e.to_string());
                self.write(obj, &next).await?;
                return Ok(Action::await_change());
            }
        };
        let hash = plan::short_hash(&template);

        // What runs.
        let observed = docker.list_containers(&self.owner_selector(&ns, &name)).await?;
        let nothing_runs = !observed.iter().any(|c| c.status == "running");
        let service = plan::alias(&ns, &name);
        let restarts_of = |n: &str| {
            old.containers
                .iter()
                .find(|c| c.name == n)
                .map_or(0, |c| c.restarts)
        };
        let mut replicas = Vec::new();
        for i in 0..app.spec.replicas {
            let spec = plan::replica(&template, &hash, i);
            let state = if observed.iter().any(|c| c.name == spec.name) {
                match docker.inspect_container(&spec.name).await {
                    Ok(s) => Some(s),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e.into()),
                }
            } else {
                None
            };
            replicas.push(Replica {
                restarts: restarts_of(&spec.name),
                spec,
                index: i,
                state,
                ready: false,
            });
        }

        // Converge each desired replica.
        let mut requeue: Option<Duration> = None;
        let mut soonest = |d: Duration| requeue = Some(requeue.map_or(d, |r: Duration| r.min(d)));
        let mut crash: Option<(String, u32)> = None;
        for r in &mut replicas {
            // Replaced by hand: same name, other config.
            if let Some(s) = &r.state
                && (s.labels.get(label::CONFIG_HASH) != Some(&r.spec.config_hash())
                    || s.labels.get(label::UID) != Some(&owner.uid))
            {
                tracing::info!(container = %r.spec.name, "container differs from its spec; replacing");
                workload::remove(&docker, &r.spec.name).await?;
                r.state = None;
            }
            match &r.state {
                None => {
                    let mut spec = r.spec.clone();
                    if nothing_runs && let Some(net) = &mut spec.network {
                        // Nothing of the app serves, so the alias cannot lead anywhere that
                        // does: give it at creation, sparing the re-attach once ready.
                        net.unhashed_aliases.push(service.clone());
                    }
                    let created = self.create(&docker, obj, &spec, &next).await;
                    if let Ok(digest) = &created {
                        next.image_digest = digest.clone();
                    }
                    if let Err(e) = created {
                        if matches!(e, Error::Workload(workload::Error::ImagePull { .. })) {
                            // The registry's words in status; the error retries with backoff.
                            set(
                                &mut next,
                                "Ready",
                                ConditionStatus::False,
                                "ImagePullFailed",
                                &e.to_string(),
                                generation,
                            );
                            set(
                                &mut next,
                                "Progressing",
                                ConditionStatus::False,
                                "ImagePullFailed",
                                &e.to_string(),
                                generation,
                            );
                            next.phase = Some("Failed".into());
                            next.containers = old.containers.clone();
                            self.write(obj, &next).await?;
                        }
                        return Err(e);
                    }
                    r.state = Some(docker.inspect_container(&r.spec.name).await?);
                    soonest(self.options.min_ready);
                }
                Some(s) if s.running => {}
                Some(s) => {
                    let started = parse_time(&s.started_at);
                    let finished = parse_time(&s.finished_at);
                    let ran = match (started, finished) {
                        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    if ran >= self.options.min_ready {
                        r.restarts = 0;
                    }
                    let wanted = plan::backoff(r.restarts);
                    let waited = finished.map_or(wanted, elapsed_since);
                    if s.status == "created" || waited >= wanted {
                        tracing::info!(container = %r.spec.name, restarts = r.restarts, exit_code = ?s.exit_code, "starting exited container");
                        docker.start_container(&r.spec.name).await?;
                        if s.status != "created" {
                            r.restarts += 1;
                        }
                        r.state = Some(docker.inspect_container(&r.spec.name).await?);
                        soonest(self.options.min_ready);
                    } else {
                        soonest(wanted - waited);
                    }
                    if r.restarts >= 2 {
                        crash = Some((r.spec.name.clone(), r.restarts));
                    }
                }
            }
            // Readiness.
            if let Some(s) = &r.state
                && s.running
            {
                r.ready = match (&r.spec.health_check, s.health) {
                    (Some(_), Some(Health::Healthy)) => true,
                    (Some(_), _) => {
                        soonest(Duration::from_secs(1));
                        false
                    }
                    (None, _) => {
                        let up = parse_time(&s.started_at).map_or(Duration::ZERO, elapsed_since);
                        if up >= self.options.min_ready {
                            true
                        } else {
                            soonest(self.options.min_ready - up + Duration::from_millis(50));
                            false
                        }
                    }
                };
            }
        }

        // Ready containers answer to the service alias; others only to their own name.
        for r in replicas.iter().filter(|r| r.ready) {
            let has = r
                .state
                .as_ref()
                .and_then(|s| s.aliases.get(&dest.spec.network))
                .is_some_and(|a| a.contains(&service));
            if !has {
                tracing::info!(container = %r.spec.name, alias = %service, "ready: adding the service alias");
                if let Err(e) = docker.disconnect_network(&dest.spec.network, &r.spec.name).await {
                    tracing::debug!(container = %r.spec.name, error = %e, "disconnect before re-attaching");
                }
                docker
                    .connect_network(
                        &dest.spec.network,
                        &r.spec.name,
                        &[service.clone(), r.spec.name.clone()],
                    )
                    .await?;
            }
        }
        let desired: Vec<&str> = replicas.iter().map(|r| r.spec.name.as_str()).collect();
        let olds: Vec<_> = observed
            .iter()
            .filter(|c| !desired.contains(&c.name.as_str()))
            .collect();
        let all_ready = replicas.iter().all(|r| r.ready);
        let ready_count = replicas.iter().filter(|r| r.ready).count() as u32;
        next.replicas = replicas
            .iter()
            .filter(|r| r.state.as_ref().is_some_and(|s| s.running))
            .count() as u32;
        next.ready_replicas = ready_count;
        next.image = replicas
            .iter()
            .find_map(|r| r.state.as_ref().map(|s| format!("{}@{}", s.image, s.image_id)));
        let mut containers: Vec<AppContainer> = replicas
            .iter()
            .map(|r| AppContainer {
                name: r.spec.name.clone(),
                replica: r.index,
                config_hash: hash.clone(),
                ready: r.ready,
                restarts: r.restarts,
            })
            .collect();

        // Rollout progress, timed from the Progressing condition of this config.
        let rollout = format!("rollout of config {hash}");
        let progressing = old.conditions.iter().find(|c| c.type_ == "Progressing");
        let started = progressing
            .filter(|c| c.message.contains(&rollout) && c.status == ConditionStatus::True)
            .map(|c| c.last_transition_time);
        let failed_before =
            progressing.is_some_and(|c| c.message.contains(&rollout) && c.reason == "HealthCheckFailed");
        if all_ready {
            if !olds.is_empty() {
                // Switch routing first: only the new containers are ready.
                containers.extend(olds.iter().map(|c| old_entry(c, false)));
                next.containers = containers.clone();
                self.finish(&mut next, generation, &rollout, crash.as_ref(), true);
                self.write(obj, &next).await?;
                if !self.proxy_serves(&app.spec, &dest.spec.server, &ns, &name, &desired) {
                    tracing::debug!("waiting for the proxy to route to the new containers");
                    return Ok(Action::requeue(Duration::from_millis(250)));
                }
                for c in &olds {
                    tracing::info!(container = %c.name, "removing old container");
                    workload::remove(&docker, &c.id).await?;
                }
                containers.retain(|c| desired.contains(&c.name.as_str()));
            }
            next.containers = containers;
            self.finish(&mut next, generation, &rollout, crash.as_ref(), true);
            if !self.proxy_serves(&app.spec, &dest.spec.server, &ns, &name, &desired) {
                // Ready means reachable: for an app with domains, once its route is live.
                set(
                    &mut next,
                    "Ready",
                    ConditionStatus::False,
                    "RouteNotLive",
                    "waiting for the proxy to route the domains to the ready containers",
                    generation,
                );
                soonest(Duration::from_millis(250));
            }
        } else {
            // Old containers keep serving.
            containers.extend(olds.iter().map(|c| old_entry(c, c.status == "running")));
            next.containers = containers;
            let deadline_passed = started.is_some_and(|t| elapsed_since(t) >= self.options.progress_deadline);
            if crash.is_none() && (failed_before || deadline_passed) {
                let culprit = replicas.iter().find(|r| !r.ready).map(|r| r.spec.name.clone());
                let logs = match &culprit {
                    Some(c) => workload::last_logs(&docker, c, 10).await,
                    None => String::new(),
                };
                let message = format!(
                    "{rollout}: {} not ready within {}s; the previous version keeps serving. last log lines:\n{logs}",
                    culprit.as_deref().unwrap_or("a replica"),
                    self.options.progress_deadline.as_secs()
                );
                if !failed_before {
                    self.warn(
                        obj,
                        "HealthCheckFailed",
                        &format!(
                            "new containers of config {hash} did not become ready; kept the old version"
                        ),
                    )
                    .await;
                }
                set(
                    &mut next,
                    "Progressing",
                    ConditionStatus::False,
                    "HealthCheckFailed",
                    &message,
                    generation,
                );
                let serving = next.containers.iter().any(|c| c.ready);
                set(
                    &mut next,
                    "Ready",
                    if serving {
                        ConditionStatus::True
                    } else {
                        ConditionStatus::False
                    },
                    if serving {
                        "PreviousVersionServing"
                    } else {
                        "HealthCheckFailed"
                    },
                    "new replicas are not ready",
                    generation,
                );
                set(
                    &mut next,
                    "Degraded",
                    ConditionStatus::True,
                    "HealthCheckFailed",
                    &message,
                    generation,
                );
                next.phase = Some("Degraded".into());
                soonest(Duration::from_secs(5));
            } else {
                self.finish(&mut next, generation, &rollout, crash.as_ref(), false);
                if let Some((c, n)) = &crash {
                    let logs = workload::last_logs(&docker, c, 10).await;
                    let message = format!("{c} keeps exiting ({n} restarts); last log lines:\n{logs}");
                    set(
                        &mut next,
                        "Degraded",
                        ConditionStatus::True,
                        "CrashLoopBackOff",
                        &message,
                        generation,
                    );
                    next.phase = Some("Degraded".into());
                }
                if let Some(t) = started {
                    let left = self.options.progress_deadline.saturating_sub(elapsed_since(t));
                    soonest(left.max(Duration::from_millis(100)));
                }
            }
        }
        if app.spec.source.git.is_some() {
            from_git::put_building(&mut next, building, generation, false);
            from_git::put_failed(&mut next, generation);
        }
        self.write(obj, &next).await?;
        match fetch_error {
            Some(e) => Err(e),
            None => Ok(requeue.map_or_else(Action::await_change, Action::requeue)),
        }
    }

    /// The status of a Git app whose first build runs or failed: nothing to run.
    fn nothing_built(
        &self,
        next: &mut ApplicationStatus,
        building: Option<berth_crds::meta::Condition>,
        generation: i64,
    ) {
        let failed = next
            .build
            .as_ref()
            .is_some_and(|b| b.phase == berth_crds::kinds::application::BuildPhase::Failed);
        let built = next.conditions.iter().find(|c| c.type_ == "Built").cloned();
        let (reason, message) = built.map_or_else(
            || ("Pending".to_string(), "no image built yet".to_string()),
            |c| (c.reason, c.message),
        );
        set(
            next,
            "Ready",
            ConditionStatus::False,
            &reason,
            &message,
            generation,
        );
        if failed {
            from_git::put_failed(next, generation);
            next.phase = Some("Failed".into());
        } else {
            from_git::put_building(next, building, generation, true);
            if !next
                .conditions
                .iter()
                .any(|c| c.type_ == "Progressing" && c.reason == from_git::BUILDING)
            {
                set(
                    next,
                    "Progressing",
                    ConditionStatus::False,
                    &reason,
                    &message,
                    generation,
                );
            }
            next.phase = Some("Pending".into());
        }
    }

    /// Sets the conditions and phase of a converged (`done`) or still-progressing app.
    fn finish(
        &self,
        next: &mut ApplicationStatus,
        generation: i64,
        rollout: &str,
        crash: Option<&(String, u32)>,
        done: bool,
    ) {
        let n = next.containers.iter().filter(|c| c.ready).count();
        if done {
            set(
                next,
                "Ready",
                ConditionStatus::True,
                "ReplicasReady",
                &format!("{n} ready"),
                generation,
            );
            set(
                next,
                "Progressing",
                ConditionStatus::False,
                "RolloutComplete",
                rollout,
                generation,
            );
            set(
                next,
                "Degraded",
                ConditionStatus::False,
                "Healthy",
                "",
                generation,
            );
            next.phase = Some(
                if next.containers.is_empty() {
                    "Stopped"
                } else {
                    "Running"
                }
                .into(),
            );
        } else {
            let serving = n > 0;
            set(
                next,
                "Ready",
                if serving {
                    ConditionStatus::True
                } else {
                    ConditionStatus::False
                },
                if serving {
                    "PreviousVersionServing"
                } else {
                    "ReplicasNotReady"
                },
                &format!("{n} ready"),
                generation,
            );
            set(
                next,
                "Progressing",
                ConditionStatus::True,
                "RollingUpdate",
                rollout,
                generation,
            );
            if crash.is_none() {
                set(
                    next,
                    "Degraded",
                    ConditionStatus::False,
                    "Healthy",
                    "",
                    generation,
                );
            }
            next.phase = Some("Progressing".into());
        }
    }

    /// Whether the server's Proxy routes the app to exactly `containers` (or need not).
    fn proxy_serves(
        &self,
        spec: &ApplicationSpec,
        server: &str,
        ns: &str,
        name: &str,
        containers: &[&str],
    ) -> bool {
        if spec.domains.is_empty() {
            return true;
        }
        let Some(proxies) = &self.proxies else {
            return true;
        };
        let mine: Vec<_> = proxies
            .list()
            .into_iter()
            .filter(|p| p.pointer("/spec/server").and_then(Value::as_str) == Some(server))
            .collect();
        if mine.is_empty() {
            return true;
        }
        mine.iter().all(|p| {
            let served: Vec<&str> = p
                .pointer("/status/backends")
                .and_then(|b| b.get(format!("{ns}/{name}")))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            served.len() == containers.len() && containers.iter().all(|c| served.contains(c))
        })
    }

    /// Creates and starts one container, pulling its image first when it is absent.
    /// Returns the image's registry digest (`repo@sha256:...`), if it has one.
    async fn create(
        &self,
        docker: &Docker,
        obj: &Value,
        spec: &ContainerSpec,
        next: &ApplicationStatus,
    ) -> Result<Option<String>, Error> {
        let generation = object::generation(obj);
        let progress = move |message: String| async move {
            let mut progress = next.clone();
            set(
                &mut progress,
                "Progressing",
                ConditionStatus::True,
                "PullingImage",
                &message,
                generation,
            );
            // Progress is informative: a failed write is logged and the pull goes on.
            if let Err(e) = self.write(obj, &progress).await {
                tracing::warn!(error = %e, "cannot report pull progress");
            }
        };
        let image =
            workload::ensure_image(docker, &self.recorder, self.kind, obj, &spec.image, progress).await?;
        for m in &spec.mounts {
            if let docker::MountSpec::Volume { name, .. } = m {
                let mut labels = spec.labels.clone();
                labels.remove(label::REPLICA);
                labels.remove(plan::APP_HASH);
                docker.ensure_volume(name, &labels).await?;
            }
        }
        workload::create_and_start(docker, spec).await?;
        Ok(image.repo_digests.into_iter().next())
    }

    async fn cleanup(&self, obj: &Value) -> Result<Action, Error> {
        let name = object::name(obj).to_owned();
        let ns = object::namespace(obj).unwrap_or_default().to_owned();
        let docker = self.dockers.for_cleanup(&self.destinations, obj).await?;
        let selector = self.owner_selector(&ns, &name);
        for c in docker.list_containers(&selector).await? {
            tracing::info!(container = %c.name, "removing container");
            workload::remove(&docker, &c.id).await?;
        }
        if let Some(builder) = &self.builder {
            builder.forget(&ObjectRef::of(obj));
            if let Err(e) = build_log::remove_all(builder.logs_dir(), &ns, &name).await {
                tracing::warn!(error = %e, "cannot remove the build logs");
            }
            let owner = Owner {
                kind: "Application".into(),
                namespace: ns.clone(),
                name: name.clone(),
                uid: object::uid(obj).to_owned(),
            };
            self.prune_images(&docker, &owner, &[]).await?;
        }
        if obj.pointer("/spec/deleteVolumes").and_then(Value::as_bool) == Some(true) {
            for v in docker.list_volumes(&selector).await? {
                match docker.remove_volume(&v.name).await {
                    Ok(()) => tracing::info!(volume = %v.name, "removed volume"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(Action::await_change())
    }

    async fn write(&self, obj: &Value, next: &ApplicationStatus) -> Result<(), Error> {
        status::update::<ApplicationSpec>(self.client.as_ref(), self.kind, obj, next).await?;
        Ok(())
    }

    async fn warn(&self, obj: &Value, reason: &str, message: &str) {
        workload::record(
            &self.recorder,
            self.kind,
            obj,
            EventType::Warning,
            reason,
            message,
        )
        .await;
    }
}

fn old_entry(c: &docker::ContainerSummary, ready: bool) -> AppContainer {
    AppContainer {
        name: c.name.clone(),
        replica: c
            .labels
            .get(label::REPLICA)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
        config_hash: c.labels.get(plan::APP_HASH).cloned().unwrap_or_default(),
        ready,
        restarts: 0,
    }
}

pub(super) fn set(
    next: &mut ApplicationStatus,
    type_: &str,
    s: ConditionStatus,
    reason: &str,
    message: &str,
    generation: i64,
) {
    status::set_now(&mut next.conditions, type_, s, reason, message, generation);
}

#[async_trait::async_trait]
impl Reconciler for AppReconciler {
    type Error = finalizer::Error<Error>;

    async fn reconcile(&self, obj: Arc<Value>) -> Result<Action, Self::Error> {
        let span = tracing::info_span!(
            "reconcile",
            kind = "Application",
            namespace = %object::namespace(&obj).unwrap_or_default(),
            name = %object::name(&obj)
        );
        finalizer::finalizer(
            self.client.as_ref(),
            self.kind,
            FINALIZER,
            obj,
            |event| async move {
                match event {
                    Event::Apply(obj) => self.apply(&obj).await,
                    Event::Cleanup(obj) => self.cleanup(&obj).await,
                }
            },
        )
        .instrument(span)
        .await
    }
}
