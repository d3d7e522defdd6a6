//! A private, throw-away etcd server per test: Debian's `etcd` on free loopback ports.
//!
//! # Guarantees
//! - Every [`start`] runs its own single-member cluster in its own temporary directory, so
//!   tests are hermetic and can run in parallel.
//! - [`start`] returns only once the server answers client requests.
//! - Dropping the [`EtcdServer`] kills the process and removes its directory, also when the
//!   test fails or panics.
//!
//! # Caveats
//! - Free ports are found by binding port 0 and releasing it, so another process can take
//!   one before etcd binds it; [`start`] then retries with new ports.
//! - A test process killed outright (SIGKILL) leaves its etcd running.

use std::{
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// How long a fresh or restarted etcd may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// How many times [`start`] picks new ports after losing a race for them.
const PORT_ATTEMPTS: usize = 5;

/// A running etcd owned by one test.
pub struct EtcdServer {
    child: Option<Child>,
    binary: PathBuf,
    name: String,
    client_port: u16,
    peer_port: u16,
    // Declared last: dropped after the process is gone.
    dir: TempDir,
}

/// Starts a fresh single-member etcd cluster and waits until it answers.
///
/// Panics with instructions when Debian's `etcd` binary is not installed.
pub async fn start() -> EtcdServer {
    let binary = find_binary();
    let dir = tempfile::Builder::new()
        .prefix("berth-etcd-")
        .tempdir()
        .expect("temp dir for etcd");
    let name = format!("berth-test-{}", uuid::Uuid::new_v4().simple());
    let mut server = EtcdServer {
        child: None,
        binary,
        name,
        client_port: 0,
        peer_port: 0,
        dir,
    };
    let mut last_failure = String::new();
    for _ in 0..PORT_ATTEMPTS {
        (server.client_port, server.peer_port) = free_ports();
        match server.launch(true).await {
            Ok(()) => return server,
            Err(failure) if failure.contains("address already in use") => {
                last_failure = failure;
                // A member half-initialised with the lost ports must not be reused.
                let _ = std::fs::remove_dir_all(server.dir.path().join("data"));
            }
            Err(failure) => panic!("{failure}"),
        }
    }
    panic!("etcd lost the race for free ports {PORT_ATTEMPTS} times: {last_failure}");
}

impl EtcdServer {
    /// The client URLs to connect to.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.client_url()]
    }

    /// The base URL of the client (and metrics) listener.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills etcd with SIGKILL, as a crash would, and reaps it. Its data directory stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only when it already exited, which is just as good.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills etcd if it runs and starts it again on the same ports and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        if let Err(failure) = self.launch(false).await {
            panic!("{failure}");
        }
    }

    /// The last lines etcd wrote to its log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Spawns etcd and waits until it answers; on failure returns a report with its log tail.
    async fn launch(&mut self, new_cluster: bool) -> Result<(), String> {
        // A new cluster starts a new log; a restart appends to it.
        let log = File::options()
            .create(true)
            .write(true)
            .append(!new_cluster)
            .truncate(new_cluster)
            .open(self.log_path())
            .map_err(|e| format!("cannot create etcd's log file: {e}"))?;
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let client_url = self.client_url();
        let mut command = Command::new(&self.binary);
        command
            .arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .arg("--initial-cluster")
            .arg(format!("{}={peer_url}", self.name))
            .args(["--initial-cluster-token", &self.name])
            .args([
                "--initial-cluster-state",
                if new_cluster { "new" } else { "existing" },
            ])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Polls etcd with a client request until it answers, it exits, or the deadline passes.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let options = etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_millis(500));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "etcd exited during start-up ({status}); its log ends with:\n{}",
                    self.log_tail()
                ));
            }
            let probe = async {
                let mut client =
                    etcd_client::Client::connect(self.endpoints(), Some(options.clone())).await?;
                client.get("probe", None).await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), probe).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "etcd did not answer within {READY_TIMEOUT:?}; its log ends with:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two distinct ports that were free a moment ago.
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    (port(&a), port(&b))
}

fn port(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .expect("local address of a bound socket")
        .port()
}

/// Debian's `etcd` on PATH, or a panic telling how to get it.
fn find_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| {
            panic!(
                "the `etcd` binary is not on PATH: run `make test` (which installs it) or \
                 `apt-get install etcd-server`"
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
