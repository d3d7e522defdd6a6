//! Builds of Git-sourced Applications, run in the background so that a build of minutes holds
//! no reconcile worker: read the commit's files, build the image through the Docker adapter,
//! log every line to disk ([`build_log`]), report `Building`/`Built`/`BuildFailed` events, then
//! trigger the Application's reconcile, which records the outcome in `status.build`.
//!
//! # Guarantees
//! - At most one build per Application: starting one for another image (a newer commit, other
//!   build inputs) aborts the former.
//! - At most [`PARALLEL`] builds at once; the others wait for a slot (already `Building`).
//! - An outcome stays in memory only until the reconciler records it ([`Builder::forget`]).
//!   A build lost to a restart or a change of leader (status still `Building`) is started again
//!   by the next reconcile; it builds the same tag.
//! - [`Builder::stop`] (the end of a leadership term) aborts every build.
//!
//! # Caveats
//! - Aborting stops reading the daemon's output; Docker may still finish that build, leaving a
//!   tagged image nobody runs (removed with the Application, or by the pruning after the next
//!   successful build).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use berth_crds::{
    Object,
    kinds::{ApplicationSpec, event::EventType},
};
use futures::StreamExt;
use tokio::{sync::Semaphore, task::AbortHandle};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{build_log::LogWriter, revision::COMMIT_LEN};
use crate::{
    docker::{self, BuildEvent, BuildOptions, ContextEntry, Docker, Labels},
    events::Recorder,
    git::Repositories,
    object::ObjectRef,
    workload,
};

/// Builds running at once (the rest wait).
pub const PARALLEL: usize = 2;
/// Lines of build output in a `BuildFailed` event and condition.
pub const FAILED_LINES: usize = 8;

/// One build to run.
#[derive(Debug, Clone)]
pub struct Request {
    /// The Application (also the key its outcome is kept under).
    pub key: ObjectRef,
    /// The Application object, for events.
    pub obj: Arc<Object<ApplicationSpec>>,
    /// The daemon to build on (the Application's server).
    pub docker: Docker,
    /// The repository.
    pub url: String,
    /// The commit (already fetched into the cache).
    pub commit: String,
    /// The build context's directory in the repository (`""` = root).
    pub dir: String,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    /// Build arguments.
    pub build_args: Labels,
    /// The tag to build.
    pub image: String,
    /// Labels of the image.
    pub labels: Labels,
}

/// How a build is going, as this process knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting for a slot or building.
    Running,
    /// Built and tagged.
    Built {
        /// How long it took.
        took: Duration,
    },
    /// Failed; the message names the cause (Docker's words, a missing Dockerfile...) and
    /// ends with the last lines of output.
    Failed {
        /// What went wrong.
        message: String,
    },
}

struct Job {
    image: String,
    outcome: Outcome,
    abort: Option<AbortHandle>,
}

struct Inner {
    repos: Repositories,
    recorder: Recorder,
    logs: PathBuf,
    jobs: Mutex<HashMap<ObjectRef, Job>>,
    done: tokio::sync::mpsc::UnboundedSender<ObjectRef>,
    slots: Arc<Semaphore>,
    stop: CancellationToken,
}

