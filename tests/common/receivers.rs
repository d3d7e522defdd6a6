//! Real receivers for the notification channels' tests: a recording HTTP server that answers
//! as told, aiosmtpd as the SMTP server, and the Standard Webhooks reference verifier.
//!
//! # Guarantees
//! - Every receiver listens on a port the OS picked on 127.0.0.1 (no free-port race), and
//!   is ready when its `start` returns: the HTTP listener is bound before it returns, the
//!   SMTP sink prints its port only once it accepts connections.
//! - A request is recorded before it is answered, and a mail is written before the SMTP
//!   server answers 250: once the sender's call returns, the receiver has it (no waiting).
//! - Dropping a receiver stops it (the SMTP process is killed, also on panic).
//!
//! # Caveats
//! - The Python tools come from `target/test-deps/python/` (`scripts/install-test-deps.sh`);
//!   a missing one panics with that instruction.

use std::{
    collections::VecDeque,
    convert::Infallible,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One request as the HTTP receiver saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// An answer the HTTP receiver gives once.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    replies: VecDeque<Reply>,
}

/// A recording HTTP/1.1 server: answers queued [`Reply`]s in order, then `200 ok`.
pub struct HttpReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpReceiver {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an answer for the next unanswered request.
    pub fn reply(&self, reply: Reply) {
        self.state.lock().unwrap().replies.push_back(reply);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The only request so far.
    pub fn single(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(all.len(), 1, "expected one request, got {all:#?}");
        all.into_iter().next().unwrap()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let reply = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method,
            path,
            headers,
            body,
        });
        s.replies.pop_front().unwrap_or_else(|| Reply::new(200, "ok"))
    };
    let mut response = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        response = response.header(k, v);
    }
    Ok(response.body(Full::new(Bytes::from(reply.body))).unwrap())
}

/// `target/test-deps/python`, where the PyPI test tools are installed.
pub fn python_path() -> PathBuf {
    let dir = super::images::deps_dir().join("python");
    assert!(
        dir.join("aiosmtpd").exists() && dir.join("standardwebhooks").exists(),
        "{} lacks aiosmtpd/standardwebhooks: run scripts/install-test-deps.sh",
        dir.display()
    );
    dir
}

fn support(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

/// aiosmtpd on a loopback port (`tests/support/smtp_sink.py`), recording mails and commands.
pub struct SmtpSink {
    port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpSink {
    /// Starts the sink; with `auth`, AUTH is offered over plain SMTP and required.
    pub async fn start(auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::Builder::new().prefix("berth-smtp-").tempdir().unwrap();
        let mut cmd = tokio::process::Command::new("python3");
        cmd.arg(support("smtp_sink.py"))
            .arg(dir.path())
            .env("PYTHONPATH", python_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some((user, password)) = auth {
            cmd.arg(user).arg(password);
        }
        let mut child = cmd.spawn().expect("spawn python3 smtp_sink.py");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(READY_TIMEOUT, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("smtp sink ready in time")
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtp sink printed {line:?}, not its port"));
        Self {
            port,
            dir,
            _child: child,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every mail received, oldest first.
    pub fn mails(&self) -> Vec<Value> {
        let mut mails: Vec<(u64, Value)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let n = name.strip_prefix("mail-")?.strip_suffix(".json")?.parse().ok()?;
                let text = std::fs::read_to_string(self.dir.path().join(&name)).ok()?;
                Some((n, serde_json::from_str(&text).ok()?))
            })
            .collect();
        mails.sort_by_key(|(n, _)| *n);
        mails.into_iter().map(|(_, m)| m).collect()
    }

    /// The command lines the server read, one per line (`... >> b'EHLO localhost'`).
    pub fn commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("smtp.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(" >> ").map(|(_, c)| c.to_owned()))
            .collect()
    }
}

/// Verifies a captured request with the Standard Webhooks reference library (PyPI
/// `standardwebhooks`): `Ok` with the verified payload, or the library's error.
pub async fn verify_standard_webhook(secret: &str, request: &Recorded) -> Result<Value, String> {
    let headers: serde_json::Map<String, Value> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let input = serde_json::json!({
        "secret": secret,
        "headers": headers,
        "body": String::from_utf8_lossy(&request.body),
    });
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        i = json.load(sys.stdin)\n\
        try:\n    print(json.dumps(Webhook(i['secret']).verify(i['body'], i['headers'])))\n\
        except Exception as e:\n    print(type(e).__name__ + ': ' + str(e), file=sys.stderr); sys.exit(1)\n";
    let mut child = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", python_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn python3");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(READY_TIMEOUT, child.wait_with_output())
        .await
        .expect("verifier finished in time")
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}
