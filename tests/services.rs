//! End-to-end tests of the Service controller against the real Docker daemon: Services made
//! from docker-compose files, expanded into Applications and Databases that share the
//! Service's own network.
//!
//! - WordPress for real: MariaDB (the debootstrap engine image, as a Database) and WordPress
//!   (Debian's packages, as an Application) from one compose file, reached through Traefik,
//!   installed over HTTP, a post published and read back; a one-off Backup of the Database
//!   member (berth logging in with the login Secret derived from the compose environment)
//!   to a local BackupStorage holds the post; a second copy survives a kill -9
//!   of berth mid-converge without duplicate containers; deleting both leaves nothing of
//!   theirs but the retained volumes, and a foreign container untouched.
//! - Ordering: `depends_on: {condition: service_healthy}` is honoured as start order, as
//!   seen in Docker's own events.
//! - Updates: a removed compose service removes its child; an edit rolls only that member.
//!
//! Each test runs its own `berth serve` scoped by a run label ([`World`]): everything berth
//! creates is removed when the test ends, also on panic; what a test creates itself outside
//! berth is removed by a [`Cleanup`] guard.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    cell::RefCell,
    collections::BTreeMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use berth_controllers::docker::{Action, Event, Health, Labels, ObjectType, label};
use common::{db_images, images, server::OutputExt, traffic::free_port, wordpress, world::World};
use futures::StreamExt;
use serde_json::Value;

/// How long a Service may take to become Ready (two cores shared with other test binaries;
/// MariaDB's first start initialises its data directory).
const SERVICE_READY: Duration = Duration::from_secs(300);

/// How long a small busybox Service may take to become Ready.
const SMALL_READY: Duration = Duration::from_secs(90);

/// How long deletions may take (stops, then the Destination's network).
const GONE: Duration = Duration::from_secs(120);

/// What a test made outside berth, removed when it ends (declare it before the [`World`],
/// so that berth's containers are gone, and berth no longer writes, before the volumes and
/// directories are removed).
#[derive(Default)]
struct Cleanup {
    containers: RefCell<Vec<String>>,
    volumes: RefCell<Vec<String>>,
    dirs: RefCell<Vec<tempfile::TempDir>>,
}

impl Cleanup {
    fn container(&self, name: &str) {
        self.containers.borrow_mut().push(name.to_owned());
    }

    fn volume(&self, name: &str) {
        self.volumes.borrow_mut().push(name.to_owned());
    }

    /// A new temporary directory, removed when the test ends; returns its path.
    fn dir(&self, prefix: &str) -> std::path::PathBuf {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let path = dir.path().to_owned();
        self.dirs.borrow_mut().push(dir);
        path
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in self.containers.borrow().iter() {
            let _ = docker_cli(&["rm", "-f", c]);
        }
        for v in self.volumes.borrow().iter() {
            let _ = docker_cli(&["volume", "rm", "-f", v]);
        }
        // Each TempDir removes its directory as it drops.
        self.dirs.borrow_mut().clear();
    }
}

/// `docker ARGS`: whether it succeeded, and its stdout (stderr on failure).
fn docker_cli(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Starts a test's berth (Applications Ready after 1 s without failing).
fn world() -> World {
    World::start("svc", &["--app-min-ready", "1s"])
}

/// The Service manifest `name` in `w`'s namespace on Destination `default`, with `compose`
/// inline and `extra` spec lines (indented two spaces).
fn service(w: &World, name: &str, compose: &str, extra: &str) -> String {
    let compose: String = compose.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: berth.dev/v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  destination: default\n{extra}  compose: |\n{compose}",
        ns = w.ns
    )
}

/// The condition `type_` of `obj`, if any.
fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
}

/// Whether `obj`'s status speaks of its current generation.
fn observed(obj: &Value) -> bool {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    generation.is_some() && obj.pointer("/status/observedGeneration").and_then(Value::as_i64) == generation
}

