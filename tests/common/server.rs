//! Starts real `berth serve` processes for end-to-end tests, and runs the real CLI.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

/// The store a test server runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded store in the server's temp dir.
    Embedded,
    /// etcd at these endpoints.
    Etcd(Vec<String>),
}

/// A running `berth serve`, killed on drop.
pub struct BerthServer {
    child: Option<Child>,
    /// The server's base URL.
    pub url: String,
    /// The admin token.
    pub token: String,
    /// The client config file the server wrote (and the CLI reads).
    pub config: PathBuf,
    backend: Backend,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    log_filter: String,
}

/// The berth binary under test.
pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

impl BerthServer {
    /// Starts a server on `backend` with extra `serve` arguments.
    pub fn start(backend: Backend, extra_args: &[&str]) -> Self {
        Self::start_with_log(backend, extra_args, "info,berth=debug")
    }

    /// Starts a server like [`BerthServer::start`], logging with `BERTH_LOG=log_filter`
    /// (benches log less than tests, so that logging does not weigh on their figures).
    pub fn start_with_log(backend: Backend, extra_args: &[&str], log_filter: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        let mut s = Self {
            child: None,
            url: String::new(),
            token: String::new(),
            config,
            backend,
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            log_filter: log_filter.to_string(),
        };
        s.spawn();
        s
    }

    /// The server process's peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("server is running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's scratch directory (data dir of the embedded store lives in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.config);
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let mut cmd = Command::new(berth_bin());
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0");
        match &self.backend {
            Backend::Embedded => {
                cmd.arg("--data-dir").arg(self.dir.path().join("data"));
            }
            Backend::Etcd(endpoints) => {
                cmd.arg("--etcd").arg(endpoints.join(","));
            }
        }
        cmd.args(&self.extra_args)
            .env("BERTH_CONFIG", &self.config)
            .env("BERTH_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("start berth serve"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "berth serve exited with {status} during start:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(Some(cfg)) = berth::config::read(&self.config)
                && ureq_ok(&format!("{}/readyz", cfg.server))
            {
                self.url = cfg.server;
                self.token = cfg.token;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "berth serve not ready in 30 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGKILL (no graceful shutdown) and starts it again on the same
    /// store.
    pub fn restart_hard(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops the server with SIGKILL and starts it again on the same store with other extra
    /// `serve` arguments (its URL changes: it listens on a new free port).
    pub fn restart_with(&mut self, extra_args: &[&str]) {
        self.kill();
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    /// Asks the server to stop (SIGTERM) and waits up to `within` for it to exit; returns its
    /// exit status. Start it again with [`BerthServer::restart_hard`].
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server is running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "berth serve did not exit within {within:?} of SIGTERM:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server process (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Polls `f` every 20 ms until it returns `Some`; after `timeout` panics naming `what`,
    /// with the server's log tail.
    pub fn until<T>(&self, what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
        self.until_every(what, timeout, Duration::from_millis(20), f)
    }

    /// [`BerthServer::until`], polling every `every` (slower for probes that run the CLI
    /// for minutes).
    pub fn until_every<T>(
        &self,
        what: &str,
        timeout: Duration,
        every: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.log_tail()
            );
            std::thread::sleep(every);
        }
    }

    /// A `berth` CLI command pointed at this server.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(berth_bin());
        cmd.env("BERTH_CONFIG", &self.config)
            .env_remove("BERTH_SERVER")
            .env_remove("BERTH_TOKEN")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the CLI with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cli().args(args).output().expect("run berth")
    }

    /// Runs the CLI with `args` and `stdin` as standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .cli()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run berth");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for BerthServer {
    fn drop(&mut self) {
        // A failing test shows whether the server was still alive, and what it logged last.
        if std::thread::panicking() {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            eprintln!(
                "berth serve at {} ({}); its last log lines:\n{}",
                self.url,
                exited.map_or("still running".to_string(), |s| format!("exited: {s}")),
                self.log_tail()
            );
        }
        self.kill();
    }
}

/// A plain GET that says whether the server answered 200 (used only while starting).
fn ureq_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let Ok(mut s) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

/// Output helpers.
pub trait OutputExt {
    /// stdout as a string.
    fn out(&self) -> String;
    /// stderr as a string.
    fn err(&self) -> String;
    /// Asserts success and returns stdout.
    fn ok(&self) -> String;
}

impl OutputExt for Output {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn ok(&self) -> String {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.out(),
            self.err()
        );
        self.out()
    }
}
