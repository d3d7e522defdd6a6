//! The Server's disk automation end to end: with a threshold of 1 % the real disk is over
//! it, so the cleanup runs; it removes berth's stopped container of a past revision and the
//! old built image only it used, beyond the rollback window, and nothing else: a running
//! container of a past revision and the image it uses, berth's newest image (the window),
//! a stopped Database container, a foreign stopped container and a foreign image survive.
//!
//! berth's objects are made directly with the labels the Application controller puts on
//! them, for an Application that no longer exists: a real rollout leaves no stopped old
//! container behind (the controller removes it itself), so there is nothing to clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use berth_controllers::docker::{
    BuildEvent, BuildOptions, ContainerSpec, ContextEntry, Docker, Labels, Owner, context_tar, label,
};
use common::{
    docker_run::TestRun,
    http::Client,
    images,
    server::{Backend, BerthServer, OutputExt},
};
use futures::StreamExt;
use serde_json::{Value, json};

/// Removes the foreign objects (they carry no run label, so [`TestRun`] cannot), also when
/// the test fails.
struct Foreign {
    docker: Docker,
    container: String,
    image: String,
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let (docker, container, image) = (self.docker.clone(), self.container.clone(), self.image.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Err(e) = docker.remove_container(&container).await
                    && !e.is_not_found()
                {
                    eprintln!("cleanup: container {container}: {e}");
                }
                if let Err(e) = docker.remove_image(&image).await
                    && !e.is_not_found()
                {
                    eprintln!("cleanup: image {image}: {e}");
                }
            });
        });
        let _ = done.join();
    }
}

/// Builds `FROM base` plus one label step, tagged `tag`, labelled `labels`.
async fn build(docker: &Docker, base: &str, tag: &str, labels: &Labels, marker: &str) {
    let dockerfile = format!("FROM {base}\nLABEL test.marker={marker}\n");
    let tar = context_tar([ContextEntry {
        path: "Dockerfile",
        mode: 0o100_644,
        data: dockerfile.as_bytes(),
    }])
    .unwrap();
    let options = BuildOptions {
        labels: labels.clone(),
        ..BuildOptions::default()
    };
    let mut stream = docker.build_image(tag, futures::stream::iter([tar]), &options);
    let mut built = false;
    while let Some(event) = stream.next().await {
        if let BuildEvent::Built { .. } = event.unwrap() {
            built = true;
        }
    }
    assert!(built, "build of {tag} did not finish");
}

