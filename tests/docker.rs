//! The Docker adapter against the real daemon, with locally built images.
//!
//! Each test opens its own [`TestRun`]: unique names, a run label on everything, and
//! cleanup on drop (also on panic), so tests run in parallel and leave nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_controllers::docker::{
    Action, BuildEvent, BuildOptions, ContainerSpec, Docker, Error, Event, Health, HealthCheck, LogOptions,
    NetworkAttachment, OutputStream, Owner, Probe, Result, label,
};
use common::docker_run::TestRun;
use common::images;
use futures::StreamExt;
use futures::stream::BoxStream;

/// Upper bound for anything a test waits on.
const DEADLINE: Duration = Duration::from_secs(60);

/// A container running busybox `sleep` as an idle target for exec and upload.
fn idle(run: &TestRun, prefix: &str, image: &str) -> ContainerSpec {
    ContainerSpec {
        name: run.name(prefix),
        image: image.to_string(),
        command: vec!["/bin/busybox".into(), "sleep".into(), "3600".into()],
        labels: run.labels(),
        stop_timeout_secs: Some(1),
        ..Default::default()
    }
}

/// Waits for the first event matching `pred`, failing after [`DEADLINE`].
async fn wait_for(
    events: &mut BoxStream<'static, Result<Event>>,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match events.next().await {
                Some(Ok(event)) if pred(&event) => return event,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("event stream failed while waiting for {what}: {e}"),
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test]
async fn info_reports_the_engine() {
    let run = TestRun::start().await;
    let info = run.docker.info().await.unwrap();
    assert!(!info.version.is_empty());
    assert!(!info.api_version.is_empty());
    assert!(info.cpus > 0 && info.memory_bytes > 0);
    assert!(info.docker_root_dir.starts_with('/'), "{info:?}");
    eprintln!("{info:?}");
}

#[tokio::test]
async fn connect_refuses_bad_uris_and_reports_absent_daemons() {
    for uri in ["http://x", "tcp://nohost", "unix://"] {
        assert!(
            matches!(Docker::connect(uri).await, Err(Error::InvalidUri { .. })),
            "{uri}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("unix://{}/none.sock", dir.path().display());
    let err = Docker::connect(&missing).await.unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn httpd_answers_a_peer_by_alias_and_becomes_healthy() {
    let run = TestRun::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let docker = run.docker.clone().with_call_counter({
        let calls = calls.clone();
        Arc::new(move |_op| {
            calls.fetch_add(1, Ordering::Relaxed);
        })
    });
    let image = images::busybox_httpd(&docker).await;
    let network = run.name("net");
    let net = docker.ensure_network(&network, &run.labels()).await.unwrap();
    let again = docker.ensure_network(&network, &run.labels()).await.unwrap();
    assert_eq!(net.id, again.id, "ensure_network is idempotent");

    let message = format!("hello from {}", run.id);
    let web = ContainerSpec {
        name: run.name("web"),
        image: image.clone(),
        env: BTreeMap::from([("MESSAGE".to_string(), message.clone())]),
        labels: run.labels(),
        network: Some(NetworkAttachment {
            name: network.clone(),
            aliases: vec!["web-alias".into()],
            ..Default::default()
        }),
        health_check: Some(HealthCheck {
            probe: Probe::Http {
                port: 8080,
                path: "/".into(),
            },
            interval_secs: 1,
            timeout_secs: 1,
            retries: 3,
            start_period_secs: 0,
        }),
        stop_timeout_secs: Some(1),
        ..Default::default()
    };
    let mut events = docker.events(None);
    let id = docker.create_container(&web).await.unwrap();
    docker.start_container(&web.name).await.unwrap();
    docker.start_container(&web.name).await.unwrap(); // already running: still Ok
    wait_for(&mut events, "web healthy", |e| {
        e.id == id && e.action == Action::HealthStatus(Health::Healthy)
    })
    .await;

    let state = docker.inspect_container(&web.name).await.unwrap();
    assert!(state.running);
    assert_eq!(state.health, Some(Health::Healthy));
    assert_eq!(state.exit_code, None);
    assert!(state.started_at.is_some());
    assert!(state.ips.contains_key(&network), "{state:?}");
    assert_eq!(state.labels.get(label::CONFIG_HASH), Some(&web.config_hash()));

    let mut client = idle(&run, "client", &image);
    client.network = web
        .network
        .clone()
        .map(|n| NetworkAttachment { aliases: vec![], ..n });
    docker.create_container(&client).await.unwrap();
    docker.start_container(&client.name).await.unwrap();
    let out = docker
        .exec(&client.name, &["wget", "-qO-", "http://web-alias:8080/"])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), message);

    let listed = docker.list_containers(&run.labels()).await.unwrap();
    assert_eq!(listed.len(), 2);
    let net = docker.inspect_network(&network).await.unwrap();
    assert_eq!(net.containers.len(), 2);

    // A changed env is a changed container.
    let mut changed = web.clone();
    changed.env.insert("MESSAGE".into(), "other".into());
    assert_ne!(changed.config_hash(), web.config_hash());
    assert_eq!(web.clone().config_hash(), web.config_hash());

    assert!(calls.load(Ordering::Relaxed) >= 10, "every call is counted");
    docker.stop_container(&web.name, Some(1)).await.unwrap();
    docker.stop_container(&web.name, Some(1)).await.unwrap(); // already stopped: still Ok
}

#[tokio::test]
async fn kill_yields_a_die_event_with_the_owners_labels() {
    let run = TestRun::start().await;
    let docker = &run.docker;
    let image = images::busybox_httpd(docker).await;
    let owner = Owner {
        kind: "Application".into(),
        namespace: "default".into(),
        name: run.name("app"),
        uid: run.id.clone(),
    };
    let mut spec = idle(&run, "victim", &image);
    spec.labels.extend(owner.labels());
    let id = docker.create_container(&spec).await.unwrap();
    docker.start_container(&spec.name).await.unwrap();

    let mut events = docker.events(None);
    docker.kill_container(&spec.name, "SIGKILL").await.unwrap();
    let die = wait_for(&mut events, "die", |e| {
        e.id == id && matches!(e.action, Action::Die { .. })
    })
    .await;
    assert_eq!(die.action, Action::Die { exit_code: Some(137) });
    assert_eq!(die.owner(), Some(owner));
    assert_eq!(die.attributes.get(label::RUN), Some(&run.id));
    assert_eq!(die.name.as_deref(), Some(spec.name.as_str()));

    let err = docker.kill_container(&spec.name, "SIGKILL").await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict { .. }),
        "kill of a stopped container: {err:?}"
    );
    let state = docker.inspect_container(&spec.name).await.unwrap();
    assert!(!state.running);
    assert_eq!(state.exit_code, Some(137));

    docker.remove_container(&spec.name).await.unwrap();
    wait_for(&mut events, "destroy", |e| {
        e.id == id && e.action == Action::Destroy
    })
    .await;
}