/// Waits until Service `name` is Ready for its current generation; returns it. On timeout
/// panics with its status, its children's conditions and berth's log lines about them.
fn wait_service_ready(w: &World, name: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let svc = w.try_get("service", name);
        if let Some(svc) = &svc {
            let ready = condition(svc, "Ready").is_some_and(|c| c["status"] == "True");
            if ready && observed(svc) {
                return svc.clone();
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "service {name} not Ready after {timeout:?}: {}\n{}",
                svc.map(|s| format!("{:#}", s["status"])).unwrap_or_default(),
                diagnose(w, name)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The conditions of Service `name`'s children and berth's last log lines naming it.
fn diagnose(w: &World, name: &str) -> String {
    let mut out = String::new();
    for kind in ["application", "database", "proxy"] {
        let list = w.s.run(&["get", kind, "-n", &w.ns, "-o", "json"]).out();
        let list: Value = serde_json::from_str(&list).unwrap_or_default();
        for o in list["items"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{kind} {}: {}\n",
                o["metadata"]["name"],
                o.pointer("/status/conditions").unwrap_or(&Value::Null)
            ));
        }
    }
    let log = std::fs::read_to_string(w.s.dir().join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains(name) || l.contains("server's proxy")) && !l.contains("DEBUG"))
        .collect();
    out.push_str(&format!("berth's log lines naming {name} or a server's proxy:\n"));
    out.push_str(&lines[lines.len().saturating_sub(40)..].join("\n"));
    out
}

/// The member `service` of a Service's status.
fn member<'a>(svc: &'a Value, service: &str) -> &'a Value {
    svc.pointer("/status/services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m["name"] == service)
        .unwrap_or_else(|| panic!("no member {service} in the status: {svc:#}"))
}

/// The run's containers of berth object `name` in `w`'s namespace: (name, id, status).
fn containers_of(w: &World, name: &str) -> Vec<(String, String, String)> {
    let selector = Labels::from([
        (label::RUN.to_string(), w.run.id.clone()),
        (label::NAMESPACE.to_string(), w.ns.clone()),
        (label::NAME.to_string(), name.to_string()),
    ]);
    let mut list: Vec<_> =
        w.rt.block_on(w.run.docker.list_containers(&selector))
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.id, c.status))
            .collect();
    list.sort();
    list
}

/// Every container of the run in `w`'s namespace, by owner name: how many each has.
fn containers_by_owner(w: &World) -> BTreeMap<String, usize> {
    let selector = Labels::from([
        (label::RUN.to_string(), w.run.id.clone()),
        (label::NAMESPACE.to_string(), w.ns.clone()),
    ]);
    let mut out = BTreeMap::new();
    for c in w.rt.block_on(w.run.docker.list_containers(&selector)).unwrap() {
        let owner = c.labels.get(label::NAME).cloned().unwrap_or_default();
        *out.entry(owner).or_default() += 1;
    }
    out
}

/// The one running container of berth object `name`, once it is the only one.
fn only_container(w: &World, name: &str) -> String {
    w.until(
        &format!("one running container of {name}"),
        SMALL_READY,
        || match containers_of(w, name).as_slice() {
            [(_, id, status)] if status == "running" => Some(id.clone()),
            _ => None,
        },
    )
}

/// The names of the objects of `kind` in `w`'s namespace.
fn names(w: &World, kind: &str) -> Vec<String> {
    let out = w.s.run(&["get", kind, "-n", &w.ns, "-o", "json"]).ok();
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// The data of Secret `name`, unmasked.
fn secret_data(w: &World, name: &str) -> BTreeMap<String, String> {
    let out =
        w.s.run(&["get", "secret", name, "-n", &w.ns, "-o", "json", "--show-secrets"])
            .ok();
    let secret: Value = serde_json::from_str(&out).unwrap();
    serde_json::from_value(secret["spec"]["data"].clone()).unwrap()
}

/// Whether object `kind/name` (of `w`'s namespace, for a namespaced kind) is gone: `berth
/// get` says it is not found. Any other failure panics.
fn gone(w: &World, kind: &str, name: &str) -> bool {
    let out = w.s.run(&["get", kind, name, "-n", &w.ns, "-o", "name"]);
    if out.status.success() {
        return false;
    }
    let err = out.err();
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "get {kind} {name}: {err}"
    );
    true
}

