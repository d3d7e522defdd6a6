//! The bench's slice of the Docker daemon: one run label on everything it creates, the test
//! image, the baselines' network, and the guard that removes it all.
//!
//! # Guarantees
//! - Every container, network and volume the bench (or a berth it starts, through
//!   `--docker-label`) creates carries `dev.berth.run=<run id>`.
//! - Dropping the [`Cleanup`] removes all of them, also when the bench panics or is
//!   interrupted (Ctrl-C is turned into an early return by `main`).
//!
//! # Caveats
//! - A bench killed with SIGKILL leaves its objects behind; `docker ps -aq --filter
//!   label=dev.berth.run=<id>` finds them (the id is printed at start).

use berth_controllers::docker::{Docker, Labels, label};
use futures::StreamExt;

/// Removals in flight at once while cleaning up (the daemon serializes much of the work).
const REMOVE_CONCURRENCY: usize = 8;

/// What every part of the bench shares.
#[derive(Clone)]
pub struct Bench {
    /// The run id (label value, name suffix).
    pub id: String,
    /// A connected adapter.
    pub docker: Docker,
    /// The busybox httpd test image.
    pub image: String,
    /// The network the raw-API and compose baselines attach to.
    pub raw_net: String,
    /// The network berth's default Destination uses.
    pub berth_net: String,
}

impl Bench {
    /// Connects, builds (or finds) the image, creates the baselines' network.
    pub async fn start() -> (Bench, Cleanup) {
        let docker = Docker::connect(berth_controllers::docker::DEFAULT_URI)
            .await
            .expect("connect to the local docker daemon");
        let id = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let cleanup = Cleanup {
            docker: docker.clone(),
            labels: run_labels(&id),
        };
        let image = crate::images::busybox_httpd(&docker).await;
        let raw_net = format!("bench-{id}-raw");
        docker
            .ensure_network(&raw_net, &run_labels(&id))
            .await
            .expect("create the baselines' network");
        let bench = Bench {
            berth_net: format!("bench-{id}"),
            id,
            docker,
            image,
            raw_net,
        };
        (bench, cleanup)
    }

    /// The run label alone.
    pub fn labels(&self) -> Labels {
        run_labels(&self.id)
    }

    /// The `--docker-label` argument that scopes a berth server to this run.
    pub fn scope_arg(&self) -> String {
        format!("{}={}", label::RUN, self.id)
    }

    /// Removes every container of this run carrying all of `extra` too, `REMOVE_CONCURRENCY`
    /// at a time; returns how many.
    pub async fn remove_containers(&self, extra: &Labels) -> usize {
        let mut selector = self.labels();
        selector.extend(extra.clone());
        remove_containers(&self.docker, &selector).await
    }
}

fn run_labels(id: &str) -> Labels {
    Labels::from([(label::RUN.to_string(), id.to_string())])
}

async fn remove_containers(docker: &Docker, selector: &Labels) -> usize {
    let list = match docker.list_containers(selector).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cleanup: cannot list containers: {e}");
            return 0;
        }
    };
    let n = list.len();
    futures::stream::iter(list)
        .for_each_concurrent(REMOVE_CONCURRENCY, |c| async move {
            if let Err(e) = docker.remove_container(&c.id).await
                && !e.is_not_found()
            {
                eprintln!("cleanup: container {}: {e}", c.name);
            }
        })
        .await;
    n
}

/// Removes everything labelled with the run when dropped.
pub struct Cleanup {
    docker: Docker,
    labels: Labels,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (docker, labels) = (self.docker.clone(), self.labels.clone());
        // Drop cannot await and may run on a runtime thread: clean up on a thread with its
        // own runtime, and wait for it.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async move {
                let n = remove_containers(&docker, &labels).await;
                let mut nets = 0;
                for net in docker.list_networks(&labels).await.unwrap_or_default() {
                    // Endpoints of removed containers can linger (seen after a compose run
                    // was killed): force them off, then remove, retrying for a moment.
                    if let Ok(info) = docker.inspect_network(&net.id).await {
                        for endpoint in info.containers.values() {
                            if let Err(e) = docker.disconnect_network(&net.id, endpoint).await {
                                eprintln!("cleanup: disconnect {endpoint} from {}: {e}", net.name);
                            }
                        }
                    }
                    for attempt in 1..=10 {
                        match docker.remove_network(&net.id).await {
                            Ok(()) => nets += 1,
                            Err(_) if attempt < 10 => {
                                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                                continue;
                            }
                            Err(e) => eprintln!("cleanup: network {}: {e}", net.name),
                        }
                        break;
                    }
                }
                for v in docker.list_volumes(&labels).await.unwrap_or_default() {
                    if let Err(e) = docker.remove_volume(&v.name).await {
                        eprintln!("cleanup: volume {}: {e}", v.name);
                    }
                }
                eprintln!("cleanup: removed {n} containers and {nets} networks");
            });
        });
        if done.join().is_err() {
            eprintln!(
                "cleanup panicked; remove what is left with label {:?}",
                self.labels
            );
        }
    }
}
