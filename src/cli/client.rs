//! The CLI's HTTP client: where the server is (flags > environment > config file) and the
//! REST calls every verb makes.
//!
//! # Guarantees
//! - Every non-2xx answer becomes [`Error::Api`] with the server's `Status`; anything else
//!   the server sends back is [`Error::Transport`], never a panic.
//! - [`Client::watch`] yields events in the order the server sent them and ends when the
//!   server closes the stream.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use berth_crds::registry::KindInfo;
use futures::{Stream, StreamExt, stream::BoxStream};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiStatus, Error, Result};
use crate::config;

/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of a non-watch request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// How often a GET is retried after its connection broke.
const GET_RETRIES: usize = 2;

/// How one attempt of a request failed.
#[derive(Debug, thiserror::Error)]
enum Sent {
    /// The request or its answer did not get through.
    #[error("{0}")]
    Broken(reqwest::Error),
    /// The server answered with an error, or the answer made no sense.
    #[error("{0}")]
    Answered(Error),
}

/// Where the server is and who we are, after resolving flags, environment and config file.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The base URL.
    pub server: String,
    /// The bearer token.
    pub token: String,
    /// The default Environment from the config file, if any.
    pub namespace: Option<String>,
}

/// Resolves the connection: `--server`/`--token` (clap already folds in `BERTH_SERVER` and
/// `BERTH_TOKEN`) win over the config file.
pub fn resolve(server: Option<&str>, token: Option<&str>) -> Result<Resolved> {
    let path = config::path().map_err(|e| Error::Config(e.to_string()))?;
    let file = config::read(&path).map_err(|e| Error::Config(e.to_string()))?;
    let server = server
        .map(str::to_owned)
        .or_else(|| file.as_ref().map(|c| c.server.clone()))
        .ok_or_else(|| {
            Error::Config(format!(
                "no server configured: start one with `berth serve` (it writes {}) or pass --server",
                path.display()
            ))
        })?;
    let token = token
        .map(str::to_owned)
        .or_else(|| file.as_ref().map(|c| c.token.clone()))
        .unwrap_or_default();
    Ok(Resolved {
        server,
        token,
        namespace: file.and_then(|c| c.namespace),
    })
}

/// One watch event as the server sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The object, or a `Status` for `ERROR`.
    pub object: Value,
}

/// A list answer: items and the revision to watch after.
#[derive(Debug, Clone)]
pub struct List {
    /// The objects.
    pub items: Vec<Value>,
    /// The list's resourceVersion.
    pub resource_version: String,
}

/// Query parameters of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// `labelSelector`.
    pub labels: Option<String>,
    /// Only the object with this name (`fieldSelector=metadata.name=...`).
    pub name: Option<String>,
}