/// Whether Docker has a network of exactly this name.
fn network_exists(w: &World, network: &str) -> bool {
    match w.rt.block_on(w.run.docker.inspect_network(network)) {
        Ok(info) => info.name == network,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("inspect network {network}: {e}"),
    }
}

/// The names of the containers attached to `network`.
fn attached(w: &World, network: &str) -> Vec<String> {
    match w.rt.block_on(w.run.docker.inspect_network(network)) {
        Ok(info) => info.containers.into_values().collect(),
        Err(e) => vec![format!("({e})")],
    }
}

fn volume_exists(w: &World, volume: &str) -> bool {
    w.rt.block_on(w.run.docker.volume_exists(volume)).unwrap()
}

/// The MariaDB engine image under a name whose last segment is `mariadb` (what makes a
/// compose member a Database), tagged through the adapter.
fn mariadb_image(w: &World) -> String {
    let built = w.rt.block_on(db_images::mariadb_image(&w.run.docker));
    let (_, tag) = built.rsplit_once(':').unwrap();
    let repo = "berth-test/mariadb";
    w.rt.block_on(w.run.docker.tag_image(&built, repo, tag)).unwrap();
    format!("{repo}:{tag}")
}

/// The WordPress + MariaDB compose file.
fn wordpress_compose(mariadb: &str, wordpress: &str) -> String {
    format!(
        r#"services:
  mariadb:
    image: {mariadb}
    environment:
      - MYSQL_ROOT_PASSWORD=$SERVICE_PASSWORD_ROOT
      - MYSQL_DATABASE=wordpress
      - MYSQL_USER=$SERVICE_USER_WORDPRESS
      - MYSQL_PASSWORD=$SERVICE_PASSWORD_WORDPRESS
    volumes:
      - mariadb-data:/var/lib/mysql
    healthcheck:
      test: ["CMD-SHELL", "mariadb-admin ping -h 127.0.0.1 -uroot -p\"$$MYSQL_ROOT_PASSWORD\""]
      interval: 2s
      timeout: 5s
      retries: 30
  wordpress:
    image: {wordpress}
    environment:
      - SERVICE_URL_WORDPRESS_80
      - WORDPRESS_DB_HOST=mariadb
      - WORDPRESS_DB_USER=$SERVICE_USER_WORDPRESS
      - WORDPRESS_DB_PASSWORD=$SERVICE_PASSWORD_WORDPRESS
      - WORDPRESS_DB_NAME=wordpress
    healthcheck:
      test: ["CMD-SHELL", "curl -s -o /dev/null http://127.0.0.1/"]
      interval: 2s
      timeout: 5s
      retries: 30
    depends_on:
      mariadb:
        condition: service_healthy
volumes:
  mariadb-data: {{}}
"#
    )
}

/// A Traefik Proxy on the `localhost` Server on free loopback ports; returns its HTTP base
/// URL.
fn proxy(w: &World) -> String {
    let traefik = w.rt.block_on(images::traefik(&w.run.docker));
    let (http_port, https_port) = (free_port(), free_port());
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Proxy\nmetadata:\n  name: px{id}\nspec:\n  server: localhost\n  \
         image: {traefik}\n  httpPort: {http_port}\n  httpsPort: {https_port}\n  listenAddress: 127.0.0.1\n",
        id = w.run.id
    ));
    format!("http://127.0.0.1:{http_port}")
}

/// How long a one-off Backup of the WordPress database may take (about 60 kB of SQL).
const BACKUP_DONE: Duration = Duration::from_secs(120);

