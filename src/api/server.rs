//! The HTTP server: Kubernetes-style REST paths and watch streams over hyper.
//!
//! # Guarantees
//! - Every error is a `Status` body with the code [`super::error::Error::status`] gives.
//! - Request bodies over the limit are refused with 413 before they are parsed.
//! - Non-watch requests time out; on shutdown the listener closes, watches end, and in-flight
//!   requests get the shutdown deadline to finish.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};
use tracing::Instrument;

use berth_crds::registry::{self, KindInfo};
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use super::response::Body;

use super::{
    auth::{Role, Tokens},
    error::{Error, Result},
    hooks,
    objects::{Api, DeleteOptions, WriteOptions},
    request::{check_patch_type, read_body, read_body_opt, read_bytes},
    response::{error_response, json_response, metrics_response, stream_response, text},
    selector::{FieldSelector, LabelSelector},
    watch::{Event, WatchParams},
};

/// Tunables of the HTTP server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body: usize,
    /// Deadline of a non-watch request.
    pub request_timeout: Duration,
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
    /// How long a watch may wait for a slow client before it is dropped.
    pub slow_watcher_timeout: Duration,
    /// Events queued per watch before a send waits on the client.
    pub watch_queue: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 3 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            bookmark_interval: Duration::from_secs(10),
            slow_watcher_timeout: Duration::from_secs(10),
            watch_queue: crate::api::watch::DEFAULT_QUEUE,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct State {
    /// The API layer.
    pub api: Api,
    /// Accepted tokens.
    pub tokens: Tokens,
    /// Limits and intervals.
    pub limits: Limits,
    /// Cancelled when the server shuts down (ends watches).
    pub shutdown: CancellationToken,
    /// The controller runtime's metrics, served at `/metrics`.
    pub metrics: berth_runtime::Metrics,
    /// Where the Application controller writes build logs (`berth logs --build`).
    pub build_logs: Option<std::path::PathBuf>,
}

/// Serves HTTP on `listener` until `state.shutdown` is cancelled, then drains.
pub async fn serve(listener: TcpListener, state: Arc<State>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = state.shutdown.cancelled() => break,
        };
        // Watch events are small writes that must leave at once, not wait for Nagle.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "cannot set TCP_NODELAY");
        }
        let state = state.clone();
        let service = hyper::service::service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(handle(state, peer, req).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = state.limits.shutdown_grace;
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!(?grace, "shutdown grace period over; closing remaining connections"),
    }
}

/// Handles one request; never fails (errors become `Status` responses).
async fn handle(state: Arc<State>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::debug_span!("request", %method, %path, %peer);
    match route(&state, req).instrument(span).await {
        Ok(resp) => resp,
        Err(e) => {
            if matches!(e, Error::Internal(_)) {
                tracing::error!(error = %e, %method, %path, "request failed");
            }
            error_response(&e)
        }
    }
}

/// Request parameters parsed from the query string.
#[derive(Debug, Default)]
struct Query {
    watch: bool,
    resource_version: Option<i64>,
    labels: LabelSelector,
    fields: FieldSelector,
    dry_run: bool,
    timeout: Option<Duration>,
}

