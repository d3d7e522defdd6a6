//! What the container-running controllers (Application, Database) share: pulling a missing
//! image with events, creating and starting a container, removing one, reading its last log
//! lines, and recording events without failing the reconcile.
//!
//! # Guarantees
//! - [`ensure_image`] pulls only when the daemon lacks the image, and reports the pull as
//!   `Pulling`/`Pulled` events (with [`PullMeter`]'s summary and the digest), or
//!   `ImagePullFailed` with the daemon's words.
//! - [`remove`] and [`create_and_start`] are idempotent: a container already gone, already
//!   created or already running is not an error.
//!
//! # Caveats
//! - Pulls run inside the caller's reconcile: a slow pull holds one worker.

use berth_crds::{Object, Resource, kinds::event::EventType};
use futures::StreamExt;

use std::{future::Future, time::Duration};

pub mod pull;

use self::pull::PullMeter;
use crate::docker::{self, ContainerSpec, Docker, ImageInfo, LogOptions};
use crate::events::Recorder;

/// A failure to get a container running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// The image could not be pulled (retried with backoff).
    #[error("image {image}: {message}")]
    ImagePull {
        /// The image.
        image: String,
        /// The registry's or daemon's error.
        message: String,
    },
}

/// Records an event about `obj`; a failure to record is logged, never returned.
pub async fn record<K: Resource>(
    recorder: &Recorder,
    obj: &Object<K>,
    type_: EventType,
    reason: &str,
    message: &str,
) {
    if let Err(e) = recorder.publish(obj, type_, reason, message).await {
        tracing::warn!(error = %e, reason, "cannot record event");
    }
}

/// How often [`ensure_image`] reports pull progress.
pub const PULL_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The image, pulled first unless the daemon has it: events `Pulling` and `Pulled` (with the
/// time taken, layers, bytes and digest) or `ImagePullFailed` on `obj`, and `progress` called
/// with a one-line summary at most every [`PULL_PROGRESS_EVERY`] while it pulls.
pub async fn ensure_image<K, F, Fut>(
    docker: &Docker,
    recorder: &Recorder,
    obj: &Object<K>,
    image: &str,
    mut progress: F,
) -> Result<ImageInfo, Error>
where
    K: Resource,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = ()>,
{
    match docker.inspect_image(image).await {
        Ok(info) => return Ok(info),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let normal = EventType::Normal;
    record(
        recorder,
        obj,
        normal,
        "Pulling",
        &format!("pulling image {image}"),
    )
    .await;
    let started = tokio::time::Instant::now();
    let mut last_report = started;
    let mut meter = PullMeter::default();
    let mut stream = docker.pull_image(image);
    while let Some(p) = stream.next().await {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                let message = e.to_string();
                record(recorder, obj, EventType::Warning, "ImagePullFailed", &message).await;
                return Err(Error::ImagePull {
                    image: image.to_owned(),
                    message,
                });
            }
        };
        meter.observe(&p);
        if last_report.elapsed() >= PULL_PROGRESS_EVERY {
            last_report = tokio::time::Instant::now();
            progress(format!("pulling image {image}: {}", meter.summary())).await;
        }
    }
    let digest = meter.digest().map_or(String::new(), |d| format!(", digest {d}"));
    let message = format!(
        "pulled image {image} in {:.1}s ({}{digest})",
        started.elapsed().as_secs_f64(),
        meter.summary()
    );
    record(recorder, obj, normal, "Pulled", &message).await;
    Ok(docker.inspect_image(image).await?)
}

/// Creates `spec` (adopting a container of that name created earlier) and starts it.
pub async fn create_and_start(docker: &Docker, spec: &ContainerSpec) -> Result<(), docker::Error> {
    match docker.create_container(spec).await {
        Ok(_) => {}
        Err(docker::Error::Conflict { message }) => {
            tracing::info!(container = %spec.name, %message, "container already created");
        }
        Err(e) => return Err(e),
    }
    docker.start_container(&spec.name).await?;
    tracing::info!(container = %spec.name, "container started");
    Ok(())
}

/// Removes a container (forcibly); one already gone is fine.
pub async fn remove(docker: &Docker, container: &str) -> Result<(), docker::Error> {
    match docker.remove_container(container).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The last `n` log lines of a container (empty when they cannot be read).
pub async fn last_logs(docker: &Docker, container: &str, n: usize) -> String {
    let options = LogOptions {
        tail: Some(n),
        since: None,
        follow: false,
    };
    let mut lines = Vec::new();
    let mut stream = docker.logs(container, &options);
    while let Some(line) = stream.next().await {
        match line {
            Ok(l) => lines.push(l.line),
            Err(e) => {
                tracing::debug!(error = %e, container, "cannot read logs");
                break;
            }
        }
    }
    lines.join("\n")
}