/// The whole content of the gzip file at `path`, decompressed (`gzip -t` checks it first).
fn gunzip(path: &std::path::Path) -> Vec<u8> {
    let test = Command::new("gzip").arg("-t").arg(path).output().unwrap();
    assert!(
        test.status.success(),
        "{} is not a valid gzip file: {}",
        path.display(),
        test.err()
    );
    let out = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(out.status.success(), "gunzip {}: {}", path.display(), out.err());
    out.stdout
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Backs up Database `database` once with a Backup `name` to a local BackupStorage `storage`
/// in a directory `cleanup` removes; waits until it succeeds, checks its stored file against
/// its status, deletes the Backup and the BackupStorage again, and returns the dump (SQL).
fn backup_once(w: &World, cleanup: &Cleanup, database: &str, name: &str, storage: &str) -> Vec<u8> {
    let ns = &w.ns;
    let dir = cleanup.dir("berth-svc-backups-");
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: BackupStorage\nmetadata: {{name: {storage}}}\n\
         spec:\n  local: {{server: localhost, path: {dir}}}\n",
        dir = dir.display()
    ));
    w.s.run(&[
        "wait",
        &format!("backupstorage/{storage}"),
        "--for=condition=Ready",
        "--timeout",
        "60s",
    ])
    .ok();
    let t0 = Instant::now();
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Backup\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  database: {database}\n  storages: [{storage}]\n"
    ));
    let b = w.until(&format!("backup {name} to finish"), BACKUP_DONE, || {
        let b = w.try_get("backup", name)?;
        matches!(b["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(b)
    });
    let st = &b["status"];
    assert_eq!(st["phase"], "Succeeded", "backup {name}: {st:#}");
    let path = dir.join(format!("{ns}/{database}/{name}.gz"));
    eprintln!(
        "backup of {database}: {} bytes in {:.1} s to {}",
        st["sizeBytes"],
        t0.elapsed().as_secs_f64(),
        path.display()
    );
    assert_eq!(
        st["locations"],
        serde_json::json!([{"storage": storage, "path": path.display().to_string()}]),
        "one copy, in the local storage: {st:#}"
    );
    let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(Some(stored.len() as u64), st["sizeBytes"].as_u64(), "{st:#}");
    assert_eq!(
        Some(sha256_hex(&stored).as_str()),
        st["sha256"].as_str(),
        "{st:#}"
    );
    let dump = gunzip(&path);

    // Deleting a Backup by hand leaves its file; the storage goes after the Backup.
    w.s.run(&["delete", "backup", name, "-n", ns]).ok();
    w.until(&format!("backup {name} gone"), GONE, || {
        gone(w, "backup", name).then_some(())
    });
    w.s.run(&["delete", "backupstorage", storage]).ok();
    w.until(&format!("backupstorage {storage} gone"), GONE, || {
        gone(w, "backupstorage", storage).then_some(())
    });
    dump
}

#[test]
fn wordpress_service_installs_posts_and_survives_a_kill() {
    let cleanup = Cleanup::default();
    let mut w = world();
    let ns = w.ns.clone();
    let mariadb = mariadb_image(&w);
    let wordpress_image = w.rt.block_on(wordpress::wordpress_image(&w.run.docker));
    let base = proxy(&w);
    let compose = wordpress_compose(&mariadb, &wordpress_image);
    let hosts: BTreeMap<&str, String> = ["blog", "blog2"]
        .into_iter()
        .map(|svc| (svc, format!("{svc}-{}.test", w.run.id)))
        .collect();
    let host = |svc: &str| hosts[svc].clone();
    let manifests: BTreeMap<&str, String> = ["blog", "blog2"]
        .into_iter()
        .map(|svc| {
            let domains = format!(
                "  domains:\n  - service: wordpress\n    host: {}\n    https: false\n",
                host(svc)
            );
            (svc, service(&w, svc, &compose, &domains))
        })
        .collect();

    // 1. Apply → Ready: a Database and an Application, their own Destination and network.
    let t0 = Instant::now();
    w.apply(&manifests["blog"]);
    let svc = wait_service_ready(&w, "blog", SERVICE_READY);
    let ready_after = t0.elapsed();
    eprintln!("apply→Ready: {:.1} s", ready_after.as_secs_f64());
    assert_eq!(svc["status"]["members"], "2/2", "{svc:#}");
    let db = member(&svc, "mariadb");
    assert_eq!(
        (db["kind"].as_str(), db["object"].as_str(), db["ready"].as_bool()),
        (Some("Database"), Some("blog-mariadb"), Some(true)),
        "{svc:#}"
    );
    let wp = member(&svc, "wordpress");
    assert_eq!(
        (wp["kind"].as_str(), wp["object"].as_str(), wp["ready"].as_bool()),
        (Some("Application"), Some("blog-wordpress"), Some(true)),
        "{svc:#}"
    );
    let url = format!("http://{}", host("blog"));
    assert_eq!(wp["urls"], serde_json::json!([url]), "{svc:#}");
    assert_eq!(svc["status"]["url"], url.as_str(), "{svc:#}");
    let uid = svc.pointer("/metadata/uid").unwrap().clone();
    for (kind, child) in [("database", "blog-mariadb"), ("application", "blog-wordpress")] {
        let obj = w.get(kind, child);
        assert_eq!(
            obj.pointer("/metadata/ownerReferences/0/uid"),
            Some(&uid),
            "{kind} {child} is owned by the Service: {obj:#}"
        );
        assert_eq!(
            obj.pointer("/spec/destination").and_then(Value::as_str),
            Some(format!("svc-{ns}-blog").as_str()),
            "{obj:#}"
        );
    }
    assert!(network_exists(&w, &format!("berth-svc-{ns}-blog")));
    // The generated values live in the Service's Secret, nowhere in the children's specs.
    let generated = secret_data(&w, "blog-generated");
    for var in [
        "SERVICE_PASSWORD_ROOT",
        "SERVICE_USER_WORDPRESS",
        "SERVICE_PASSWORD_WORDPRESS",
    ] {
        let value = generated
            .get(var)
            .unwrap_or_else(|| panic!("no {var} in blog-generated: {generated:?}"));
        assert!(!value.is_empty(), "{var} is empty");
        for (kind, child) in [("database", "blog-mariadb"), ("application", "blog-wordpress")] {
            let spec = w.get(kind, child)["spec"].to_string();
            assert!(
                !spec.contains(value.as_str()),
                "{var} leaked into {kind} {child}'s spec"
            );
        }
    }

    // 2. Through Traefik at its domain: install, publish a post, read it back.
    let t1 = Instant::now();
    w.rt.block_on(wordpress::wait_until_up(
        &base,
        &host("blog"),
        Duration::from_secs(60),
    ))
    .unwrap();
    eprintln!(
        "Ready→served through Traefik: {:.1} s",
        t1.elapsed().as_secs_f64()
    );
    w.rt.block_on(wordpress::install(
        &base,
        &host("blog"),
        "Berth Blog",
        "admin",
        "berth-admin-pw",
        "admin@example.com",
    ))
    .unwrap();
    let post =
        w.rt.block_on(wordpress::publish_post(
            &base,
            &host("blog"),
            "admin",
            "berth-admin-pw",
            "Hello from a berth Service",
            "Stored in MariaDB through the Service network",
        ))
        .unwrap();
    let page =
        w.rt.block_on(wordpress::read_post(&base, &host("blog"), post))
            .unwrap();
    assert!(
        page.contains("Hello from a berth Service")
            && page.contains("Stored in MariaDB through the Service network"),
        "the post's page lacks its title or body"
    );

    // 3. A BackupSchedule could back the Database member up: a one-off Backup logs into the
    //    compose-configured MariaDB with the login Secret derived from the compose file's
    //    own environment, and its dump holds the post.
    let login = secret_data(&w, "blog-mariadb-login");
    assert_eq!(
        (login.get("password"), login.get("database").map(String::as_str)),
        (generated.get("SERVICE_PASSWORD_ROOT"), Some("wordpress")),
        "the login Secret is derived from the compose environment: {:?}",
        login.keys().collect::<Vec<_>>()
    );
    let dump = backup_once(&w, &cleanup, "blog-mariadb", "blog-once", "local");
    let dump = String::from_utf8_lossy(&dump);
    assert!(
        dump.contains("CREATE DATABASE") && dump.contains("`wordpress`"),
        "the dump is of the wordpress database: {}",
        dump.chars().take(2000).collect::<String>()
    );
    assert!(
        dump.contains("Hello from a berth Service"),
        "the dump ({} bytes of SQL) holds the post's title",
        dump.len()
    );
    let first_copy: BTreeMap<&str, String> = [
        ("blog-mariadb", only_container(&w, "blog-mariadb")),
        ("blog-wordpress", only_container(&w, "blog-wordpress")),
    ]
    .into();

    // 4. A second copy; berth killed (SIGKILL) as soon as its first child exists, restarted.
    w.apply(&manifests["blog2"]);
    let first_child = w.s.until("a child of blog2", Duration::from_secs(60), || {
        ["database/blog2-mariadb", "application/blog2-wordpress"]
            .into_iter()
            .find(|target| {
                w.s.run(&["get", target, "-n", &ns, "-o", "name"])
                    .status
                    .success()
            })
    });
    w.s.kill();
    let at_kill = containers_by_owner(&w);
    w.s.restart_hard();
    eprintln!("killed berth once {first_child} existed; containers then: {at_kill:?}");
    let t2 = Instant::now();
    let svc2 = wait_service_ready(&w, "blog2", SERVICE_READY);
    eprintln!(
        "restart→Ready of the second copy: {:.1} s",
        t2.elapsed().as_secs_f64()
    );
    assert_eq!(svc2["status"]["members"], "2/2", "{svc2:#}");
    w.rt.block_on(wordpress::wait_until_up(
        &base,
        &host("blog2"),
        Duration::from_secs(60),
    ))
    .unwrap();
    // The first copy is intact: same containers, same generated values, its post served.
    wait_service_ready(&w, "blog", SERVICE_READY);
    assert_eq!(secret_data(&w, "blog-generated"), generated, "generated once");
    for (child, id) in &first_copy {
        let now: Vec<String> = containers_of(&w, child).into_iter().map(|c| c.1).collect();
        assert_eq!(
            now.as_slice(),
            std::slice::from_ref(id),
            "{child} was not recreated"
        );
    }
    let page =
        w.rt.block_on(wordpress::read_post(&base, &host("blog"), post))
            .unwrap();
    assert!(page.contains("Hello from a berth Service"));
    // No duplicates: exactly one container per child (the Proxy's is cluster-scoped).
    let expected: BTreeMap<String, usize> = [
        "blog-mariadb",
        "blog-wordpress",
        "blog2-mariadb",
        "blog2-wordpress",
    ]
    .into_iter()
    .map(|c| (c.to_owned(), 1))
    .collect();
    assert_eq!(containers_by_owner(&w), expected, "one container per child");
    let proxies = w.s.run(&["get", "proxy", "-o", "name"]).ok();
    assert_eq!(
        proxies.trim(),
        format!("proxy/px{}", w.run.id),
        "no other Proxy on the server"
    );

    // 5. A foreign container (no berth label), named like the Services' containers.
    let foreign = format!("{ns}-blog-foreign");
    cleanup.container(&foreign);
    let busybox = w.rt.block_on(images::busybox_httpd(&w.run.docker));
    let foreign_id = docker_cli(&["run", "-d", "--name", &foreign, &busybox]).unwrap();

    // 6. Delete both: nothing of theirs is left but the retained volumes.
    let volumes: Vec<String> = ["blog", "blog2"]
        .iter()
        .map(|s| format!("{ns}-{s}_mariadb-data"))
        .collect();
    for v in &volumes {
        cleanup.volume(v);
        assert!(volume_exists(&w, v), "volume {v} exists while the Service runs");
    }
    w.s.run(&["delete", "service", "blog", "blog2", "-n", &ns]).ok();
    let deadline = Instant::now() + GONE;
    for svc in ["blog", "blog2"] {
        let (network, dest) = (format!("berth-svc-{ns}-{svc}"), format!("svc-{ns}-{svc}"));
        loop {
            if gone(&w, "service", svc) && gone(&w, "destination", &dest) && !network_exists(&w, &network) {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "service {svc}, its Destination and network not all gone after {GONE:?}: \
                     service {:#}\ndestination {:#}\nits network {network} holds: {:?}\n{}",
                    w.try_get("service", svc).unwrap_or_default()["metadata"],
                    w.try_get("destination", &dest).unwrap_or_default(),
                    attached(&w, &network),
                    diagnose(&w, svc)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    w.until("the children gone", GONE, || {
        (names(&w, "application").is_empty() && names(&w, "database").is_empty()).then_some(())
    });
    assert!(names(&w, "service").is_empty());
    let secrets: Vec<String> = names(&w, "secret")
        .into_iter()
        .filter(|s| s.starts_with("blog"))
        .collect();
    assert!(secrets.is_empty(), "secrets left: {secrets:?}");
    assert_eq!(containers_by_owner(&w), BTreeMap::new(), "containers left");
    for v in &volumes {
        assert!(volume_exists(&w, v), "deletionPolicy Retain keeps {v}");
    }
    let state = w.rt.block_on(w.run.docker.inspect_container(&foreign)).unwrap();
    assert!(
        state.running && state.id == foreign_id,
        "the foreign container is untouched"
    );
    for v in &volumes {
        w.rt.block_on(w.run.docker.remove_volume(v)).unwrap();
    }
    w.rt.block_on(w.run.docker.remove_container(&foreign)).unwrap();
}

/// A busybox member that becomes healthy a second after it starts (`/tmp/up`), and stops
/// at once on SIGTERM.
fn slow_member(image: &str, depends_on: Option<&str>) -> String {
    let depends = depends_on
        .map(|d| format!("    depends_on:\n      {d}:\n        condition: service_healthy\n"))
        .unwrap_or_default();
    format!(
        "    image: {image}\n    entrypoint: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; sleep 1; touch /tmp/up; \
         while true; do sleep 1 & wait $$!; done\"]\n    healthcheck:\n      test: [\"CMD-SHELL\", \"test -f /tmp/up\"]\n      \
         interval: 1s\n      timeout: 1s\n      retries: 30\n{depends}"
    )
}

/// Collects the run's container events (in a task on `w`'s runtime) from now on.
fn record_events(w: &World) -> Arc<Mutex<Vec<Event>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut events = w.run.docker.events(None);
    let run = w.run.id.clone();
    let sink = seen.clone();
    w.rt.spawn(async move {
        while let Some(Ok(e)) = events.next().await {
            if e.object == ObjectType::Container && e.attributes.get(label::RUN) == Some(&run) {
                sink.lock().unwrap().push(e);
            }
        }
    });
    seen
}

#[test]
fn service_healthy_dependencies_start_in_order() {
    let w = world();
    let image = w.rt.block_on(images::busybox_httpd(&w.run.docker));
    // Listed out of dependency order: the file's order must not decide.
    let compose = format!(
        "services:\n  c:\n{}  a:\n{}  b:\n{}",
        slow_member(&image, Some("b")),
        slow_member(&image, None),
        slow_member(&image, Some("a")),
    );
    let events = record_events(&w);
    let t0 = Instant::now();
    w.apply(&service(&w, "chain", &compose, ""));
    let svc = wait_service_ready(&w, "chain", SMALL_READY);
    eprintln!(
        "apply→Ready (3 members in a chain): {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(svc["status"]["members"], "3/3", "{svc:#}");

    let owner = |e: &Event| e.attributes.get(label::NAME).cloned().unwrap_or_default();
    // Every start and healthy of the three is in the stream by the time c is healthy.
    let seen = w.until("c's healthy event", Duration::from_secs(30), || {
        let seen = events.lock().unwrap().clone();
        seen.iter()
            .any(|e| owner(e) == "chain-c" && e.action == Action::HealthStatus(Health::Healthy))
            .then_some(seen)
    });
    let starts: Vec<(String, i64)> = seen
        .iter()
        .filter(|e| e.action == Action::Start)
        .map(|e| (owner(e), e.time_nanos))
        .collect();
    let order: Vec<&str> = starts.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        order,
        ["chain-a", "chain-b", "chain-c"],
        "each member started once, in dependency order: {seen:#?}"
    );
    let healthy = |o: &str| {
        seen.iter()
            .find(|e| owner(e) == o && e.action == Action::HealthStatus(Health::Healthy))
            .map(|e| e.time_nanos)
            .unwrap_or_else(|| panic!("no healthy event of {o}: {seen:#?}"))
    };
    let started = |o: &str| starts.iter().find(|(s, _)| s == o).unwrap().1;
    for (dependency, dependent) in [("chain-a", "chain-b"), ("chain-b", "chain-c")] {
        assert!(
            healthy(dependency) < started(dependent),
            "{dependent} started before {dependency} was healthy: {seen:#?}"
        );
    }
    eprintln!(
        "a healthy→b start: {:.2} s, b healthy→c start: {:.2} s",
        (started("chain-b") - healthy("chain-a")) as f64 / 1e9,
        (started("chain-c") - healthy("chain-b")) as f64 / 1e9
    );
}

/// A busybox member that idles (stopping at once on SIGTERM) with `env`.
fn idle_member(image: &str, env: &str) -> String {
    format!(
        "    image: {image}\n    entrypoint: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; \
         while true; do sleep 1 & wait $$!; done\"]\n    environment:\n      REVISION: \"{env}\"\n"
    )
}

#[test]
fn a_removed_compose_service_removes_its_child_and_an_edit_rolls_only_that_member() {
    let w = world();
    let image = w.rt.block_on(images::busybox_httpd(&w.run.docker));
    let v1 = format!(
        "services:\n  keep:\n{}  edit:\n{}  drop:\n{}",
        idle_member(&image, "1"),
        idle_member(&image, "1"),
        idle_member(&image, "1"),
    );
    w.apply(&service(&w, "stack", &v1, ""));
    let svc = wait_service_ready(&w, "stack", SMALL_READY);
    assert_eq!(svc["status"]["members"], "3/3", "{svc:#}");
    let keep = only_container(&w, "stack-keep");
    let edit = only_container(&w, "stack-edit");
    only_container(&w, "stack-drop");

    // `edit`'s environment changes, `drop` is gone from the file.
    let v2 = format!(
        "services:\n  keep:\n{}  edit:\n{}",
        idle_member(&image, "1"),
        idle_member(&image, "2"),
    );
    let t0 = Instant::now();
    w.apply(&service(&w, "stack", &v2, ""));
    w.until("stack-drop's child and container gone", SMALL_READY, || {
        (gone(&w, "application", "stack-drop") && containers_of(&w, "stack-drop").is_empty()).then_some(())
    });
    w.until("stack-edit rolled", SMALL_READY, || {
        match containers_of(&w, "stack-edit").as_slice() {
            [(_, id, status)] if *id != edit && status == "running" => Some(()),
            _ => None,
        }
    });
    let svc = wait_service_ready(&w, "stack", SMALL_READY);
    eprintln!("re-apply→Ready: {:.1} s", t0.elapsed().as_secs_f64());
    assert_eq!(svc["status"]["members"], "2/2", "{svc:#}");
    let listed: Vec<&str> = svc["status"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(!listed.contains(&"drop"), "drop is no member any more: {svc:#}");
    assert_eq!(
        only_container(&w, "stack-keep"),
        keep,
        "the unchanged member kept its container"
    );
    let edited = w.get("application", "stack-edit");
    assert!(
        edited["spec"]["env"].to_string().contains("\"2\""),
        "the edit reached the child: {edited:#}"
    );
    assert_eq!(
        names(&w, "application"),
        ["stack-edit", "stack-keep"],
        "only the two members' children are left"
    );
}
