//! A smart-HTTP Git server per test: `git http-backend` run as a CGI per request behind a
//! tiny threaded HTTP/1.1 server on a free loopback port, plus helpers to create bare
//! repositories and commit files to them.
//!
//! # Guarantees
//! - Each [`GitServer`] serves the bare repositories of its own temporary directory at
//!   `http://127.0.0.1:PORT/<name>.git`; dropping it stops accepting and removes the directory.
//! - With [`GitServer::start_with_basic_auth`] every request needs those credentials (401 and a
//!   `WWW-Authenticate` challenge otherwise), so credential handling can be tested.
//! - [`Repo::commit`] makes the branch's tree exactly the given files (a file left out is
//!   deleted) and returns the new commit SHA; it never touches the server's process.
//!
//! # Caveats
//! - One request per connection (`Connection: close`); request bodies are read whole
//!   (Content-Length or chunked) before the CGI runs.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use base64::Engine as _;
use tempfile::TempDir;

/// A running Git HTTP server owned by one test.
pub struct GitServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    root: PathBuf,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    addr: std::net::SocketAddr,
    _dir: TempDir,
}

impl GitServer {
    /// A server without authentication.
    pub fn start() -> GitServer {
        Self::start_inner(None)
    }

    /// A server that wants HTTP basic auth with these credentials on every request.
    pub fn start_with_basic_auth(username: &str, password: &str) -> GitServer {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Self::start_inner(Some(format!("Basic {encoded}")))
    }

    fn start_inner(authorization: Option<String>) -> GitServer {
        let dir = tempfile::Builder::new().prefix("berth-git-").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let backend = PathBuf::from(exec_path()).join("git-http-backend");
        assert!(backend.exists(), "{} is missing (install git)", backend.display());
        let (stop2, requests2, root2) = (stop.clone(), requests.clone(), root.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                requests2.fetch_add(1, Ordering::SeqCst);
                let (backend, root, auth) = (backend.clone(), root2.clone(), authorization.clone());
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, &backend, &root, auth.as_deref()) {
                        eprintln!("git http server: {e}");
                    }
                });
            }
        });
        GitServer {
            base: format!("http://{addr}"),
            root,
            stop,
            requests,
            addr,
            _dir: dir,
        }
    }

    /// A new empty bare repository `<name>.git` whose default branch is `main`.
    pub fn create_repo(&self, name: &str) -> Repo {
        let path = self.root.join(format!("{name}.git"));
        git(
            &["init", "--quiet", "--bare", "--initial-branch=main"],
            &[],
            Some(&path),
        );
        Repo {
            url: format!("{}/{name}.git", self.base),
            path,
        }
    }

    /// How many HTTP requests the server has accepted.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A bare repository served by a [`GitServer`].
pub struct Repo {
    /// Its clone URL.
    pub url: String,
    /// Its directory on disk.
    pub path: PathBuf,
}

impl Repo {
    /// Commits exactly `files` (path → contents, `/`-separated paths) as the tree of `branch`
    /// (created if missing) and returns the commit SHA.
    pub fn commit(&self, branch: &str, files: &[(&str, &str)]) -> String {
        let work = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let file = work.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, contents).unwrap();
        }
        let index = work.path().join(".berth-index");
        let env = [
            ("GIT_DIR", self.path.to_str().unwrap()),
            ("GIT_WORK_TREE", work.path().to_str().unwrap()),
            ("GIT_INDEX_FILE", index.to_str().unwrap()),
        ];
        git(&["add", "--all", "--", ".", ":!.berth-index"], &env, None);
        let tree = git(&["write-tree"], &env, None);
        let refname = format!("refs/heads/{branch}");
        let parent = Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", &refname])
            .envs(env)
            .output()
            .unwrap();
        let parent = String::from_utf8(parent.stdout).unwrap().trim().to_string();
        let mut args = vec!["commit-tree", tree.as_str(), "-m", "test commit"];
        if !parent.is_empty() {
            args.extend(["-p", parent.as_str()]);
        }
        let commit = git(&args, &env, None);
        git(&["update-ref", &refname, &commit], &env, None);
        commit
    }

    /// Tags `commit` as `name` (lightweight).
    pub fn tag(&self, name: &str, commit: &str) {
        let env = [("GIT_DIR", self.path.to_str().unwrap())];
        git(&["tag", "--force", name, commit], &env, None);
    }
}

/// Runs `git args` (with `dir` appended when given) and returns its trimmed stdout.
fn git(args: &[&str], env: &[(&str, &str)], dir: Option<&Path>) -> String {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .envs(env.iter().copied())
        .env("GIT_AUTHOR_NAME", "berth test")
        .env("GIT_AUTHOR_EMAIL", "test@berth.invalid")
        .env("GIT_COMMITTER_NAME", "berth test")
        .env("GIT_COMMITTER_EMAIL", "test@berth.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", "/nonexistent");
    if let Some(dir) = dir {
        cmd.arg(dir);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn exec_path() -> String {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git is on PATH");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Answers one request on `conn` by running the CGI.
fn serve(conn: TcpStream, backend: &Path, root: &Path, authorization: Option<&str>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(()); // the wake-up connection of Drop, or garbage
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let body = read_body(&mut reader, &headers)?;
    let mut out = conn;
    if let Some(expected) = authorization
        && headers.get("authorization").map(String::as_str) != Some(expected)
    {
        let msg = "authentication required\n";
        write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        )?;
        return out.flush();
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cmd = Command::new(backend);
    cmd.env_clear()
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("REQUEST_METHOD", &method)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ct) = headers.get("content-type") {
        cmd.env("CONTENT_TYPE", ct);
    }
    for (k, v) in &headers {
        if k != "content-type" && k != "content-length" && k != "authorization" {
            cmd.env(format!("HTTP_{}", k.to_ascii_uppercase().replace('-', "_")), v);
        }
    }
    if authorization.is_some() {
        cmd.env("REMOTE_USER", "test");
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output()?;
    let _ = writer.join();
    let (status, cgi_headers, cgi_body) = parse_cgi(&output.stdout);
    write!(out, "HTTP/1.1 {status}\r\n")?;
    for (k, v) in cgi_headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    write!(
        out,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        cgi_body.len()
    )?;
    out.write_all(cgi_body)?;
    out.flush()
}

fn read_body(reader: &mut impl BufRead, headers: &HashMap<String, String>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let mut chunk = vec![0; size + 2]; // data + CRLF
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

/// The status line, headers and body of a CGI response.
fn parse_cgi(stdout: &[u8]) -> (String, Vec<(String, String)>, &[u8]) {
    let (head, body) = match find(stdout, b"\r\n\r\n") {
        Some(i) => (&stdout[..i], &stdout[i + 4..]),
        None => match find(stdout, b"\n\n") {
            Some(i) => (&stdout[..i], &stdout[i + 2..]),
            None => (stdout, &stdout[stdout.len()..]),
        },
    };
    let mut status = "200 OK".to_string();
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("status") {
                status = v.trim().to_string();
            } else {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    (status, headers, body)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
