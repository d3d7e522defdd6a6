//! `GET .../namespaces/{ns}/applications/{name}/log`: an Application's container logs, or
//! with `build=true` the log of its latest build (Git sources).
//!
//! # Guarantees
//! - Lines of every container listed in the app's `status.containers` (all replicas), each
//!   prefixed with `[<container>] `, as `text/plain`; query `follow=true`, `tailLines=N`,
//!   `sinceSeconds=N` as in Kubernetes.
//! - Docker is reached through the adapter, on the endpoint of the app's Destination's Server.
//! - `build=true`: the build log of `status.build.commit` as the controller wrote it
//!   ([`berth_controllers::application::build_log`]); with `follow`, new lines as they are
//!   written, until `status.build.phase` is no longer `Building`. `tailLines` applies.
//!
//! # Caveats
//! - With `follow`, lines of different replicas interleave in arrival order.
//! - Build logs live on the disk of the server that built them: with etcd and several
//!   servers, ask the leader.

use std::{convert::Infallible, path::Path, time::Duration};

use berth_controllers::{
    application::build_log,
    docker::{Docker, LogOptions},
};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    error::{Error, Result},
    objects::{Api, resolve},
    response::Body,
};

/// Parsed query of a log request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Keep streaming.
    pub follow: bool,
    /// Last lines per container.
    pub tail_lines: Option<usize>,
    /// Only lines of the last N seconds.
    pub since_seconds: Option<i64>,
    /// The latest build's log instead of the containers'.
    pub build: bool,
}

impl LogQuery {
    /// Parses `follow`, `tailLines` and `sinceSeconds`.
    pub fn parse(query: Option<&str>) -> Result<Self> {
        let mut q = LogQuery::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let number = |what: &str| {
                v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    Error::BadRequest(format!("{what} must be a non-negative integer, not {v:?}"))
                })
            };
            match k.as_ref() {
                "follow" => q.follow = v == "true" || v == "1",
                "build" => q.build = v == "true" || v == "1",
                "tailLines" => {
                    q.tail_lines = Some(usize::try_from(number("tailLines")?).unwrap_or(usize::MAX))
                }
                "sinceSeconds" => q.since_seconds = Some(number("sinceSeconds")?),
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The log stream of application `ns/name`; build logs are read under `build_logs`.
pub async fn stream(
    api: &Api,
    ns: &str,
    name: &str,
    q: &LogQuery,
    build_logs: Option<&Path>,
    shutdown: CancellationToken,
) -> Result<Body> {
    let app = api.get(resolve("applications")?, Some(ns), name).await?;
    if q.build {
        return build_stream(api, &app, ns, name, q, build_logs, shutdown).await;
    }
    let dest_name = app
        .pointer("/spec/destination")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let dest = api.get(resolve("destinations")?, None, dest_name).await?;
    let server_name = dest
        .pointer("/spec/server")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let server = api.get(resolve("servers")?, None, server_name).await?;
    let uri = server
        .pointer("/spec/localhost/dockerHost")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::BadRequest(format!("server {server_name:?} is not a local docker endpoint")))?;
    let docker = Docker::connect(uri)
        .await
        .map_err(|e| Error::Unavailable(format!("docker on server {server_name:?}: {e}")))?;
    let mut containers: Vec<(u64, String)> = app
        .pointer("/status/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["replica"].as_u64().unwrap_or(0), c["name"].as_str()?.to_owned())))
        .collect();
    containers.sort();
    let since = q
        .since_seconds
        .map(|s| chrono::Utc::now().timestamp().saturating_sub(s));
    let options = LogOptions {
        tail: q.tail_lines,
        since,
        follow: q.follow,
    };
    let streams = containers
        .into_iter()
        .map(|(_, c)| {
            let prefix = format!("[{c}] ");
            docker
                .logs(&c, &options)
                .map(move |line| match line {
                    Ok(l) => Bytes::from(format!("{prefix}{}\n", l.line)),
                    Err(e) => Bytes::from(format!("{prefix}error: {e}\n")),
                })
                .boxed()
        })
        .collect::<Vec<_>>();
    let merged: futures::stream::BoxStream<'static, Bytes> = if q.follow {
        futures::stream::select_all(streams).boxed()
    } else {
        futures::stream::iter(streams).flatten().boxed()
    };
    Ok(body(merged, shutdown))
}

