//! Backups end to end: the streaming pipeline against real Docker exec and a real
//! SeaweedFS S3 server plus a local directory.
//!
//! The dump "tool" here is busybox in a container the test controls (`cat` of a known
//! file), so these tests prove the pipeline, the storages' commit/abort protocol and the
//! error reporting independently of any database engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use berth_controllers::backup::{
    pipeline::{self, Target},
    storage::{Local, S3, S3Config, Storage},
};
use berth_controllers::docker::{ContainerSpec, Docker, ExecRequest};
use common::{docker_run::TestRun, files::files_under, images, seaweedfs};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};

/// Bytes of the test "database": three S3 parts and a bit.
const DATA_BYTES: usize = 20 * 1024 * 1024 + 12345;

async fn container(run: &TestRun) -> String {
    let image = images::busybox_httpd(&run.docker).await;
    let spec = ContainerSpec {
        name: run.name("dump"),
        image,
        command: vec!["/bin/busybox".into(), "sleep".into(), "3600".into()],
        labels: run.labels(),
        stop_timeout_secs: Some(1),
        ..Default::default()
    };
    run.docker.create_container(&spec).await.unwrap();
    run.docker.start_container(&spec.name).await.unwrap();
    spec.name
}

async fn sh(docker: &Docker, container: &str, script: &str) -> String {
    let out = docker
        .exec(container, &["/bin/busybox", "sh", "-c", script])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{script}: {}", out.stderr);
    out.stdout.trim().to_owned()
}

