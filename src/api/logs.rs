//! `GET .../namespaces/{ns}/applications/{name}/log`: an Application's container logs.
//!
//! # Guarantees
//! - Lines of every container listed in the app's `status.containers` (all replicas), each
//!   prefixed with `[<container>] `, as `text/plain`; query `follow=true`, `tailLines=N`,
//!   `sinceSeconds=N` as in Kubernetes.
//! - Docker is reached through the adapter, on the endpoint of the app's Destination's Server.
//!
//! # Caveats
//! - With `follow`, lines of different replicas interleave in arrival order.

use std::convert::Infallible;

use berth_controllers::docker::{Docker, LogOptions};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    error::{Error, Result},
    objects::{Api, resolve},
    server::Body,
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

/// The log stream of application `ns/name`.
pub async fn stream(
    api: &Api,
    ns: &str,
    name: &str,
    q: &LogQuery,
    shutdown: CancellationToken,
) -> Result<Body> {
    let app = api.get(resolve("applications")?, Some(ns), name).await?;
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
    // The body must be Sync: forward through a channel, stopping with the server or the client.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut merged = std::pin::pin!(merged.take_until(async move { shutdown.cancelled().await }));
        while let Some(b) = merged.next().await {
            if tx.send(b).await.is_err() {
                break;
            }
        }
    });
    let body = tokio_stream::wrappers::ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Ok(BodyExt::boxed(StreamBody::new(body)))
}