/// A text body from `stream`: the body must be Sync, so forward through a channel, stopping
/// with the server or the client.
fn body(stream: futures::stream::BoxStream<'static, Bytes>, shutdown: CancellationToken) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream.take_until(async move { shutdown.cancelled().await }));
        while let Some(b) = stream.next().await {
            if tx.send(b).await.is_err() {
                break;
            }
        }
    });
    let body = tokio_stream::wrappers::ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    BodyExt::boxed(StreamBody::new(body))
}

/// How often a followed build log is read again.
const BUILD_POLL: Duration = Duration::from_millis(250);

fn building(app: &Value) -> bool {
    app.pointer("/status/build/phase").and_then(Value::as_str) == Some("Building")
}

/// The log of the latest build of `app` (see the module docs).
async fn build_stream(
    api: &Api,
    app: &Value,
    ns: &str,
    name: &str,
    q: &LogQuery,
    build_logs: Option<&Path>,
    shutdown: CancellationToken,
) -> Result<Body> {
    let dir = build_logs.ok_or_else(|| Error::BadRequest("this server keeps no build logs".to_string()))?;
    let commit = app
        .pointer("/status/build/commit")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "application {name:?} has no build: its source is not git, or its ref is not resolved yet"
            ))
        })?;
    let path = build_log::path(dir, ns, name, commit);
    let text = match tokio::fs::read(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && q.follow && building(app) => Vec::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                kind: "build logs".to_string(),
                name: format!("{ns}/{name}@{commit}"),
            });
        }
        Err(e) => return Err(Error::Internal(format!("cannot read the build log: {e}"))),
    };
    let first = Bytes::from(tail_lines(&text, q.tail_lines).to_vec());
    if !q.follow {
        return Ok(body(futures::stream::iter([first]).boxed(), shutdown));
    }
    let (api, ns, name, commit) = (api.clone(), ns.to_string(), name.to_string(), commit.to_string());
    let mut offset = text.len() as u64;
    let rest = futures::stream::unfold(true, move |go_on| {
        let (api, path, ns, name, commit) = (
            api.clone(),
            path.clone(),
            ns.clone(),
            name.clone(),
            commit.clone(),
        );
        async move {
            if !go_on {
                return None;
            }
            loop {
                // Whether to read once more after this: only while that commit still builds.
                let app = api
                    .get(resolve("applications").ok()?, Some(&ns), &name)
                    .await
                    .ok();
                let more = app.as_ref().is_some_and(|a| {
                    building(a)
                        && a.pointer("/status/build/commit").and_then(Value::as_str) == Some(commit.as_str())
                });
                let chunk = read_from(&path, offset).await;
                offset += chunk.len() as u64;
                if !chunk.is_empty() || !more {
                    return Some((Bytes::from(chunk), more));
                }
                tokio::time::sleep(BUILD_POLL).await;
            }
        }
    });
    Ok(body(futures::stream::iter([first]).chain(rest).boxed(), shutdown))
}

/// The bytes of `path` from `offset` on (none when it cannot be read yet).
async fn read_from(path: &Path, offset: u64) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    if let Err(e) = async {
        f.seek(std::io::SeekFrom::Start(offset)).await?;
        f.read_to_end(&mut buf).await
    }
    .await
    {
        tracing::debug!(error = %e, path = %path.display(), "cannot read the build log");
    }
    buf
}

/// The last `n` lines of `text` (all without `n`).
fn tail_lines(text: &[u8], n: Option<usize>) -> &[u8] {
    let Some(n) = n else { return text };
    if n == 0 {
        return &[];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_lines_counts_from_the_end() {
        let t = b"a\nb\nc\n";
        assert_eq!(tail_lines(t, None), t);
        assert_eq!(tail_lines(t, Some(0)), b"");
        assert_eq!(tail_lines(t, Some(1)), b"c\n");
        assert_eq!(tail_lines(t, Some(2)), b"b\nc\n");
        assert_eq!(tail_lines(t, Some(5)), t);
        assert_eq!(tail_lines(b"a\nb", Some(1)), b"b");
    }

    #[test]
    fn build_is_a_query_flag() {
        let q = LogQuery::parse(Some("build=true&tailLines=3")).unwrap();
        assert!(q.build);
        assert_eq!(q.tail_lines, Some(3));
    }
}
