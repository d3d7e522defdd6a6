//! Requests through the proxy during a rollout: a berth server with a Traefik Proxy on free
//! loopback ports ([`Proxied`]), and a client loop that counts every answer that is not `200`
//! with the old or the new version, noting when the new one first answers ([`Load`]).
//!
//! # Guarantees
//! - Every request is counted: [`Load::stop`] returns the failures with their request
//!   number and what came back (status and body, or the transport error).
//! - The server labels what it creates with the run's label, so the run's cleanup removes it.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use berth_controllers::docker::{ContainerSummary, Labels, label};

use super::{
    docker_run::TestRun,
    images,
    server::{Backend, BerthServer, OutputExt},
};

/// A berth server whose `localhost` Server has a Proxy, and a Project to deploy into.
pub struct Proxied {
    /// The server (default network: the run's `net`, `--app-min-ready 1s`).
    pub server: BerthServer,
    /// The proxy's HTTP port on 127.0.0.1.
    pub http_port: u16,
    /// The Project's production namespace.
    pub ns: String,
}

impl Proxied {
    /// Starts the server on a network of the run, then applies the Proxy (named after the
    /// run: its container `berth-proxy-<name>` is unique on the shared daemon) and a Project.
    pub async fn start(run: &TestRun) -> Proxied {
        let server = run_server(run, &[]).await;
        let traefik = images::traefik(&run.docker).await;
        let (http_port, https_port) = (free_port(), free_port());
        let project = format!("p{}", run.id);
        let yaml = format!(
            "apiVersion: berth.dev/v1\nkind: Proxy\nmetadata:\n  name: px{id}\nspec:\n  server: localhost\n  \
             image: {traefik}\n  httpPort: {http_port}\n  httpsPort: {https_port}\n  listenAddress: 127.0.0.1\n\
             ---\napiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: {project}\nspec: {{}}\n",
            id = run.id
        );
        server.run_stdin(&["apply", "-f", "-"], &yaml).ok();
        Proxied {
            server,
            http_port,
            ns: format!("{project}-production"),
        }
    }
}

/// A berth server labelling what it creates with the run's label, on a network of the run
/// as its default network, with `--app-min-ready 1s` and `extra` arguments.
pub async fn run_server(run: &TestRun, extra: &[&str]) -> BerthServer {
    let network = run.name("net");
    // Created with the run's labels so the run's cleanup removes it; berth adopts it.
    run.docker.ensure_network(&network, &run.labels()).await.unwrap();
    let run_label = format!("{}={}", label::RUN, run.id);
    let mut args = vec![
        "--docker-label",
        &run_label,
        "--default-network",
        &network,
        "--app-min-ready",
        "1s",
    ];
    args.extend_from_slice(extra);
    BerthServer::start(Backend::Embedded, &args)
}

/// The containers of application `name` in `ns` created for `run`.
pub async fn app_containers(run: &TestRun, ns: &str, name: &str) -> Vec<ContainerSummary> {
    let selector = Labels::from([
        (label::RUN.to_string(), run.id.clone()),
        (label::NAME.to_string(), name.to_string()),
        (label::NAMESPACE.to_string(), ns.to_string()),
    ]);
    run.docker.list_containers(&selector).await.unwrap()
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client that does not follow redirects.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// GET `http://127.0.0.1:<port>/` with `Host: <host>`: status and trimmed body, or the
/// transport error.
pub async fn get(http: &reqwest::Client, port: u16, host: &str) -> Result<(u16, String), String> {
    let response = http
        .get(format!("http://127.0.0.1:{port}/"))
        .header("Host", host)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok((code, body.trim().to_owned()))
}

/// What the client saw.
#[derive(Debug, Default, Clone)]
pub struct Traffic {
    /// Requests answered (or failed).
    pub answered: usize,
    /// Every request not answered `200` with the old or the new version.
    pub failed: Vec<String>,
    /// When the new version first answered.
    pub first_new: Option<Instant>,
    /// Whether the last answer was the new version.
    pub last_is_new: bool,
}

/// A client loop running until [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    traffic: Arc<Mutex<Traffic>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Starts sending requests for `host` to `port`, one after the other, expecting `old`
    /// or `new` as the body.
    pub fn start(port: u16, host: &str, old: &str, new: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let (host, old, new) = (host.to_string(), old.to_string(), new.to_string());
        let task = tokio::spawn({
            let (stop, traffic) = (stop.clone(), traffic.clone());
            async move {
                let http = plain_client();
                while !stop.load(Ordering::Relaxed) {
                    let answer = get(&http, port, &host).await;
                    let mut t = traffic.lock().unwrap();
                    t.answered += 1;
                    match answer {
                        Ok((200, body)) if body == old || body == new => {
                            t.last_is_new = body == new;
                            if t.last_is_new && t.first_new.is_none() {
                                t.first_new = Some(Instant::now());
                            }
                        }
                        other => {
                            let n = t.answered;
                            t.failed.push(format!("request {n}: {other:?}"));
                        }
                    }
                }
            }
        });
        Load { stop, traffic, task }
    }

    /// What was seen so far.
    pub fn seen(&self) -> Traffic {
        self.traffic.lock().unwrap().clone()
    }

    /// Stops the loop and returns everything seen.
    pub async fn stop(self) -> Traffic {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        self.traffic.lock().unwrap().clone()
    }
}
