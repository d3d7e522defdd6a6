//! The Application controller: runs an Application's replicas as Docker containers on its
//! Destination, rolls them on every change of effective config, and repairs drift.
//!
//! A reconcile reads as observe → decide → act: [`observe`] reads Docker and the caches
//! into a plain struct, [`decide`] (pure: no I/O, no clock) turns it into a plan of steps
//! and the status to write, and `act` runs the steps. It takes two rounds: first each
//! desired replica (replace, create, start, wait out a backoff), then, on a fresh inspect
//! of the containers touched, readiness, the service alias, the routing switch, the
//! removal of old containers and the status. Deletion and the orphan sweep are in
//! `cleanup`, the Git step in [`from_git`].
//!
//! # Guarantees
//! - Containers are named `<ns>-<name>-<hash>-<replica>` from the effective config
//!   ([`plan`]), labelled with the owner (`dev.berth.*`, replica, config hash) and the scope
//!   labels, and attached to the destination network under their own name; once ready they
//!   also answer to the service alias `<name>.<ns>` and to `spec.networkAliases` (re-attached
//!   with them), so while any container of the app runs, they only resolve to containers that
//!   serve; a change of `spec.networkAliases` is a rollout, so old containers go with their
//!   old aliases. When none runs (a first deploy, the only replica removed), a new container
//!   gets the aliases at creation: nothing else could answer to them, and the re-attach (a
//!   network disconnect and connect, about a third of a create and start) is spared. Everything is derived from the
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
//!   `spec.deleteVolumes` (external ones always are: berth neither creates nor deletes
//!   them). It copes with the destination or server being gone.
//! - `spec.files` are seeded once under `<host root>/files/<ns>/<name>/` before containers
//!   are made ([`crate::host_files`]), on the `localhost` server only; without
//!   `--host-root`, or elsewhere, the app is blocked (`HostFilesDisabled`).
//!
//! # Caveats
//! - Docker events are followed on the `localhost` endpoint only; apps on other servers are
//!   repaired at resync.
//! - Image pulls, and the fetch that resolves a Git ref, run inside the reconcile: a slow
//!   pull or Git server holds one worker (builds do not). Its progress is
//!   the `Progressing` condition's message (`PullingImage`), refreshed every
//!   [`workload::PULL_PROGRESS_EVERY`]; `status.imageDigest` records the registry digest.

mod act;
pub mod build;
pub mod build_log;
mod cleanup;
pub mod decide;
pub mod from_git;
pub mod observe;
pub mod plan;
pub mod revision;

use std::{path::PathBuf, sync::Arc, time::Duration};

use berth_crds::{
    Object,
    kinds::{
        ApplicationSpec, DestinationSpec, ProxySpec, SecretSpec,
        application::{AppCondition, AppReason, ApplicationStatus},
    },
    meta::ConditionStatus,
};
use berth_runtime::Api;
use chrono::Utc;

