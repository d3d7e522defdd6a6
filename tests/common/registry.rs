//! A private image registry per test: Debian's `docker-registry` (the CNCF distribution
//! registry) on a free loopback port, so image pulls are exercised for real.
//!
//! # Guarantees
//! - [`Registry::start`] returns once `/v2/` answers; each registry keeps its blobs in its
//!   own temporary directory.
//! - Dropping the [`Registry`] kills the process and removes the directory, also on panic.
//!
//! # Caveats
//! - The Docker daemon treats `127.0.0.0/8` registries as insecure (plain HTTP) by default;
//!   this relies on it.
//! - The free port is found by binding port 0 and releasing it; a lost race fails `start`.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// A running registry owned by one test.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, the prefix of image references in this registry.
    pub host: String,
    // Dropped after the process is gone.
    _dir: TempDir,
}

impl Registry {
    /// Starts a registry and waits until it answers.
    pub fn start() -> Registry {
        let binary = "/usr/bin/docker-registry";
        assert!(
            std::path::Path::new(binary).exists(),
            "{binary} is missing: run `make deps` (Debian package docker-registry)"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            host,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !registry.answers() {
            assert!(
                Instant::now() < deadline,
                "registry on {} did not start",
                registry.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn answers(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &format!("http://{}/v2/", self.host)])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