impl Query {
    fn parse(q: Option<&str>) -> Result<Self> {
        let mut out = Self::default();
        for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "watch" => out.watch = v == "true" || v == "1",
                "resourceVersion" if !v.is_empty() => {
                    out.resource_version = Some(v.parse().map_err(|_| {
                        Error::BadRequest(format!(
                            "resourceVersion {v:?} is not a revision this server issued"
                        ))
                    })?)
                }
                "labelSelector" => {
                    out.labels = LabelSelector::parse(&v).map_err(|e| Error::BadRequest(e.to_string()))?
                }
                "fieldSelector" => {
                    out.fields = FieldSelector::parse(&v).map_err(|e| Error::BadRequest(e.to_string()))?
                }
                "dryRun" => match v.as_ref() {
                    "All" => out.dry_run = true,
                    "" => {}
                    other => {
                        return Err(Error::BadRequest(format!(
                            "dryRun {other:?} is not supported (All)"
                        )));
                    }
                },
                "timeoutSeconds" => {
                    let secs: u64 = v
                        .parse()
                        .map_err(|_| Error::BadRequest(format!("timeoutSeconds {v:?} is not a number")))?;
                    out.timeout = Some(Duration::from_secs(secs));
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The resource a path names.
struct Target {
    info: &'static KindInfo,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> Result<Response<Body>> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    match path.as_str() {
        "/healthz" | "/livez" => return Ok(text(StatusCode::OK, "ok")),
        "/readyz" => {
            return match state.api.store().current_revision().await {
                Ok(_) => Ok(text(StatusCode::OK, "ok")),
                Err(e) => Err(Error::Unavailable(format!("store not reachable: {e}"))),
            };
        }
        "/version" => return Ok(json_response(StatusCode::OK, &version())),
        // Like /healthz, unauthenticated: it names controllers and kinds, never objects.
        "/metrics" => return Ok(metrics_response(state.metrics.render())),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/hooks/") {
        return webhook(state, rest, req).await;
    }
    let Some(rest) = path.strip_prefix("/apis/berth.dev/v1") else {
        return Err(Error::NotFound {
            kind: "paths".into(),
            name: path,
        });
    };
    let role = authorize(state, &req)?;
    if req.method() != Method::GET && role == Role::Viewer {
        return Err(Error::Forbidden(format!(
            "a viewer token may only read and watch, not {}",
            req.method()
        )));
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Ok(json_response(StatusCode::OK, &discovery()));
    }
    if let ["namespaces", ns, "applications", name, "log"] = segments.as_slice() {
        if req.method() != Method::GET {
            return Err(Error::MethodNotAllowed(req.method().to_string()));
        }
        let q = super::logs::LogQuery::parse(req.uri().query())?;
        let body = super::logs::stream(
            &state.api,
            ns,
            name,
            &q,
            state.build_logs.as_deref(),
            state.shutdown.clone(),
        )
        .await?;
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(resp);
    }
    let target = parse_target(&segments)?;
    let query = Query::parse(req.uri().query())?;
    if query.watch {
        return watch(state, &target, &query).await;
    }
    let timeout = state.limits.request_timeout;
    match tokio::time::timeout(timeout, dispatch(state, target, query, req)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    }
}

/// `/hooks/{git|apps}/{namespace}/{name}`: authenticated by the signature, not a token.
async fn webhook(state: &State, rest: &str, req: Request<Incoming>) -> Result<Response<Body>> {
    let segments: Vec<&str> = rest.split('/').collect();
    let (hook, ns, name) = match segments.as_slice() {
        ["git", ns, name] => (hooks::Hook::Git, *ns, *name),
        ["apps", ns, name] => (hooks::Hook::App, *ns, *name),
        _ => {
            return Err(Error::NotFound {
                kind: "paths".into(),
                name: format!("/hooks/{rest}"),
            });
        }
    };
    let (ns, name) = (ns.to_owned(), name.to_owned());
    let (method, headers) = (req.method().clone(), req.headers().clone());
    let body = read_bytes(state.limits.max_body, req).await?;
    let timeout = state.limits.request_timeout;
    let handled = hooks::handle(&state.api, hook, &method, &ns, &name, &headers, body);
    match tokio::time::timeout(timeout, handled).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    }
}

fn authorize(state: &State, req: &Request<Incoming>) -> Result<Role> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.tokens.authenticate(header) {
        Some((_, role)) => Ok(role),
        None if header.is_none() => Err(Error::Unauthorized("missing bearer token".into())),
        None => Err(Error::Unauthorized("invalid bearer token".into())),
    }
}

fn parse_target(segments: &[&str]) -> Result<Target> {
    let (namespace, rest) = match segments {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, segments),
    };
    let (resource, name, status) = match rest {
        [r] => (*r, None, false),
        [r, n] => (*r, Some(n.to_string()), false),
        [r, n, "status"] => (*r, Some(n.to_string()), true),
        _ => {
            return Err(Error::NotFound {
                kind: "paths".into(),
                name: segments.join("/"),
            });
        }
    };
    let info = registry::kinds()
        .iter()
        .find(|k| k.plural == resource)
        .ok_or_else(|| Error::NotFound {
            kind: "resources".into(),
            name: resource.into(),
        })?;
    if namespace.is_some() && !info.namespaced {
        return Err(Error::BadRequest(format!(
            "{} are cluster-scoped: drop /namespaces/{{ns}}",
            info.plural
        )));
    }
    if info.namespaced && name.is_some() && namespace.is_none() {
        return Err(Error::BadRequest(format!(
            "{} are namespaced: use /apis/berth.dev/v1/namespaces/{{ns}}/{}/{{name}}",
            info.plural, info.plural
        )));
    }
    Ok(Target {
        info,
        namespace,
        name,
        status,
    })
}

