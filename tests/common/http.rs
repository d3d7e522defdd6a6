//! A small typed HTTP client for end-to-end tests of the API server, and condition waits.
//!
//! Every call returns the status code and the JSON body (a `Status` object on errors), so a
//! test asserts both in one line. Watches are read line by line with a deadline per event.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The API group prefix.
pub const API: &str = "/apis/berth.dev/v1";

/// How long a test waits for one expected watch event or condition.
pub const WAIT: Duration = Duration::from_secs(15);

/// Path of a collection: `namespaced` when `ns` is given.
pub fn collection(ns: Option<&str>, plural: &str) -> String {
    match ns {
        Some(ns) => format!("{API}/namespaces/{ns}/{plural}"),
        None => format!("{API}/{plural}"),
    }
}

/// Path of one object.
pub fn object(ns: Option<&str>, plural: &str, name: &str) -> String {
    format!("{}/{name}", collection(ns, plural))
}

/// A client of one server with one (or no) bearer token.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` authenticating with `token`.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_owned),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The same server with another token.
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self::new(&self.base, token)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    /// Sends a raw body with a content type; returns the code and the body as JSON
    /// (`Value::String` when it is not JSON, `Null` when empty).
    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>, content_type: &str) -> (u16, Value) {
        self.try_raw(method, path, body, content_type)
            .await
            .unwrap_or_else(|e| panic!("{path}: {}", causes(&e)))
    }

    /// Like [`Client::raw`], but a connection failure is an error instead of a panic.
    pub async fn try_raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self.request(method, path);
        if !body.is_empty() {
            req = req.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        let resp = req.send().await?;
        let code = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((code, parse(&bytes)))
    }

    /// GET.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.raw(Method::GET, path, Vec::new(), "").await
    }

    /// GET a collection and return the names of its items (asserting 200).
    pub async fn names(&self, path: &str) -> Vec<String> {
        let (code, list) = self.get(path).await;
        assert_eq!(code, 200, "list {path}: {list}");
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.raw(Method::POST, path, json_bytes(body), "application/json")
            .await
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.raw(Method::PUT, path, json_bytes(body), "application/json")
            .await
    }

    /// PATCH with a JSON merge patch.
    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.raw(
            Method::PATCH,
            path,
            json_bytes(body),
            "application/merge-patch+json",
        )
        .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.raw(Method::DELETE, path, Vec::new(), "").await
    }

    /// Creates an object, asserting 201; returns it.
    pub async fn create(&self, path: &str, body: &Value) -> Value {
        let (code, obj) = self.post(path, body).await;
        assert_eq!(code, 201, "create at {path}: {obj}");
        obj
    }

    /// Opens a watch (`query` is appended after `?watch=true&`), asserting 200.
    pub async fn watch(&self, path: &str, query: &str) -> Watch {
        let sep = if query.is_empty() { "" } else { "&" };
        let resp = self
            .http
            .get(format!("{}{path}?watch=true{sep}{query}", self.base))
            .bearer_auth(self.token.clone().unwrap_or_default())
            // A watch lives longer than the client's default request timeout.
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "watch {path}?{query}");
        Watch {
            stream: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
        }
    }
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn parse(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
}

type ByteStream = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open watch response, read one event (line) at a time.
pub struct Watch {
    stream: ByteStream,
    buf: Vec<u8>,
}

/// What reading a watch gave.
#[derive(Debug)]
pub enum Next {
    /// One event.
    Event(Value),
    /// The server ended the response.
    Closed,
    /// Nothing arrived before the deadline.
    TimedOut,
}

impl Watch {
    /// The next event (bookmarks included), the end of the stream, or a timeout.
    pub async fn next_within(&mut self, timeout: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Next::Event(serde_json::from_slice(&line).unwrap());
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Next::TimedOut,
                Ok(None) => return Next::Closed,
                // A stream broken by the server ending it counts as closed.
                Ok(Some(Err(_))) => return Next::Closed,
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
            }
        }
    }

    /// The next event that is not a bookmark; panics on close or after [`WAIT`].
    pub async fn next(&mut self) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left).await {
                Next::Event(ev) if ev["type"] == "BOOKMARK" => continue,
                Next::Event(ev) => return ev,
                other => panic!("expected a watch event, got {other:?}"),
            }
        }
    }

    /// The next non-bookmark event as (type, name).
    pub async fn next_kind_name(&mut self) -> (String, String) {
        let ev = self.next().await;
        (
            ev["type"].as_str().unwrap().to_string(),
            ev["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// Asserts that no non-bookmark event arrives within `quiet`.
    pub async fn assert_quiet(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Next::TimedOut => return,
                Next::Event(ev) if ev["type"] == "BOOKMARK" => continue,
                other => panic!("expected no event, got {other:?}"),
            }
        }
    }
}

/// Polls `probe` until it returns `Some`, or panics with `what` after [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// An error and each of its causes, `: `-separated (reqwest's own message names none).
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}
