//! End-to-end tests of the Database controller against the real Docker daemon, on
//! PostgreSQL, MariaDB and Redis images built from Debian packages
//! (`tests/common/db_images.rs`). One test per engine covers the whole flow: apply → Ready,
//! the generated Secret (and the password nowhere else), data written with the engine's
//! client, the engine table's dump and restore plans run for real, a config change rolls the
//! container and keeps the data, a removed container comes back, deletion keeps the volume
//! (or removes it with `deletionPolicy: Delete`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use berth_controllers::database::engine::{self, Credentials, ExecPlan};
use berth_crds::kinds::database::DatabaseEngine;
use common::{db_images, docker_run::TestRun, server::OutputExt, world::World};
use serde_json::Value;

/// The Database manifest of `name` in `w`'s namespace, with `extra` spec lines.
fn manifest(w: &World, name: &str, engine: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: berth.dev/v1\nkind: Database\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  engine: {engine}\n  image: {image}\n  destination: default\n{extra}",
        ns = w.ns
    )
}

fn volume_exists(volume: &str) -> bool {
    Command::new("docker")
        .args(["volume", "inspect", volume])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// `docker exec` of a plan (stdin from `input`), returning stdout; panics on failure.
fn exec(container: &str, plan: &ExecPlan, input: Option<&[u8]>) -> Vec<u8> {
    try_exec(container, plan, input).unwrap_or_else(|e| panic!("{:?} failed: {e}", plan.argv))
}

/// `docker exec` of a plan: stdout, or stderr when it fails.
fn try_exec(container: &str, plan: &ExecPlan, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut cmd = Command::new("docker");
    cmd.arg("exec");
    if input.is_some() {
        cmd.arg("-i");
    }
    for (k, v) in &plan.env {
        cmd.args(["-e", &format!("{k}={v}")]);
    }
    cmd.arg(container).args(&plan.argv);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.map(<[u8]>::to_vec);
    let writer = std::thread::spawn(move || {
        if let Some(d) = data {
            stdin.write_all(&d).unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn sh(argv: &[&str], env: &[(&str, &str)]) -> ExecPlan {
    ExecPlan {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// How a test writes and reads one value with the engine's own client.
struct Client {
    write: fn(&Credentials, &str) -> ExecPlan,
    read: fn(&Credentials) -> ExecPlan,
}

/// The whole flow for one engine; `spec` holds extra spec lines (e.g. `deletionPolicy`),
/// `published` checks `spec.publicPort` once Ready.
fn flow(
    engine: DatabaseEngine,
    image: String,
    client: Client,
    spec: &str,
    published: Option<fn(&Value, &Credentials)>,
) {
    let w = World::start("db", &[]);
    let kind = serde_json::to_value(engine).unwrap();
    let kind = kind.as_str().unwrap();
    let name = format!("{kind}db");
    let t0 = Instant::now();
    w.s.run_stdin(&["apply", "-f", "-"], &manifest(&w, &name, kind, &image, spec))
        .ok();
    let db = w.wait_ready(&name);
    println!("{kind}: apply -> Ready in {:.1}s", t0.elapsed().as_secs_f64());

    // Status: endpoint, URL template, Secret; the password only in the Secret.
    let facts = engine::engine(engine);
    assert_eq!(
        db.pointer("/status/internalEndpoint").and_then(Value::as_str),
        Some(format!("{name}.{}:{}", w.ns, facts.port).as_str())
    );
    let template = db["status"]["connectionUrlTemplate"].as_str().unwrap();
    assert!(template.contains("$(password)"), "{template}");
    let secret_name = format!("{name}-credentials");
    assert_eq!(db["status"]["credentialsSecret"], secret_name.as_str());
    let masked = w.get("secret", &secret_name);
    let out =
        w.s.run(&[
            "get",
            "secret",
            &secret_name,
            "-n",
            &w.ns,
            "-o",
            "json",
            "--show-secrets",
        ])
        .ok();
    let secret: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"],
        db["metadata"]["uid"]
    );
    let data = &secret["spec"]["data"];
    let creds = Credentials {
        username: data["username"].as_str().unwrap().to_string(),
        password: data["password"].as_str().unwrap().to_string(),
        database: data["database"].as_str().unwrap().to_string(),
    };
    assert!(creds.password.len() >= 32, "a strong generated password");
    assert!(!masked.to_string().contains(&creds.password), "masked by default");
    let events = w.s.run(&["get", "events", "-o", "json"]).ok();
    let log = std::fs::read_to_string(w.s.dir().join("server.log")).unwrap();
    for (what, text) in [
        ("status", db.to_string()),
        ("events", events),
        ("berth's log", log),
    ] {
        assert!(!text.contains(&creds.password), "the password leaked into {what}");
    }

    if let Some(check) = published {
        check(&db, &creds);
    }

    // The engine is immutable.
    let other = if kind == "redis" { "keydb" } else { "redis" };
    let out =
        w.s.run_stdin(&["apply", "-f", "-"], &manifest(&w, &name, other, &image, spec));
    assert!(!out.status.success(), "changing the engine must be rejected");
    assert!(out.err().contains("spec.engine"), "{}", out.err());

    // Data written with the engine's client.
    let container = db["status"]["container"].as_str().unwrap().to_string();
    exec(&container, &(client.write)(&creds, "berth-42"), None);
    let read = || String::from_utf8(exec(&container, &(client.read)(&creds), None)).unwrap();
    // After a restart the status may still show the previous container Ready for a moment:
    // the engine's own client decides when it answers again.
    let reads_eventually = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = try_exec(&container, &(client.read)(&creds), None)
                .map(|out| String::from_utf8_lossy(&out).trim().to_string());
            if got.as_deref() == Ok(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "engine does not answer {want:?}: {got:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(read().trim(), "berth-42");

    // The engine table's dump and restore plans, for real: dump, change, restore.
    let dump = exec(&container, &facts.dump(&creds), None);
    assert!(dump.len() > 16, "a dump of {} bytes", dump.len());
    exec(&container, &(client.write)(&creds, "changed"), None);
    assert_eq!(read().trim(), "changed");
    exec(&container, &facts.restore(&creds), Some(&dump));
    assert_eq!(read().trim(), "berth-42", "restore brings the dumped value back");

    // A config change rolls the container on the same volume.
    let before = w.container_id(&container).unwrap();
    let extra = format!("{spec}  env:\n  - name: BERTH_TEST_REVISION\n    value: \"2\"\n");
    w.s.run_stdin(&["apply", "-f", "-"], &manifest(&w, &name, kind, &image, &extra))
        .ok();
    w.wait_ready(&name);
    let after = w.container_id(&container).unwrap();
    assert_ne!(before, after, "the container was replaced");
    assert_eq!(read().trim(), "berth-42", "data survives the roll");

    // An image that cannot be pulled (a closed loopback registry port) leaves the engine
    // running; going back to the previous spec changes nothing.
    let absent = format!("127.0.0.1:9/berth-test/absent-{}:1", w.run.id);
    w.s.run_stdin(&["apply", "-f", "-"], &manifest(&w, &name, kind, &absent, &extra))
        .ok();
    w.wait_condition(&name, "Progressing", "ImagePullFailed");
    assert_eq!(w.container_id(&container).as_ref(), Some(&after), "kept running");
    assert_eq!(read().trim(), "berth-42");
    w.s.run_stdin(&["apply", "-f", "-"], &manifest(&w, &name, kind, &image, &extra))
        .ok();
    w.wait_ready(&name);
    assert_eq!(w.container_id(&container).as_ref(), Some(&after), "not restarted");

    // Killed (SIGKILL): back and Ready, committed data intact.
    Command::new("docker")
        .args(["kill", &container])
        .output()
        .unwrap();
    reads_eventually("berth-42"); // data survives SIGKILL
    w.wait_condition(&name, "Ready", "EngineReady");

    // Drift: the container removed by hand comes back.
    let t1 = Instant::now();
    Command::new("docker")
        .args(["rm", "-f", &container])
        .output()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.container_id(&container).is_none_or(|id| id == after) {
        assert!(
            Instant::now() < deadline,
            "container not recreated\n{}",
            w.s.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    reads_eventually("berth-42"); // data survives the recreation
    println!(
        "{kind}: removed container back and answering in {:.1}s",
        t1.elapsed().as_secs_f64()
    );
    w.wait_condition(&name, "Ready", "EngineReady");

    // Deletion: the volume stays unless deletionPolicy is Delete.
    let volume = db["status"]["volume"].as_str().unwrap().to_string();
    w.s.run(&["delete", "database", &name, "-n", &w.ns, "--wait"])
        .ok();
    assert!(w.container_id(&container).is_none(), "container removed");
    let kept = volume_exists(&volume);
    if !spec.contains("deletionPolicy: Delete") {
        assert!(kept, "default policy keeps the volume");
    } else {
        assert!(!kept, "deletionPolicy: Delete removes the volume");
    }
}

#[test]
fn postgresql_end_to_end() {
    let image = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { db_images::postgres_image(&TestRun::start().await.docker).await });
    let client = Client {
        write: |c, v| {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS t (v text); DELETE FROM t; INSERT INTO t VALUES ('{v}');"
            );
            sh(
                &[
                    "psql",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-q",
                    "-U",
                    &c.username,
                    "-d",
                    &c.database,
                    "-c",
                    &sql,
                ],
                &[],
            )
        },
        read: |c| {
            sh(
                &[
                    "psql",
                    "-tA",
                    "-U",
                    &c.username,
                    "-d",
                    &c.database,
                    "-c",
                    "SELECT v FROM t",
                ],
                &[],
            )
        },
    };
    flow(DatabaseEngine::Postgresql, image, client, "", None);
}

#[test]
fn mariadb_end_to_end() {
    let image = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { db_images::mariadb_image(&TestRun::start().await.docker).await });
    let client = Client {
        write: |c, v| {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS t (v text); DELETE FROM t; INSERT INTO t VALUES ('{v}');"
            );
            sh(
                &["mariadb", "-u", &c.username, &c.database, "-e", &sql],
                &[("MYSQL_PWD", &c.password)],
            )
        },
        read: |c| {
            sh(
                &[
                    "mariadb",
                    "-N",
                    "-B",
                    "-u",
                    &c.username,
                    &c.database,
                    "-e",
                    "SELECT v FROM t",
                ],
                &[("MYSQL_PWD", &c.password)],
            )
        },
    };
    flow(DatabaseEngine::Mariadb, image, client, "", None);
}

#[test]
fn redis_end_to_end() {
    let image = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { db_images::redis_image(&TestRun::start().await.docker).await });
    let client = Client {
        write: |c, v| {
            sh(
                &["redis-cli", "-n", &c.database, "SET", "k", v],
                &[("REDISCLI_AUTH", &c.password)],
            )
        },
        read: |c| {
            sh(
                &["redis-cli", "-n", &c.database, "GET", "k"],
                &[("REDISCLI_AUTH", &c.password)],
            )
        },
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    PUBLIC_PORT.store(port, std::sync::atomic::Ordering::Relaxed);
    let spec = format!("  deletionPolicy: Delete\n  publicPort: {port}\n");
    flow(
        DatabaseEngine::Redis,
        image,
        client,
        &spec,
        Some(|db, creds| {
            // Published on the host: AUTH and PING answered through the public port.
            use std::io::{Read, Write};
            let port = PUBLIC_PORT.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(
                db.pointer("/status/publicEndpoint").and_then(Value::as_str),
                Some(format!("localhost:{port}").as_str())
            );
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            write!(conn, "AUTH {}\r\nPING\r\n", creds.password).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while !String::from_utf8_lossy(&got).contains("+PONG") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(String::from_utf8_lossy(&got), "+OK\r\n+PONG\r\n");
        }),
    );
}

/// The host port the redis test publishes on (read by its `published` check).
static PUBLIC_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

#[test]
fn a_foreign_container_with_the_name_is_left_alone() {
    let w = World::start("db", &[]);
    let image = w.rt.block_on(common::images::busybox_httpd(&w.run.docker));
    let container = format!("{}-squatter", w.ns);
    let out = Command::new("docker")
        // The run's labels (so the run's cleanup removes it), none of berth's owner labels.
        .args(["run", "-d", "--name", &container])
        .args(["--label", &format!("dev.berth.run={}", w.run.id)])
        .args(["--label", "dev.berth.managed=true"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let foreign = w.container_id(&container).unwrap();
    w.s.run_stdin(
        &["apply", "-f", "-"],
        &manifest(&w, "squatter", "redis", &image, ""),
    )
    .ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let db = w.get("database", "squatter");
        let reason = db
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .map(|c| (c["reason"].clone(), c["message"].clone()));
        if let Some((r, m)) = reason
            && r == "ContainerConflict"
        {
            assert!(m.as_str().unwrap().contains(&container), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no ContainerConflict: {db:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        w.container_id(&container),
        Some(foreign),
        "the foreign container is untouched"
    );
    // Deleting the Database leaves it alone too (it carries no berth labels).
    w.s.run(&["delete", "database", "squatter", "-n", &w.ns, "--wait"])
        .ok();
    assert!(w.container_id(&container).is_some());
}