#[tokio::test]
async fn conflicts_and_missing_objects_are_typed() {
    let run = TestRun::start().await;
    let docker = &run.docker;
    let image = images::busybox_httpd(docker).await;
    let spec = idle(&run, "twice", &image);
    docker.create_container(&spec).await.unwrap();
    let err = docker.create_container(&spec).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");

    let missing = run.name("missing");
    for err in [
        docker.remove_container(&missing).await.unwrap_err(),
        docker.inspect_container(&missing).await.unwrap_err(),
        docker.remove_network(&missing).await.unwrap_err(),
        docker.remove_volume(&missing).await.unwrap_err(),
        docker
            .inspect_image(&format!("berth-test/{missing}:x"))
            .await
            .unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err:?}");
    }
}

#[tokio::test]
async fn pull_of_an_unknown_image_fails_cleanly() {
    let run = TestRun::start().await;
    // A registry on a closed loopback port: the pull fails without leaving this machine.
    let reference = format!("127.0.0.1:9/berth-test/{}:nope", run.name("absent"));
    let items: Vec<_> = tokio::time::timeout(DEADLINE, run.docker.pull_image(&reference).collect())
        .await
        .expect("pull answers");
    let last = items.last().expect("at least one item");
    match last {
        Err(Error::Pull { image, message }) => {
            assert_eq!(image, &reference);
            assert!(!message.is_empty());
            eprintln!("pull error: {message}");
        }
        other => panic!("expected Error::Pull, got {other:?}"),
    }
}

#[tokio::test]
async fn failed_build_reports_the_builders_message() {
    let run = TestRun::start().await;
    let context = images::dockerfile_context("FROM scratch\nCOPY no-such-file /x\n");
    let tag = format!("berth-test/{}:x", run.name("broken"));
    let items: Vec<_> = run
        .docker
        .build_image(&tag, futures::stream::iter([context]), &BuildOptions::default())
        .collect()
        .await;
    match items.last() {
        Some(Err(Error::Build { message })) => {
            assert!(message.contains("no-such-file"), "{message}")
        }
        other => panic!("expected Error::Build, got {other:?}"),
    }
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Ok(BuildEvent::Log(l)) if l.contains("COPY"))),
        "build log is streamed: {items:?}"
    );
}