/// Creates `name` from `image` with `labels`, runs it to its exit.
async fn stopped_container(docker: &Docker, name: &str, image: &str, labels: Labels) {
    let spec = ContainerSpec {
        name: name.to_string(),
        image: image.to_string(),
        command: vec!["/bin/busybox".into(), "true".into()],
        labels,
        ..ContainerSpec::default()
    };
    docker.create_container(&spec).await.unwrap();
    docker.start_container(name).await.unwrap();
    let t0 = Instant::now();
    while docker.inspect_container(name).await.unwrap().status != "exited" {
        assert!(t0.elapsed() < Duration::from_secs(20), "{name} did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `owner` plus the labels of replica 0 of an app hash no revision has now.
fn past_labels_of(owner: &Labels) -> Labels {
    let mut l = owner.clone();
    l.insert("dev.berth.app-hash".into(), "000000000000".into());
    l.insert(label::REPLICA.into(), "0".into());
    l
}

async fn exists_container(docker: &Docker, name: &str) -> bool {
    match docker.inspect_container(name).await {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("inspect {name}: {e}"),
    }
}

async fn exists_image(docker: &Docker, reference: &str) -> bool {
    match docker.inspect_image(reference).await {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("inspect {reference}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_over_the_threshold_removes_only_what_berth_no_longer_needs() {
    let run = TestRun::start().await;
    let docker = run.docker.clone();
    let httpd = images::busybox_httpd(&docker).await;

    let label_arg = format!("{}={}", label::RUN, run.id);
    let net = format!("berth-{}", run.id);
    let s = BerthServer::start(
        Backend::Embedded,
        &["--docker-label", &label_arg, "--default-network", &net],
    );
    let c = Client::new(&s.url, Some(&s.token));
    let path = "/apis/berth.dev/v1/servers/localhost";
    // Ready means the informers synced: the Application controller's orphan sweep at start
    // (which removes berth containers of Applications that do not exist) is behind us.
    let t0 = Instant::now();
    loop {
        let (_, server) = c.get(path).await;
        let ready = server["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
        if ready {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "localhost not ready: {server}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Foreign objects: no berth label at all.
    let foreign = Foreign {
        docker: docker.clone(),
        container: run.name("foreign"),
        image: format!("berth-test-foreign-{}:1", run.id),
    };
    let (repo, tag) = foreign.image.split_once(':').unwrap();
    docker.tag_image(&httpd, repo, tag).await.unwrap();
    stopped_container(&docker, &foreign.container, &httpd, Labels::new()).await;

    // berth's objects, for an Application of a past incarnation (no such Application now),
    // labelled as the Application controller labels them, in the run's scope.
    let owner = |kind: &str| {
        let mut l = Owner {
            kind: kind.into(),
            namespace: "default".into(),
            name: format!("gone-{}", run.id),
            uid: format!("uid-{}", run.id),
        }
        .labels();
        l.extend(run.labels());
        l
    };
    let oldest_image = format!("berth-test-built-{}:oldest", run.id);
    let old_image = format!("berth-test-built-{}:old", run.id);
    let new_image = format!("berth-test-built-{}:new", run.id);
    build(&docker, &httpd, &oldest_image, &owner("Application"), "oldest").await;
    // Image creation times have a one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    build(&docker, &httpd, &old_image, &owner("Application"), "old").await;
    // Image creation times have a one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    build(&docker, &httpd, &new_image, &owner("Application"), "new").await;
    let past = run.name("past-revision");
    stopped_container(
        &docker,
        &past,
        &oldest_image,
        past_labels_of(&owner("Application")),
    )
    .await;
    // A running container of a past revision is never removed.
    let running = run.name("running-past");
    let mut running_labels = past_labels_of(&owner("Application"));
    running_labels.insert(label::REPLICA.into(), "1".into());
    docker
        .create_container(&ContainerSpec {
            name: running.clone(),
            image: old_image.clone(),
            labels: running_labels,
            ..ContainerSpec::default()
        })
        .await
        .unwrap();
    docker.start_container(&running).await.unwrap();
    let database = run.name("database");
    stopped_container(&docker, &database, &httpd, owner("Database")).await;

    let patch = json!({"spec": {"automation": {
        "dockerCleanupThresholdPercent": 1,
        "diskUsageWarningPercent": 1,
        "keepImages": 1,
    }}});
    let (code, body) = c.patch(path, &patch).await;
    assert_eq!(code, 200, "{body}");

    let t0 = Instant::now();
    let server: Value = loop {
        let (_, server) = c.get(path).await;
        if !server["status"]["lastCleanup"].is_null() {
            break server;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no cleanup within 60s: {server}\n{}",
            s.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let last = &server["status"]["lastCleanup"];
    println!("cleanup after {:?}: {last}", t0.elapsed());
    assert_eq!(last["containers"], 1, "{last}");
    assert_eq!(last["images"], 1, "{last}");
    let pressure = server["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "DiskPressure")
        .cloned()
        .unwrap_or_default();
    assert_eq!(pressure["status"], "True", "{server}");

    assert!(
        !exists_container(&docker, &past).await,
        "past revision container kept"
    );
    assert!(
        !exists_image(&docker, &oldest_image).await,
        "old built image kept"
    );
    assert!(
        exists_container(&docker, &running).await,
        "a running container was removed"
    );
    assert!(
        exists_image(&docker, &old_image).await,
        "an image a running container uses was removed"
    );
    assert!(
        exists_image(&docker, &new_image).await,
        "the rollback window's image was removed"
    );
    assert!(
        exists_container(&docker, &database).await,
        "a stopped database container was removed"
    );
    assert!(
        exists_container(&docker, &foreign.container).await,
        "the foreign container was removed"
    );
    assert!(
        exists_image(&docker, &foreign.image).await,
        "the foreign image was removed"
    );

    let t0 = Instant::now();
    loop {
        let events = s.run(&["get", "events", "-A", "-o", "json"]).ok();
        if events.contains("DockerCleanupDone") && events.contains("DiskUsageHigh") {
            let events: Value = serde_json::from_str(&events).unwrap();
            let done = events["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["spec"]["reason"] == "DockerCleanupDone")
                .cloned()
                .unwrap_or_default();
            println!("event: {}", done["spec"]["message"]);
            assert!(
                done["spec"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("freed"),
                "{done}"
            );
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "events missing: {events}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
