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

use std::time::{Duration, Instant};

use common::{
    docker_run::TestRun,
    images,
    server::OutputExt,
    traffic::{Load, Proxied, app_containers, get, plain_client},
};

/// Upper bound for anything this test waits on.
const DEADLINE: Duration = Duration::from_secs(60);

/// Requests that must be answered during the rollout for the count to mean anything.
const MIN_REQUESTS: usize = 500;

#[tokio::test(flavor = "multi_thread")]
async fn rolling_update_through_the_proxy_drops_no_request() {
    let run = TestRun::start().await;
    let Proxied {
        server,
        http_port,
        ns,
    } = Proxied::start(&run).await;
    let httpd = images::busybox_httpd(&run.docker).await;
    let host = format!("app-{}.test", run.id);
    let apply = |yaml: &str| server.run_stdin(&["apply", "-f", "-"], yaml).ok();
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
    let containers = || app_containers(&run, &ns, "web");

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
    let load = Load::start(http_port, &host, "v1", "v2");
    let t1 = Instant::now();
    apply(&app("v2"));
    let deadline = Instant::now() + DEADLINE;
    let rolled_after = loop {
        let now = containers().await;
        let rolled = now.len() == 1 && now[0].name != before[0].name;
        let done = {
            let t = load.seen();
            rolled && t.answered >= MIN_REQUESTS && t.last_is_new
        };
        if done {
            break t1.elapsed();
        }
        if Instant::now() >= deadline {
            let t = load.seen();
            panic!(
                "the rollout did not finish under load: containers {now:?}, {} answered, last v2: {}, \
                 failures {:?}\nserver log:\n{}",
                t.answered,
                t.last_is_new,
                &t.failed[..t.failed.len().min(10)],
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    {
        let t = load.stop().await;
        let first_v2 = t.first_new.map(|at| at - t1);
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