fn request(script: &str) -> ExecRequest {
    ExecRequest {
        cmd: vec!["/bin/busybox".into(), "sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

fn s3_storage(fs: &seaweedfs::SeaweedFs, secret: &str) -> Storage {
    Storage::S3(
        S3::new(&S3Config {
            endpoint: fs.endpoint(),
            bucket: fs.bucket().to_owned(),
            region: "us-east-1".into(),
            path_style: true,
            prefix: "backups".into(),
            access_key_id: seaweedfs::ACCESS_KEY.into(),
            secret_access_key: secret.into(),
        })
        .unwrap(),
    )
}

async fn targets(storages: &[(&str, &Storage)], key: &str) -> Vec<Target> {
    let mut out = Vec::new();
    for (name, s) in storages {
        out.push(Target {
            name: (*name).to_owned(),
            storage: (*s).clone(),
            upload: s.begin(key).await.unwrap(),
        });
    }
    out
}

async fn read_all(s: &Storage, path: &str) -> Vec<u8> {
    let chunks: Vec<bytes::Bytes> = s.read(path).await.unwrap().try_collect().await.unwrap();
    chunks.concat()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_streams_to_local_and_s3_at_once_and_restores_identically() {
    let run = TestRun::start().await;
    let c = container(&run).await;
    let fs = seaweedfs::start("backups-a").await;
    let dir = tempfile::tempdir().unwrap();
    let (local, s3) = (
        Storage::Local(Local::new(dir.path())),
        s3_storage(&fs, seaweedfs::SECRET_KEY),
    );
    local.probe().await.unwrap();
    s3.probe().await.unwrap();
    let original = sh(
        &run.docker,
        &c,
        &format!("head -c {DATA_BYTES} /dev/urandom > /tmp/data && sha256sum /tmp/data | cut -d' ' -f1"),
    )
    .await;

    let t = targets(&[("local", &local), ("s3", &s3)], "ns/db/b1.gz").await;
    let outcome = pipeline::backup(&run.docker, &c, &request("cat /tmp/data"), t)
        .await
        .unwrap();

    assert_eq!(outcome.locations.len(), 2);
    let (local_path, s3_path) = (&outcome.locations[0].1, &outcome.locations[1].1);
    assert_eq!(s3_path, "backups/ns/db/b1.gz");
    let stored_local = read_all(&local, local_path).await;
    let stored_s3 = read_all(&s3, s3_path).await;
    assert_eq!(stored_local.len() as u64, outcome.size);
    assert_eq!(
        sha256_hex(&stored_local),
        outcome.sha256,
        "sha256 is of the stored file"
    );
    assert_eq!(stored_local, stored_s3, "both copies are the same bytes");
    assert_eq!(
        local.list("").await.unwrap(),
        vec![(local_path.clone(), outcome.size)]
    );
    assert_eq!(s3.list("").await.unwrap(), vec![(s3_path.clone(), outcome.size)]);

    for (i, (storage, path)) in [(&s3, s3_path), (&local, local_path)].into_iter().enumerate() {
        let target = format!("/tmp/restored{i}");
        let restored = pipeline::restore(
            &run.docker,
            &c,
            &request(&format!("cat > {target}")),
            storage.read(path).await.unwrap(),
            Some(&outcome.sha256),
        )
        .await
        .unwrap();
        assert_eq!(restored, DATA_BYTES as u64);
        let sum = sh(&run.docker, &c, &format!("sha256sum {target} | cut -d' ' -f1")).await;
        assert_eq!(sum, original, "restored data identical (from {path})");
    }

    // A corrupted copy is caught by the checksum.
    let bad = pipeline::restore(
        &run.docker,
        &c,
        &request("cat > /dev/null"),
        s3.read(s3_path).await.unwrap(),
        Some("00"),
    )
    .await
    .unwrap_err();
    assert!(matches!(bad, pipeline::Error::Checksum { .. }), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dump_commits_nothing_and_reports_the_tools_stderr() {
    let run = TestRun::start().await;
    let c = container(&run).await;
    let fs = seaweedfs::start("backups-b").await;
    let dir = tempfile::tempdir().unwrap();
    let (local, s3) = (
        Storage::Local(Local::new(dir.path())),
        s3_storage(&fs, seaweedfs::SECRET_KEY),
    );

    let t = targets(&[("local", &local), ("s3", &s3)], "ns/db/b2.gz").await;
    let script = "head -c 12000000 /dev/urandom; echo 'dump exploded: disk on fire' >&2; exit 3";
    let err = pipeline::backup(&run.docker, &c, &request(script), t)
        .await
        .unwrap_err();
    match &err {
        pipeline::Error::Tool { code, output, .. } => {
            assert_eq!(*code, 3);
            assert!(output.contains("dump exploded: disk on fire"), "{output}");
        }
        other => panic!("expected a tool failure, got {other}"),
    }
    assert!(local.list("").await.unwrap().is_empty());
    let leftovers: Vec<_> = files_under(dir.path());
    assert!(
        leftovers.is_empty(),
        "nothing left locally, not even .partial: {leftovers:?}"
    );
    assert!(s3.list("").await.unwrap().is_empty(), "no S3 object");

    // A restore tool that fails says why.
    let t = targets(&[("local", &local)], "ns/db/b3.gz").await;
    let ok = pipeline::backup(&run.docker, &c, &request("echo hello"), t)
        .await
        .unwrap();
    let err = pipeline::restore(
        &run.docker,
        &c,
        &request("cat >/dev/null; echo 'restore refused' >&2; exit 5"),
        local.read(&ok.locations[0].1).await.unwrap(),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("exited with code 5: restore refused"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_s3_credentials_fail_with_the_services_message() {
    let fs = seaweedfs::start("backups-c").await;
    let s3 = s3_storage(&fs, "not-the-secret");
    let err = s3.probe().await.unwrap_err().to_string();
    assert!(err.starts_with("s3: "), "{err}");
    assert!(
        err.contains("SignatureDoesNotMatch") || err.contains("AccessDenied"),
        "{err}"
    );
    let err = s3.begin("ns/db/x.gz").await.unwrap_err().to_string();
    assert!(
        err.contains("SignatureDoesNotMatch") || err.contains("AccessDenied"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_write_is_never_visible_and_is_removed_from_its_record() {
    let fs = seaweedfs::start("backups-d").await;
    let dir = tempfile::tempdir().unwrap();
    let (local, s3) = (
        Storage::Local(Local::new(dir.path())),
        s3_storage(&fs, seaweedfs::SECRET_KEY),
    );
    let mut pendings = Vec::new();
    for s in [&local, &s3] {
        let mut up = s.begin("ns/db/crashed.gz").await.unwrap();
        for _ in 0..3 {
            // 12 MiB: at least one S3 part is uploaded before the "crash".
            up.write(bytes::Bytes::from(vec![7u8; 4 * 1024 * 1024]))
                .await
                .unwrap();
        }
        pendings.push(up.pending());
        // The process dies here: no finish, no abort.
        drop(up);
    }
    assert!(local.list("").await.unwrap().is_empty());
    assert!(s3.list("").await.unwrap().is_empty());
    assert_eq!(
        files_under(dir.path()).len(),
        1,
        "the local .partial file exists until aborted"
    );
    local.abort(&pendings[0]).await.unwrap();
    s3.abort(&pendings[1]).await.unwrap();
    assert!(files_under(dir.path()).is_empty());
    assert!(s3.list("").await.unwrap().is_empty());
    // Aborting again (a second restart) is fine.
    local.abort(&pendings[0]).await.unwrap();
}
