//! One test's slice of the Docker daemon: unique names and a run label on everything
//! it creates, all removed when the test ends.
//!
//! # Guarantees
//! - Names from [`TestRun::name`] are unique across tests and processes.
//! - Dropping the [`TestRun`] removes every container, network, volume and image carrying
//!   its run label (images berth built for the run's applications), also when the test
//!   fails or panics.
//!
//! # Caveats
//! - A test process killed outright (SIGKILL) leaves its objects behind; they carry
//!   `dev.berth.run` and can be removed by that label.

use berth_controllers::docker::{Docker, Labels, label};

/// A test's run id, labels and cleanup.
pub struct TestRun {
    /// Unique id of this run.
    pub id: String,
    /// A connected adapter.
    pub docker: Docker,
}

impl TestRun {
    /// Connects to the local daemon and opens a run.
    pub async fn start() -> TestRun {
        let docker = Docker::connect(berth_controllers::docker::DEFAULT_URI)
            .await
            .expect("connect to the local docker daemon");
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        TestRun { id, docker }
    }

    /// `berth-test-<prefix>-<run id>`.
    pub fn name(&self, prefix: &str) -> String {
        format!("berth-test-{prefix}-{}", self.id)
    }

    /// The run label, plus `dev.berth.managed=true` so the adapter's event stream
    /// (filtered on it) sees the run's containers.
    pub fn labels(&self) -> Labels {
        Labels::from([
            (label::RUN.to_string(), self.id.clone()),
            (label::MANAGED.to_string(), "true".to_string()),
        ])
    }
}

impl Drop for TestRun {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let labels = self.labels();
        // Drop cannot await, and may run on a runtime thread: clean up on a thread
        // with its own runtime and wait for it.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async move {
                for c in docker.list_containers(&labels).await.unwrap_or_default() {
                    if let Err(e) = docker.remove_container(&c.id).await {
                        eprintln!("cleanup: container {}: {e}", c.name);
                    }
                }
                for n in docker.list_networks(&labels).await.unwrap_or_default() {
                    if let Err(e) = docker.remove_network(&n.id).await {
                        eprintln!("cleanup: network {}: {e}", n.name);
                    }
                }
                for v in docker.list_volumes(&labels).await.unwrap_or_default() {
                    if let Err(e) = docker.remove_volume(&v.name).await {
                        eprintln!("cleanup: volume {}: {e}", v.name);
                    }
                }
                for i in docker.list_images(&labels).await.unwrap_or_default() {
                    let refs = if i.repo_tags.is_empty() {
                        vec![i.id.clone()]
                    } else {
                        i.repo_tags
                    };
                    for r in refs {
                        if let Err(e) = docker.remove_image(&r).await
                            && !e.is_not_found()
                        {
                            eprintln!("cleanup: image {r}: {e}");
                        }
                    }
                }
            });
        });
        if cleanup.join().is_err() {
            eprintln!("cleanup of docker run {} panicked", self.id);
        }
    }
}