/// A client of one berth API server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl Client {
    /// A client for `resolved`.
    pub fn new(resolved: &Resolved) -> Result<Self> {
        let base = Url::parse(resolved.server.trim_end_matches('/'))
            .map_err(|e| Error::Config(format!("server URL {:?} is not a URL: {e}", resolved.server)))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Error::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: resolved.token.clone(),
        })
    }

    /// The URL of a collection (`name` = `None`) or an object.
    pub fn url(&self, info: &KindInfo, ns: Option<&str>, name: Option<&str>) -> Url {
        let mut path = String::from("/apis/berth.dev/v1");
        if let (true, Some(ns)) = (info.namespaced, ns) {
            path.push_str("/namespaces/");
            path.push_str(ns);
        }
        path.push('/');
        path.push_str(info.plural);
        if let Some(name) = name {
            path.push('/');
            path.push_str(name);
        }
        let mut url = self.base.clone();
        url.set_path(&path);
        url
    }

    /// Sends one request. A GET whose connection broke mid-request (e.g. a pooled
    /// connection the server had just closed) is retried twice; writes are not, since
    /// the server may have acted on them.
    async fn send(&self, method: Method, url: Url, body: Option<(&str, &Value)>) -> Result<Value> {
        let retries = if method == Method::GET { GET_RETRIES } else { 0 };
        let policy = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_times(retries);
        (|| self.send_once(method.clone(), &url, body))
            .retry(policy)
            .when(|e| matches!(e, Sent::Broken(e) if !e.is_timeout() && !e.is_connect()))
            .notify(|e, after| tracing::debug!(error = %e, ?after, "request failed; retrying"))
            .await
            .map_err(|e| match e {
                Sent::Broken(e) => transport(&url, &e),
                Sent::Answered(e) => e,
            })
    }

    async fn send_once(
        &self,
        method: Method,
        url: &Url,
        body: Option<(&str, &Value)>,
    ) -> std::result::Result<Value, Sent> {
        let mut req = self
            .http
            .request(method, url.clone())
            .timeout(REQUEST_TIMEOUT)
            .bearer_auth(&self.token);
        if let Some((content_type, body)) = body {
            let bytes =
                serde_json::to_vec(body).map_err(|e| Sent::Answered(Error::Transport(e.to_string())))?;
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let resp = req.send().await.map_err(Sent::Broken)?;
        let code = resp.status();
        let bytes = resp.bytes().await.map_err(Sent::Broken)?;
        decode(code, &bytes).map_err(Sent::Answered)
    }

    /// Reads one object.
    pub async fn get(&self, info: &KindInfo, ns: Option<&str>, name: &str) -> Result<Value> {
        self.send(Method::GET, self.url(info, ns, Some(name)), None).await
    }

    /// Reads one object, `None` when it does not exist (or its namespace does not).
    pub async fn get_opt(&self, info: &KindInfo, ns: Option<&str>, name: &str) -> Result<Option<Value>> {
        match self.get(info, ns, name).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists a kind in `ns` (all namespaces when `None`).
    pub async fn list(&self, info: &KindInfo, ns: Option<&str>, params: &ListParams) -> Result<List> {
        let mut url = self.url(info, ns, None);
        set_list_query(&mut url, params);
        let v = self.send(Method::GET, url, None).await?;
        Ok(List {
            items: v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            resource_version: v
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// Creates an object (validated only, with `dry_run`).
    pub async fn create(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        body: &Value,
        dry_run: bool,
    ) -> Result<Value> {
        let mut url = self.url(info, ns, None);
        dry(&mut url, dry_run);
        self.send(Method::POST, url, Some(("application/json", body)))
            .await
    }

    /// Sends a JSON merge patch (validated only, with `dry_run`).
    pub async fn patch(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        dry_run: bool,
    ) -> Result<Value> {
        let mut url = self.url(info, ns, Some(name));
        dry(&mut url, dry_run);
        self.send(Method::PATCH, url, Some(("application/merge-patch+json", patch)))
            .await
    }

    /// Sends a JSON merge patch (`{"status": ...}`) to an object's `/status` subresource.
    pub async fn patch_status(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<Value> {
        let mut url = self.url(info, ns, Some(name));
        let path = format!("{}/status", url.path());
        url.set_path(&path);
        self.send(Method::PATCH, url, Some(("application/merge-patch+json", patch)))
            .await
    }

    /// Deletes an object; returns it as it last was.
    pub async fn delete(&self, info: &KindInfo, ns: Option<&str>, name: &str) -> Result<Value> {
        self.send(Method::DELETE, self.url(info, ns, Some(name)), None)
            .await
    }

    /// The server's `/version` document.
    pub async fn version(&self) -> Result<Value> {
        let mut url = self.base.clone();
        url.set_path("/version");
        self.send(Method::GET, url, None).await
    }

    /// Streams the log lines of application `ns/name` (see `berth logs`).
    pub async fn logs(
        &self,
        ns: &str,
        name: &str,
        follow: bool,
        tail: Option<usize>,
        since_seconds: Option<u64>,
        build: bool,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes>>> {
        let mut url = self.base.clone();
        url.set_path(&format!(
            "/apis/berth.dev/v1/namespaces/{ns}/applications/{name}/log"
        ));
        {
            let mut q = url.query_pairs_mut();
            if follow {
                q.append_pair("follow", "true");
            }
            if let Some(t) = tail {
                q.append_pair("tailLines", &t.to_string());
            }
            if let Some(s) = since_seconds {
                q.append_pair("sinceSeconds", &s.to_string());
            }
            if build {
                q.append_pair("build", "true");
            }
        }
        let resp = self
            .http
            .get(url.clone())
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| transport(&url, &e))?;
        let code = resp.status();
        if !code.is_success() {
            let bytes = resp.bytes().await.map_err(|e| transport(&url, &e))?;
            return Err(match decode(code, &bytes) {
                Err(e) => e,
                Ok(_) => Error::Transport(format!("{url}: the log request answered {code}")),
            });
        }
        Ok(resp
            .bytes_stream()
            .map(move |b| b.map_err(|e| transport(&url, &e)))
            .boxed())
    }

    /// Watches a kind after `resource_version`: one item per event, ending when the server
    /// closes the stream.
    pub async fn watch(
        &self,
        info: &KindInfo,
        ns: Option<&str>,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent>>> {
        let mut url = self.url(info, ns, None);
        set_list_query(&mut url, params);
        url.query_pairs_mut()
            .append_pair("watch", "true")
            .append_pair("resourceVersion", resource_version);
        let resp = self
            .http
            .get(url.clone())
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| transport(&url, &e))?;
        let code = resp.status();
        if !code.is_success() {
            let bytes = resp.bytes().await.map_err(|e| transport(&url, &e))?;
            return Err(match decode(code, &bytes) {
                Err(e) => e,
                Ok(_) => Error::Transport(format!("{url}: the watch answered {code}")),
            });
        }
        let bytes = resp.bytes_stream();
        Ok(lines(bytes, url))
    }
}

/// Splits a byte stream into newline-delimited JSON events.
fn lines(
    bytes: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    url: Url,
) -> BoxStream<'static, Result<WatchEvent>> {
    let state = (Box::pin(bytes), Vec::<u8>::new(), url, false);
    futures::stream::unfold(state, |(mut bytes, mut buf, url, done)| async move {
        if done {
            return None;
        }
        loop {
            if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let ev = serde_json::from_slice::<WatchEvent>(&line)
                    .map_err(|e| Error::Transport(format!("{url}: a watch event is not valid JSON: {e}")));
                return Some((ev, (bytes, buf, url, false)));
            }
            match bytes.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    let err = transport(&url, &e);
                    return Some((Err(err), (bytes, buf, url, true)));
                }
                None => return None,
            }
        }
    })
    .boxed()
}

fn set_list_query(url: &mut Url, params: &ListParams) {
    let mut q = url.query_pairs_mut();
    if let Some(l) = params.labels.as_deref().filter(|l| !l.is_empty()) {
        q.append_pair("labelSelector", l);
    }
    if let Some(n) = &params.name {
        q.append_pair("fieldSelector", &format!("metadata.name={n}"));
    }
}

fn dry(url: &mut Url, dry_run: bool) {
    if dry_run {
        url.query_pairs_mut().append_pair("dryRun", "All");
    }
}

fn transport(url: &Url, e: &reqwest::Error) -> Error {
    let mut origin = url.clone();
    origin.set_path("");
    origin.set_query(None);
    if e.is_connect() {
        Error::Transport(format!(
            "cannot connect to the berth server at {origin}: is `berth serve` running?"
        ))
    } else if e.is_timeout() {
        Error::Transport(format!("the berth server at {origin} did not answer in time"))
    } else {
        // reqwest's own message ("error sending request") hides the cause: add the chain.
        let chain: Vec<String> = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect();
        Error::Transport(format!("request to {origin} failed: {}", chain.join(": ")))
    }
}

/// Turns an answer into its JSON body, or the `Status` error it carries.
fn decode(code: StatusCode, bytes: &[u8]) -> Result<Value> {
    if code.is_success() {
        return serde_json::from_slice(bytes)
            .map_err(|e| Error::Transport(format!("the server sent invalid JSON: {e}")));
    }
    match serde_json::from_slice::<ApiStatus>(bytes) {
        Ok(mut status) if !status.message.is_empty() => {
            status.code = code.as_u16();
            Err(Error::Api(Box::new(status)))
        }
        _ => Err(Error::Api(Box::new(ApiStatus {
            message: format!(
                "the server answered {code}: {}",
                String::from_utf8_lossy(bytes).trim()
            ),
            code: code.as_u16(),
            ..ApiStatus::default()
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_rest_layout() {
        let c = Client::new(&Resolved {
            server: "http://127.0.0.1:1/".into(),
            token: String::new(),
            namespace: None,
        })
        .unwrap();
        let app = berth_crds::lookup("app").unwrap();
        let proj = berth_crds::lookup("project").unwrap();
        assert_eq!(
            c.url(app, Some("p-production"), Some("web")).as_str(),
            "http://127.0.0.1:1/apis/berth.dev/v1/namespaces/p-production/applications/web"
        );
        assert_eq!(
            c.url(app, None, None).as_str(),
            "http://127.0.0.1:1/apis/berth.dev/v1/applications"
        );
        assert_eq!(
            c.url(proj, Some("ignored"), Some("p")).as_str(),
            "http://127.0.0.1:1/apis/berth.dev/v1/projects/p"
        );
    }

    #[test]
    fn error_bodies_become_statuses() {
        let body =
            br#"{"kind":"Status","message":"applications \"x\" not found","reason":"NotFound","code":404}"#;
        let err = decode(StatusCode::NOT_FOUND, body).unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "applications \"x\" not found");
        let err = decode(StatusCode::BAD_GATEWAY, b"oops").unwrap_err();
        assert_eq!(err.to_string(), "the server answered 502 Bad Gateway: oops");
    }

    /// A server that drops the first `drops` connections after reading their request,
    /// then answers `{}` to every request; returns its URL and a count of connections.
    async fn flaky_server(drops: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                if n >= drops {
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
                    let _ = conn.write_all(answer.as_bytes()).await;
                }
            }
        });
        (url, seen)
    }

    fn client(server: String) -> Client {
        Client::new(&Resolved {
            server,
            token: String::new(),
            namespace: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_get_whose_connection_broke_is_retried() {
        let (url, seen) = flaky_server(2).await;
        let app = berth_crds::lookup("app").unwrap();
        let got = client(url).get(app, Some("p-production"), "web").await.unwrap();
        assert_eq!(got, serde_json::json!({}));
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_write_whose_connection_broke_is_not_retried_and_says_why() {
        let (url, seen) = flaky_server(1).await;
        let app = berth_crds::lookup("app").unwrap();
        let err = client(url)
            .create(app, Some("p-production"), &serde_json::json!({}), false)
            .await
            .unwrap_err();
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The cause, not only reqwest's "error sending request".
        let message = err.to_string();
        assert!(
            message.contains("error sending request") && message.matches(": ").count() >= 2,
            "{message}"
        );
    }
}