#[tokio::test]
async fn logs_tail_returns_the_last_lines() {
    let run = TestRun::start().await;
    let docker = &run.docker;
    let image = images::busybox_httpd(docker).await;
    let run_to_exit = |prefix: &str, script: &str| {
        let mut spec = idle(&run, prefix, &image);
        spec.command = vec!["/bin/busybox".into(), "sh".into(), "-c".into(), script.into()];
        spec
    };
    // Docker copies stdout and stderr separately, so their relative order in the log
    // is not fixed: the tail is checked on stdout alone.
    let counter = run_to_exit("counter", "for i in 1 2 3 4 5; do echo line$i; done");
    let mixed = run_to_exit("mixed", "echo out; echo oops >&2");
    let mut events = docker.events(None);
    let mut ids = Vec::new();
    for spec in [&counter, &mixed] {
        ids.push(docker.create_container(spec).await.unwrap());
        docker.start_container(&spec.name).await.unwrap();
    }
    for id in &ids {
        wait_for(&mut events, "exit", |e| {
            &e.id == id && matches!(e.action, Action::Die { exit_code: Some(0) })
        })
        .await;
    }

    let tail: Vec<String> = docker
        .logs(
            &counter.name,
            &LogOptions {
                tail: Some(2),
                ..Default::default()
            },
        )
        .map(|l| l.unwrap().line)
        .collect()
        .await;
    assert_eq!(tail, vec!["line4", "line5"]);
    let mut all: Vec<(OutputStream, String)> = docker
        .logs(&mixed.name, &LogOptions::default())
        .map(|l| l.map(|l| (l.stream, l.line)).unwrap())
        .collect()
        .await;
    all.sort_by_key(|(_, line)| line.clone());
    assert_eq!(
        all,
        vec![
            (OutputStream::Stderr, "oops".to_string()),
            (OutputStream::Stdout, "out".to_string())
        ]
    );
}

#[tokio::test]
async fn uploaded_files_are_visible_in_the_container() {
    let run = TestRun::start().await;
    let docker = &run.docker;
    let image = images::busybox_httpd(docker).await;
    let spec = idle(&run, "upload", &image);
    docker.create_container(&spec).await.unwrap();
    docker.start_container(&spec.name).await.unwrap();
    let contents = format!("http:\n  routers: {{}} # {}\n", run.id);
    docker
        .upload(
            &spec.name,
            "/tmp",
            images::tar_with_file("dynamic.yml", contents.as_bytes()),
        )
        .await
        .unwrap();
    let out = docker
        .exec(&spec.name, &["cat", "/tmp/dynamic.yml"])
        .await
        .unwrap();
    assert_eq!((out.exit_code, out.stdout), (0, contents));
    let out = docker.exec(&spec.name, &["cat", "/tmp/absent"]).await.unwrap();
    assert_eq!(out.exit_code, 1);
    assert!(out.stderr.contains("absent"), "{out:?}");
}

#[tokio::test]
async fn volumes_are_ensured_listed_and_removed() {
    let run = TestRun::start().await;
    let docker = &run.docker;
    let name = run.name("data");
    docker.ensure_volume(&name, &run.labels()).await.unwrap();
    docker.ensure_volume(&name, &run.labels()).await.unwrap();
    let listed = docker.list_volumes(&run.labels()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, name);
    docker.remove_volume(&name).await.unwrap();
    assert!(docker.list_volumes(&run.labels()).await.unwrap().is_empty());
}

#[tokio::test]
async fn traefik_image_runs_traefik_v3() {
    let run = TestRun::start().await;
    let docker = &run.docker;
    let image = images::traefik(docker).await;
    let spec = ContainerSpec {
        name: run.name("traefik"),
        image,
        args: vec!["version".into()],
        labels: run.labels(),
        ..Default::default()
    };
    let id = docker.create_container(&spec).await.unwrap();
    let mut events = docker.events(None);
    docker.start_container(&spec.name).await.unwrap();
    let die = wait_for(&mut events, "traefik exit", |e| {
        e.id == id && matches!(e.action, Action::Die { .. })
    })
    .await;
    assert_eq!(die.action, Action::Die { exit_code: Some(0) });
    let lines: Vec<String> = docker
        .logs(&spec.name, &LogOptions::default())
        .map(|l| l.unwrap().line)
        .collect()
        .await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Version:") && l.contains(" 3.")),
        "{lines:?}"
    );
}

/// A stand-in daemon on a Unix socket: answers `/version`, starts `/events`
/// responses and then goes away, as a crashing dockerd would.
async fn vanishing_daemon(path: &std::path::Path) -> tokio::task::JoinHandle<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let mut events_served = 0;
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            if head.contains("/version") {
                let body = r#"{"ApiVersion":"1.41","Version":"20.10.24"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                conn.write_all(reply.as_bytes()).await.unwrap();
            } else if head.contains("/events") {
                conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                )
                .await
                .unwrap();
                // One subscription ends cleanly, the other mid-stream.
                if events_served == 0 {
                    conn.write_all(b"0\r\n\r\n").await.unwrap();
                }
                events_served += 1;
            }
            drop(conn);
        }
    })
}

#[tokio::test]
async fn event_stream_ends_with_an_error_when_the_daemon_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let server = vanishing_daemon(&socket).await;
    let docker = Docker::connect(&format!("unix://{}", socket.display()))
        .await
        .unwrap();
    assert_eq!(docker.api_version(), "1.41");
    let items: Vec<_> = tokio::time::timeout(DEADLINE, docker.events(None).collect())
        .await
        .expect("the stream ends instead of hanging");
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(matches!(items[0], Err(Error::Unreachable { .. })), "{items:?}");
    server.abort();
}
