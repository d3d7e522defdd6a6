//! The Application controller through the Proxy controller end to end: `berth serve`
//! runs both against the real Docker daemon and the real Traefik v3 (local image); the
//! test only applies YAML with the CLI and sends requests through the proxy's published
//! loopback port.
//!
//! The [`TestRun`] (unique names, a run label that `berth serve` puts on every container
//! it creates through `--docker-label`) is declared before the server, so the server is
//! killed first and then everything with the run label is removed, also on panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use berth_controllers::docker::{Labels, label};
use common::{
    docker_run::TestRun,
    images,
    server::{Backend, BerthServer, OutputExt},
};

/// Upper bound for anything this test waits on.
const DEADLINE: Duration = Duration::from_secs(60);

/// Requests that must be answered during the rollout for the count to mean anything.
const MIN_REQUESTS: usize = 500;

/// A free loopback port (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client that does not follow redirects.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// GET `http://127.0.0.1:<port>/` with `Host: <host>`: status and trimmed body, or the
/// transport error.
async fn get(http: &reqwest::Client, port: u16, host: &str) -> Result<(u16, String), String> {
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

/// What the client saw while the rollout ran.
#[derive(Default)]
struct Traffic {
    answered: usize,
    failed: Vec<String>,
    first_v2: Option<Instant>,
    last_is_v2: bool,
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_update_through_the_proxy_drops_no_request() {
    let run = TestRun::start().await;
    let network = run.name("net");
    // Created with the run's labels so the run's cleanup removes it; berth adopts it.
    run.docker.ensure_network(&network, &run.labels()).await.unwrap();
    let server = BerthServer::start(
        Backend::Embedded,
        &[
            "--docker-label",
            &format!("{}={}", label::RUN, run.id),
            "--default-network",
            &network,
            "--app-min-ready",
            "1s",
        ],
    );
    let traefik = images::traefik(&run.docker).await;
    let httpd = images::busybox_httpd(&run.docker).await;
    let (http_port, https_port) = (free_port(), free_port());
    let project = format!("p{}", run.id);
    let ns = format!("{project}-production");
    let host = format!("app-{}.test", run.id);
    let apply = |yaml: &str| server.run_stdin(&["apply", "-f", "-"], yaml).ok();

    // The Proxy is named after the run (its container is `berth-proxy-<name>`, unique on
    // the shared daemon) and serves the `localhost` Server the default Destination is on.
    apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Proxy\nmetadata:\n  name: px{id}\nspec:\n  server: localhost\n  \
         image: {traefik}\n  httpPort: {http_port}\n  httpsPort: {https_port}\n  listenAddress: 127.0.0.1\n\
         ---\napiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: {project}\nspec: {{}}\n",
        id = run.id
    ));
    let app = |message: &str| {
        format!(
            "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: web\n  namespace: {ns}\n\
             spec:\n  source:\n    image: {httpd}\n  destination: default\n  ports:\n  - containerPort: 8080\n  \
             env:\n  - name: MESSAGE\n    value: {message}\n  \
             healthCheck:\n    http:\n      port: 8080\n    interval: 1s\n    timeout: 1s\n    retries: 1\n  \
             domains:\n  - host: {host}\n    https: false\n"
        )
    };
    let wait_ready = || {
        server
            .run(&[
                "wait",
                "app/web",
                "-n",
                &ns,
                "--for=condition=Ready",
                "--timeout=60s",
            ])
            .ok()
    };
    let containers = || async {
        let selector = Labels::from([
            (label::RUN.to_string(), run.id.clone()),
            (label::NAME.to_string(), "web".to_string()),
            (label::NAMESPACE.to_string(), ns.clone()),
        ]);
        run.docker.list_containers(&selector).await.unwrap()
    };

    // 1-2. First deploy: Ready, then served through the proxy.
    let t0 = Instant::now();
    apply(&app("v1"));
    wait_ready();
    let ready_after = t0.elapsed();
    let http = plain_client();
    // Ready means reachable: the first request after Ready is served through the proxy.
    match get(&http, http_port, &host).await {
        Ok((200, body)) => assert_eq!(body, "v1"),
        other => panic!(
            "{host} not served right after Ready: {other:?}\nserver log:\n{}",
            server.log_tail()
        ),
    }
    println!("apply v1 -> Ready (route live): {ready_after:?}");
    let before = containers().await;
    assert_eq!(before.len(), 1, "one container before the rollout: {before:?}");

    // 3. Rolling update under load: every request is answered 200 with v1 or v2.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = Arc::new(Mutex::new(Traffic::default()));
    let client = tokio::spawn({
        let (stop, traffic, host) = (stop.clone(), traffic.clone(), host.clone());
        async move {
            let http = plain_client();
            while !stop.load(Ordering::Relaxed) {
                let answer = get(&http, http_port, &host).await;
                let mut t = traffic.lock().unwrap();
                t.answered += 1;
                match answer {
                    Ok((200, body)) if body == "v1" || body == "v2" => {
                        t.last_is_v2 = body == "v2";
                        if t.last_is_v2 && t.first_v2.is_none() {
                            t.first_v2 = Some(Instant::now());
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
    let t1 = Instant::now();
    apply(&app("v2"));
    let deadline = Instant::now() + DEADLINE;
    let rolled_after = loop {
        let now = containers().await;
        let rolled = now.len() == 1 && now[0].name != before[0].name;
        let done = {
            let t = traffic.lock().unwrap();
            rolled && t.answered >= MIN_REQUESTS && t.last_is_v2
        };
        if done {
            break t1.elapsed();
        }
        if Instant::now() >= deadline {
            let t = traffic.lock().unwrap();
            panic!(
                "the rollout did not finish under load: containers {now:?}, {} answered, last v2: {}, \
                 failures {:?}\nserver log:\n{}",
                t.answered,
                t.last_is_v2,
                &t.failed[..t.failed.len().min(10)],
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();
    {
        let t = traffic.lock().unwrap();
        let first_v2 = t.first_v2.map(|at| at - t1);
        println!(
            "rollout under load: {} requests, {} failed; apply v2 -> first v2 answer: {first_v2:?}; \
             apply v2 -> only the new container left (and >= {MIN_REQUESTS} answered): {rolled_after:?}",
            t.answered,
            t.failed.len()
        );
        assert!(t.answered >= MIN_REQUESTS, "{} requests", t.answered);
        assert!(
            t.failed.is_empty(),
            "{} of {} requests failed during the rollout, first ones: {:#?}\nserver log:\n{}",
            t.failed.len(),
            t.answered,
            &t.failed[..t.failed.len().min(10)],
            server.log_tail()
        );
        assert!(first_v2.is_some(), "v2 was never served");
    }
    // The new version alone answers now.
    for _ in 0..5 {
        assert_eq!(get(&http, http_port, &host).await, Ok((200, "v2".to_owned())));
    }
    drop(server);
}