async fn dispatch(state: &State, t: Target, q: Query, req: Request<Incoming>) -> Result<Response<Body>> {
    let api = &state.api;
    let ns = t.namespace.as_deref();
    let write = WriteOptions { dry_run: q.dry_run };
    let method = req.method().clone();
    let ok = |v: &Value| json_response(StatusCode::OK, v);
    match (method, t.name.as_deref(), t.status) {
        (Method::GET, None, false) => {
            let list = api.list(t.info, ns, &q.labels, &q.fields).await?;
            Ok(ok(&json!({
                "apiVersion": berth_crds::API_VERSION,
                "kind": format!("{}List", t.info.kind),
                "metadata": {"resourceVersion": list.revision.to_string()},
                "items": list.items,
            })))
        }
        (Method::POST, None, false) => {
            if t.info.namespaced && ns.is_none() {
                return Err(Error::BadRequest(format!(
                    "{} are namespaced: POST to /apis/berth.dev/v1/namespaces/{{ns}}/{}",
                    t.info.plural, t.info.plural
                )));
            }
            let body = read_body(state.limits.max_body, req).await?;
            let created = api.create(t.info, ns, body, write).await?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (Method::GET, Some(name), _) => Ok(ok(&api.get(t.info, ns, name).await?)),
        (Method::PUT, Some(name), false) => {
            let body = read_body(state.limits.max_body, req).await?;
            Ok(ok(&api.replace(t.info, ns, name, body, write).await?))
        }
        (Method::PUT, Some(name), true) => {
            let body = read_body(state.limits.max_body, req).await?;
            Ok(ok(&api.replace_status(t.info, ns, name, body, write).await?))
        }
        (Method::PATCH, Some(name), status) => {
            check_patch_type(&req)?;
            let body = read_body(state.limits.max_body, req).await?;
            let patched = if status {
                api.patch_status(t.info, ns, name, body, write).await?
            } else {
                api.patch(t.info, ns, name, body, write).await?
            };
            Ok(ok(&patched))
        }
        (Method::DELETE, Some(name), false) => {
            let body = read_body_opt(state.limits.max_body, req).await?;
            let mut opts = DeleteOptions {
                dry_run: q.dry_run,
                ..DeleteOptions::default()
            };
            if let Some(pre) = body.as_ref().and_then(|b| b.get("preconditions")) {
                opts.resource_version = pre
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok());
                opts.uid = pre.get("uid").and_then(Value::as_str).map(str::to_owned);
            }
            Ok(ok(&api.delete(t.info, ns, name, &opts).await?))
        }
        (m, _, _) => Err(Error::MethodNotAllowed(m.to_string())),
    }
}

async fn watch(state: &Arc<State>, t: &Target, q: &Query) -> Result<Response<Body>> {
    if t.name.is_some() {
        return Err(Error::BadRequest(
            "watch a collection, with fieldSelector=metadata.name=NAME".into(),
        ));
    }
    let params = WatchParams {
        resource_version: q.resource_version,
        labels: q.labels.clone(),
        fields: q.fields.clone(),
        slow_timeout: state.limits.slow_watcher_timeout,
        queue: state.limits.watch_queue,
    };
    let info = t.info;
    let events = match state.api.watch(info, t.namespace.as_deref(), params).await {
        Ok(events) => events,
        // Kubernetes reports a too-old resourceVersion on a watch as an ERROR event.
        Err(e @ Error::Gone { .. }) => {
            let line = event_line(&Event::error(&e));
            let body = futures::stream::once(async move { Ok::<_, Infallible>(Frame::data(line)) });
            return Ok(stream_response(BodyExt::boxed(StreamBody::new(body))));
        }
        Err(e) => return Err(e),
    };
    let mut bookmarks = tokio::time::interval(state.limits.bookmark_interval);
    bookmarks.tick().await;
    let last_rv = events.start_revision();
    let initial_left = events.initial_events();
    let stream = WatchBody {
        events: Box::pin(events),
        bookmarks,
        shutdown: state.shutdown.clone(),
        deadline: q.timeout.map(|d| tokio::time::Instant::now() + d),
        last_rv,
        initial_left,
        finished: false,
        info,
    };
    let body = futures::stream::unfold(stream, |mut st| async move {
        let line = st.next_line().await?;
        Some((Ok::<_, Infallible>(Frame::data(line)), st))
    });
    Ok(stream_response(BodyExt::boxed(StreamBody::new(body))))
}

/// The state of one streamed watch response.
struct WatchBody {
    events: std::pin::Pin<Box<super::watch::Watch>>,
    bookmarks: tokio::time::Interval,
    shutdown: CancellationToken,
    deadline: Option<tokio::time::Instant>,
    last_rv: i64,
    /// Initial `ADDED` events still to deliver; no bookmark before they are.
    initial_left: usize,
    finished: bool,
    info: &'static KindInfo,
}

impl WatchBody {
    /// The next newline-terminated event, or `None` when the response ends.
    async fn next_line(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        let deadline = self.deadline;
        let until_deadline = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = self.events.next() => match ev {
                Some(Ok(ev)) => {
                    self.initial_left = self.initial_left.saturating_sub(1);
                    if let Some(rv) = ev.revision() {
                        self.last_rv = self.last_rv.max(rv);
                    }
                    Some(event_line(&ev))
                }
                Some(Err(e)) => {
                    self.finished = true;
                    Some(event_line(&Event::error(&e)))
                }
                None => None,
            },
            _ = self.bookmarks.tick(), if self.initial_left == 0 => Some(event_line(&Event::bookmark(self.info, self.last_rv))),
            () = self.shutdown.cancelled() => None,
            () = until_deadline => None,
        }
    }
}

fn event_line(ev: &Event) -> Bytes {
    let mut line = serde_json::to_vec(ev).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The `/version` document.
pub fn version() -> Value {
    json!({"gitVersion": env!("CARGO_PKG_VERSION"), "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)})
}

/// The API discovery document (`/apis/berth.dev/v1`), as an `APIResourceList`.
fn discovery() -> Value {
    let resources: Vec<Value> = registry::kinds()
        .iter()
        .map(|k| {
            json!({
                "name": k.plural,
                "singularName": k.singular,
                "namespaced": k.namespaced,
                "kind": k.kind,
                "shortNames": k.short_names,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": berth_crds::API_VERSION, "resources": resources})
}