/// Runs builds in the background (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Builder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("logs", &self.inner.logs)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder reading commits from `repos`, writing logs under `logs`; the stream yields
    /// the Application of every build that ended (a controller trigger).
    pub fn new(
        repos: Repositories,
        recorder: Recorder,
        logs: PathBuf,
    ) -> (Self, tokio_stream::wrappers::UnboundedReceiverStream<ObjectRef>) {
        let (done, rx) = tokio::sync::mpsc::unbounded_channel();
        let inner = Inner {
            repos,
            recorder,
            logs,
            jobs: Mutex::default(),
            done,
            slots: Arc::new(Semaphore::new(PARALLEL)),
            stop: CancellationToken::new(),
        };
        (
            Self {
                inner: Arc::new(inner),
            },
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        )
    }

    /// The repository cache builds read from (and the controller resolves refs with).
    pub fn repositories(&self) -> &Repositories {
        &self.inner.repos
    }

    /// Where build logs are written.
    pub fn logs_dir(&self) -> &std::path::Path {
        &self.inner.logs
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef, Job>> {
        self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What this process knows of the build of `image` for `key` (`None`: no such build
    /// here, e.g. after a restart).
    pub fn outcome(&self, key: &ObjectRef, image: &str) -> Option<Outcome> {
        self.jobs()
            .get(key)
            .filter(|j| j.image == image)
            .map(|j| j.outcome.clone())
    }

    /// Starts building `req.image`, aborting another build of the same Application.
    pub fn start(&self, req: Request) {
        let key = req.key.clone();
        let image = req.image.clone();
        let inner = self.inner.clone();
        let span = tracing::info_span!(
            "build",
            kind = "Application",
            namespace = %key.namespace.as_deref().unwrap_or_default(),
            name = %key.name,
            image = %image
        );
        let mut jobs = self.jobs();
        if let Some(old) = jobs.remove(&key)
            && let Some(abort) = old.abort
        {
            tracing::info!(namespace = ?key.namespace, name = %key.name, image = %old.image, "aborting the build of a superseded image");
            abort.abort();
        }
        let task = tokio::spawn(
            async move {
                let stop = inner.stop.clone();
                let outcome = tokio::select! {
                    o = run(&inner, &req) => o,
                    () = stop.cancelled() => return,
                };
                let mut jobs = inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(job) = jobs.get_mut(&req.key).filter(|j| j.image == req.image) {
                    job.outcome = outcome;
                    job.abort = None;
                    drop(jobs);
                    if inner.done.send(req.key.clone()).is_err() {
                        tracing::debug!("the controller is gone; the outcome waits for the next term");
                    }
                }
            }
            .instrument(span),
        );
        jobs.insert(
            key,
            Job {
                image,
                outcome: Outcome::Running,
                abort: Some(task.abort_handle()),
            },
        );
    }

    /// Drops what is known of `key`'s build, aborting it if it still runs.
    pub fn forget(&self, key: &ObjectRef) {
        if let Some(job) = self.jobs().remove(key)
            && let Some(abort) = job.abort
        {
            abort.abort();
        }
    }

    /// Aborts every build (the end of a leadership term).
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }
}

/// One build, start to end: the outcome (events and log written on the way).
async fn run(inner: &Inner, req: &Request) -> Outcome {
    let Ok(_slot) = inner.slots.clone().acquire_owned().await else {
        return Outcome::Failed {
            message: "the builder is shutting down".to_string(),
        };
    };
    let started = Instant::now();
    let short = &req.commit[..req.commit.len().min(COMMIT_LEN)];
    let event = |type_: EventType, reason: &'static str, message: String| async move {
        workload::record(&inner.recorder, &req.obj, type_, reason, &message).await;
    };
    event(
        EventType::Normal,
        "Building",
        format!("building {} from commit {short}", req.image),
    )
    .await;
    let ns = req.key.namespace.as_deref().unwrap_or_default();
    let mut log = match LogWriter::create(&inner.logs, ns, &req.key.name, &req.commit).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, dir = %inner.logs.display(), "cannot write the build log; building without it");
            None
        }
    };
    let mut tail = Vec::new();
    let result = build(inner, req, &mut log, &mut tail).await;
    let took = started.elapsed();
    let (outcome, line) = match result {
        Ok(image_id) => {
            let message = format!(
                "built {} ({image_id}) from commit {short} in {:.1}s",
                req.image,
                took.as_secs_f64()
            );
            event(EventType::Normal, "Built", message.clone()).await;
            (Outcome::Built { took }, message)
        }
        Err(cause) => {
            let last: Vec<&str> = tail
                .iter()
                .rev()
                .take(FAILED_LINES)
                .rev()
                .map(String::as_str)
                .collect();
            let message = if last.is_empty() {
                cause.clone()
            } else {
                format!("{cause}; last lines:\n{}", last.join("\n"))
            };
            event(EventType::Warning, "BuildFailed", message.clone()).await;
            (
                Outcome::Failed { message },
                format!("build failed after {:.1}s: {cause}", took.as_secs_f64()),
            )
        }
    };
    tracing::info!(took_ms = took.as_millis() as u64, result = %line, "build ended");
    if let Some(mut log) = log {
        let written = async {
            log.line(&format!("berth: {line}")).await?;
            log.finish().await
        };
        if let Err(e) = written.await {
            tracing::warn!(error = %e, "cannot finish the build log");
        }
    }
    outcome
}

/// Reads the files, archives them and runs the Docker build: the image id, or why not.
async fn build(
    inner: &Inner,
    req: &Request,
    log: &mut Option<LogWriter>,
    tail: &mut Vec<String>,
) -> Result<String, String> {
    let mut say = async |line: &str| {
        tracing::debug!(line, "build output");
        if tail.len() == FAILED_LINES * 2 {
            tail.remove(0);
        }
        tail.push(line.to_string());
        if let Some(l) = log.as_mut()
            && let Err(e) = l.line(line).await
        {
            tracing::warn!(error = %e, "cannot write the build log; going on without it");
            *log = None;
        }
    };
    say(&format!(
        "berth: building {} from {} at {} (context {:?}, dockerfile {:?})",
        req.image,
        req.url,
        req.commit,
        if req.dir.is_empty() { "." } else { &req.dir },
        req.dockerfile
    ))
    .await;
    let files = inner
        .repos
        .files(&req.url, &req.commit, &req.dir)
        .await
        .map_err(|e| format!("cannot read the build context: {e}"))?;
    if !files.iter().any(|f| f.path == req.dockerfile) {
        let short = &req.commit[..req.commit.len().min(COMMIT_LEN)];
        let within = if req.dir.is_empty() {
            "the repository root".to_string()
        } else {
            format!("{:?}", req.dir)
        };
        return Err(format!(
            "spec.source.git.dockerfile: no file {:?} in {within} at commit {short}",
            req.dockerfile
        ));
    }
    let (dockerfile, labels) = (req.dockerfile.clone(), req.labels.clone());
    let context = tokio::task::spawn_blocking(move || {
        // Labels in one step of the Dockerfile rather than one step each.
        let labelled = files
            .iter()
            .find(|f| f.path == dockerfile)
            .map(|f| docker::with_labels(&f.data, &labels))
            .unwrap_or_default();
        docker::context_tar(files.iter().map(|f| ContextEntry {
            path: &f.path,
            mode: f.mode,
            data: if f.path == dockerfile { &labelled } else { &f.data },
        }))
    })
    .await
    .map_err(|e| format!("context task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    say(&format!(
        "berth: sending a build context of {} bytes",
        context.len()
    ))
    .await;
    let options = BuildOptions {
        dockerfile: Some(req.dockerfile.clone()),
        labels: Labels::new(),
        build_args: req.build_args.clone(),
        no_cache: false,
        pull: false,
    };
    let mut stream = req.docker.build_image(
        &req.image,
        futures::stream::once(async move { context }),
        &options,
    );
    while let Some(event) = stream.next().await {
        match event {
            Ok(BuildEvent::Log(line)) => say(&line).await,
            Ok(BuildEvent::Built { image_id }) => return Ok(image_id),
            Err(e) => {
                say(&format!("berth: {e}")).await;
                return Err(e.to_string());
            }
        }
    }
    Err("the build stream ended without a result".to_string())
}
