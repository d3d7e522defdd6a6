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

/// Deleting a Destination whose Application has a domain: the proxy lets go of the
/// Destination's network as soon as the Destination is being deleted (its Application still
/// running), and once the Application is gone too the Destination's finalizer removes the
/// network and the Destination goes away (the proxy used to stay attached for ever).
#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_routed_destination_detaches_the_proxy_and_removes_the_network() {
    let run = TestRun::start().await;
    let Proxied {
        server,
        http_port,
        ns,
    } = Proxied::start(&run).await;
    let httpd = images::busybox_httpd(&run.docker).await;
    let (dest, network) = (format!("d{}", run.id), run.name("dst"));
    let host = format!("dst-{}.test", run.id);
    let yaml = format!(
        "apiVersion: berth.dev/v1\nkind: Destination\nmetadata:\n  name: {dest}\nspec:\n  server: localhost\n  \
         network: {network}\n\
         ---\napiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: web\n  namespace: {ns}\n\
         spec:\n  source:\n    image: {httpd}\n  destination: {dest}\n  ports:\n  - containerPort: 8080\n  \
         env:\n  - name: MESSAGE\n    value: routed\n  \
         domains:\n  - host: {host}\n    https: false\n"
    );
    server.run_stdin(&["apply", "-f", "-"], &yaml).ok();
    server
        .run(&[
            "wait",
            "app/web",
            "-n",
            &ns,
            "--for=condition=Ready",
            "--timeout=60s",
        ])
        .ok();
    let http = plain_client();
    assert_eq!(
        get(&http, http_port, &host).await,
        Ok((200, "routed".to_owned())),
        "served through the proxy\nserver log:\n{}",
        server.log_tail()
    );
    let proxy = format!("berth-proxy-px{}", run.id);
    let attached = || async {
        let state = run.docker.inspect_container(&proxy).await.unwrap();
        state.ips.contains_key(&network)
    };
    assert!(attached().await, "the proxy is on the destination's network");

    // The Destination goes first: its Application still runs, but needs the proxy no more.
    server.run(&["delete", "destination", &dest]).ok();
    let deadline = Instant::now() + DEADLINE;
    while attached().await {
        assert!(
            Instant::now() < deadline,
            "the proxy never left {network}\nserver log:\n{}",
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Then the Application: with no container left on it, the network is removed and the
    // Destination goes away.
    server.run(&["delete", "app", "web", "-n", &ns]).ok();
    let waited = server.run(&[
        "wait",
        &format!("destination/{dest}"),
        "--for=delete",
        "--timeout=60s",
    ]);
    assert!(
        waited.status.success(),
        "the destination was not deleted: {}\nserver log:\n{}",
        waited.err(),
        server.log_tail()
    );
    let gone = run.docker.inspect_network(&network).await;
    assert!(
        gone.as_ref().is_err_and(|e| e.is_not_found()),
        "network removed with its destination: {gone:?}"
    );
    drop(server);
}