use self::cleanup::sweep_orphans;
use crate::{
    controller::{Action, Controller, ControllerConfig},
    docker::{self, Owner},
    docker_triggers,
    dockers::{self, Dockers},
    events::Recorder,
    finalizer::{Finalize, Finalized},
    git::Repositories,
    informer::Informer,
    manager::Manager,
    object::ObjectRef,
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
    /// The server could not be used.
    #[error(transparent)]
    Server(#[from] dockers::Error),
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// The image could not be pulled (retried with backoff).
    #[error(transparent)]
    Workload(#[from] workload::Error),
    /// The status could not be written.
    #[error(transparent)]
    Status(#[from] status::Error),
    /// An external volume of `spec.volumes` does not exist (retried with backoff).
    #[error("spec.volumes: external volume {name:?} does not exist; create it, or drop `external`")]
    ExternalVolumeMissing {
        /// The volume.
        name: String,
    },
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
    api: Api<ApplicationSpec>,
    secrets: Informer<SecretSpec>,
    destinations: Informer<DestinationSpec>,
    proxies: Informer<ProxySpec>,
    dockers: Dockers,
    recorder: Recorder,
    options: AppOptions,
    /// Builds of Git sources; `None` when berth runs without a Git cache.
    builder: Option<build::Builder>,
}

fn referenced_secrets(app: &Object<ApplicationSpec>) -> Vec<String> {
    let ns = app.namespace().unwrap_or_default();
    let mut out: Vec<String> = app
        .spec
        .env
        .iter()
        .filter_map(|e| e.secret_key_ref.as_ref())
        .map(|r| format!("{ns}/{}", r.name))
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
) {
    let apps = manager.informer::<ApplicationSpec>();
    let secrets = manager.informer::<SecretSpec>();
    let destinations = manager.informer::<DestinationSpec>();
    let proxies = manager.informer::<ProxySpec>();
    apps.add_index(SECRET_INDEX, referenced_secrets);
    apps.add_index(DESTINATION_INDEX, |app| vec![app.spec.destination.clone()]);
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
            let key = format!("{}/{}", s.namespace().unwrap_or_default(), s.name());
            by_secret
                .by_index(SECRET_INDEX, &key)
                .iter()
                .map(|a| ObjectRef::of(a))
                .collect()
        })
        .watches(&destinations, move |d| {
            by_dest
                .by_index(DESTINATION_INDEX, d.name())
                .iter()
                .map(|a| ObjectRef::of(a))
                .collect()
        })
        .reads(dockers.servers())
        .watches(&proxies, move |_| {
            with_domains
                .list()
                .iter()
                .filter(|a| !a.spec.domains.is_empty())
                .map(|a| ObjectRef::of(a))
                .collect()
        })
        .triggers(triggers);
    let recorder = Recorder::new(manager.client_for(NAME), "application-controller");
    let builder = match (repos, &options.build_logs) {
        (Some(repos), Some(logs)) => {
            let (builder, done) = build::Builder::new(repos, recorder.clone(), logs.clone());
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
        api: manager.api_for(NAME),
        secrets,
        destinations,
        proxies,
        dockers: dockers.clone(),
        recorder,
        options,
        builder,
    };
    manager.add(controller, Finalized(reconciler));
    let every = config.resync;
    manager.add_task(move |stop| Box::pin(sweep_orphans(apps, dockers, every, stop)));
}

impl AppReconciler {
    /// One reconcile of an existing Application: observe, decide and act, in two rounds
    /// (see [`decide`]): first each desired replica, then readiness, routing, old
    /// containers and status.
    async fn converge(&self, app: &Arc<Object<ApplicationSpec>>) -> Result<Action, Error> {
        let name = app.name().to_owned();
        let ns = app.namespace().unwrap_or_default().to_owned();
        let generation = app.generation();
        let old = app.status.clone().unwrap_or_default();
        let mut next = decide::base_status(&app.spec, &old, generation);
        let building = from_git::take_building(&mut next);
        let blocked = |next: &mut ApplicationStatus, reason: AppReason, message: &str| {
            decide::blocked(next, &old, reason, message, generation, Utc::now());
        };

        // Where it runs.
        let Some(dest) = self.destinations.get(&ObjectRef::cluster(&app.spec.destination)) else {
            let msg = format!("destination {:?} not found", app.spec.destination);
            blocked(&mut next, AppReason::DestinationNotFound, &msg);
            self.write(app, &next).await?;
            return Ok(Action::await_change());
        };
        let docker = match self.dockers.for_server(&dest.spec.server).await {
            Ok(d) => d,
            Err(e) => {
                blocked(&mut next, AppReason::ServerUnavailable, &e.to_string());
                self.write(app, &next).await?;
                return Err(e.into());
            }
        };

        // What should run.
        let owner = Owner {
            kind: "Application".into(),
            namespace: ns.clone(),
            name: name.clone(),
            uid: app.uid().to_owned(),
        };
        let secrets = self.secrets.clone();
        let secret_ns = ns.clone();
        let lookup = move |secret: &str, key: &str| {
            secrets
                .get(&ObjectRef::new(Some(&secret_ns), secret))
                .and_then(|s| s.spec.data.get(key).cloned())
        };
        // For a Git source: the image of the latest successful build.
        let mut fetch_error = None;
        let built = match &app.spec.source.git {
            Some(git) => {
                let step = self.git_step(app, git, &owner, &docker, &mut next).await?;
                fetch_error = step.fetch_error;
                let Some(image) = step.image else {
                    // Nothing was built yet: nothing to run.
                    decide::nothing_built(&mut next, building, generation, Utc::now());
                    self.write(app, &next).await?;
                    return fetch_error.map_or(Ok(Action::await_change()), Err);
                };
                Some(image)
            }
            None => {
                // An image source (again): nothing of a build applies.
                next.build = None;
                next.commit = None;
                next.conditions
                    .retain(|c| c.type_ != AppCondition::Built && c.type_ != AppCondition::Fetched);
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
                blocked(&mut next, decide::template_reason(&e), &e.to_string());
                self.write(app, &next).await?;
                return Ok(Action::await_change());
            }
        };
        if !app.spec.files.is_empty()
            && let Err((reason, message, retry)) = self.seed_files(app, &dest.spec.server).await
        {
            blocked(&mut next, reason, &message);
            self.write(app, &next).await?;
            return Ok(retry.map_or_else(Action::await_change, Action::requeue));
        }
        let hash = plan::short_hash(&template);
        let service = plan::service_aliases(&ns, &name, &template);
        let timing = decide::Timing {
            min_ready: self.options.min_ready,
            progress_deadline: self.options.progress_deadline,
        };
        let at = observe::Target {
            docker: &docker,
            ns: &ns,
            name: &name,
            network: &dest.spec.network,
            server: &dest.spec.server,
        };

        // First round: each desired replica.
        let mut observed = self.observe(&at, &app.spec, &template, &hash).await?;
        let first = decide::replicas(&observed, &owner.uid, &service, &old, timing, Utc::now());
        let touched = match self.act(&docker, app, &first.steps, &mut next).await {
            Ok(t) => t,
            Err(e) => {
                let reason = match &e {
                    Error::Workload(workload::Error::ImagePull { .. }) => Some(AppReason::ImagePullFailed),
                    Error::ExternalVolumeMissing { .. } => Some(AppReason::ExternalVolumeMissing),
                    _ => None,
                };
                if let Some(reason) = reason {
                    // The words in status; the error retries with backoff.
                    blocked(&mut next, reason, &e.to_string());
                    self.write(app, &next).await?;
                }
                return Err(e);
            }
        };

        // Second round: readiness, aliases, routing switch, old containers, status.
        self.refresh(&at, &app.spec, &mut observed, &touched).await?;
        let inputs = decide::RolloutInputs {
            replicas: &first,
            old: &old,
            next: &next,
            hash: &hash,
            aliases: &service,
            network: &dest.spec.network,
            generation,
            git: app.spec.source.git.is_some().then_some(building),
            timing,
            now: Utc::now(),
        };
        let plan = decide::rollout(&observed, inputs);
        self.act(&docker, app, &plan.steps, &mut next).await?;
        let action = plan.requeue.map_or_else(Action::await_change, Action::requeue);
        match fetch_error {
            // While it waits for the proxy, a failed fetch is retried at the next round.
            Some(e) if !plan.awaits_proxy() => Err(e),
            _ => Ok(action),
        }
    }
}

/// Sets condition `type_` of `next` now (for the steps that do I/O; [`decide`] takes its
/// time as an input).
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
impl Finalize<ApplicationSpec> for AppReconciler {
    type Error = Error;
    const FINALIZER: &'static str = FINALIZER;

    fn api(&self) -> &Api<ApplicationSpec> {
        &self.api
    }

    async fn apply(&self, app: Arc<Object<ApplicationSpec>>) -> Result<Action, Error> {
        self.converge(&app).await
    }

    async fn cleanup(&self, app: Arc<Object<ApplicationSpec>>) -> Result<Action, Error> {
        self.tear_down(&app).await
    }
}
