//! One test's berth: a `berth serve` scoped to the test's own run label and network, its
//! Project, and what the Database and backup tests share on top of it — reading objects,
//! waiting on conditions, a Ready [`Database`] with its credentials, the engines' clients as
//! exec plans, and [`Storages`] (a SeaweedFS and a local directory declared as the
//! BackupStorages `s3` and `local`).
//!
//! # Guarantees
//! - Every [`World`] has its own run id (the `dev.berth.run` label on everything berth
//!   creates), default network `berth-<prefix>-<id>` and Project `p<id>` (namespace
//!   `p<id>-production`): tests in one process run in parallel without meeting.
//! - Fields drop in declaration order: the server is killed first, then every Docker object
//!   carrying the run label is removed (also when the test panics). Hold [`Storages`] after
//!   the [`World`] so SeaweedFS outlives the berth that writes to it.
//! - Every wait has a deadline and fails with the server's log tail.

use std::time::Duration;

use berth_controllers::{
    backup::storage::{Local, S3, S3Config, Storage},
    database::engine::{Credentials, ExecPlan},
};
use serde_json::Value;

use super::{
    docker_run::TestRun,
    files::files_under,
    seaweedfs,
    server::{Backend, BerthServer, OutputExt},
};

/// How long a Database may take to become Ready (two cores shared with other test
/// binaries; initdb alone can take seconds).
pub const READY_TIMEOUT: Duration = Duration::from_secs(240);

/// Finished backups in a storage: paths and sizes.
pub type Listing = Vec<(String, u64)>;

/// A test's berth server and Docker slice.
pub struct World {
    /// The server (killed first on drop).
    pub s: BerthServer,
    /// The run: its label and cleanup (dropped after the server).
    pub run: TestRun,
    /// A runtime for the Docker adapter and storage clients.
    pub rt: tokio::runtime::Runtime,
    /// The Project's namespace.
    pub ns: String,
}

impl World {
    /// Starts berth with the run label, network `berth-<prefix>-<run id>` and `extra` serve
    /// arguments, applies the Project and waits until the default Destination is Ready.
    pub fn start(prefix: &str, extra: &[&str]) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let run = rt.block_on(TestRun::start());
        let label = format!("dev.berth.run={}", run.id);
        let net = format!("berth-{prefix}-{}", run.id);
        let mut args = vec!["--docker-label", &label, "--default-network", &net];
        args.extend_from_slice(extra);
        let s = BerthServer::start(Backend::Embedded, &args);
        let p = format!("p{}", run.id);
        let w = World {
            s,
            run,
            rt,
            ns: format!("{p}-production"),
        };
        w.apply(&format!(
            "apiVersion: berth.dev/v1\nkind: Project\nmetadata:\n  name: {p}\nspec: {{}}\n"
        ));
        // berth creates the default Destination at start: wait for it to exist, then be Ready.
        w.until("the default destination", Duration::from_secs(30), || {
            w.s.run(&["get", "destination", "default"])
                .status
                .success()
                .then_some(())
        });
        w.s.run(&[
            "wait",
            "destination/default",
            "--for=condition=Ready",
            "--timeout",
            "30s",
        ])
        .ok();
        w
    }

    /// `berth apply -f -` of `yaml`; panics when it fails.
    pub fn apply(&self, yaml: &str) {
        self.s.run_stdin(&["apply", "-f", "-"], yaml).ok();
    }

    /// Object `kind/name` of the namespace, or `None` when `berth get` fails.
    pub fn try_get(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self.s.run(&["get", kind, name, "-n", &self.ns, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_str(&out.out()).unwrap())
    }

    /// Object `kind/name` of the namespace; panics when it cannot be read.
    pub fn get(&self, kind: &str, name: &str) -> Value {
        let out = self
            .s
            .run(&["get", kind, name, "-n", &self.ns, "-o", "json"])
            .ok();
        serde_json::from_str(&out).unwrap()
    }

    /// Objects of `kind` in the namespace matching label `selector`.
    pub fn list(&self, kind: &str, selector: &str) -> Vec<Value> {
        let out = self
            .s
            .run(&["get", kind, "-n", &self.ns, "-l", selector, "-o", "json"])
            .ok();
        let v: Value = serde_json::from_str(&out).unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `f` every 100 ms until it returns a value; panics with `what` and the server's
    /// log tail after `timeout`.
    pub fn until<T>(&self, what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
        self.s.until_every(what, timeout, Duration::from_millis(100), f)
    }

    /// Waits until the Database is Ready (its engine answered the probe) for its current
    /// generation, with its container running.
    pub fn wait_ready(&self, name: &str) -> Value {
        self.wait_condition(name, "Ready", "EngineReady")
    }

    /// Waits until condition `type_` of Database `name` has `reason` for its current
    /// generation (and, for Ready, its container runs).
    pub fn wait_condition(&self, name: &str, type_: &str, reason: &str) -> Value {
        self.until(
            &format!("database {name}: {type_}={reason}"),
            READY_TIMEOUT,
            || {
                let db = self.try_get("database", name)?;
                let generation = db.pointer("/metadata/generation").and_then(Value::as_i64);
                let found = db
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c["type"] == type_
                            && c["reason"] == reason
                            && c["observedGeneration"].as_i64() == generation
                    });
                let running = db["status"]["container"]
                    .as_str()
                    .is_some_and(|c| self.container_id(c).is_some());
                (found && (type_ != "Ready" || running)).then_some(db)
            },
        )
    }

    /// The id of `container` while it runs.
    pub fn container_id(&self, container: &str) -> Option<String> {
        let s = self
            .rt
            .block_on(self.run.docker.inspect_container(container))
            .ok()?;
        s.running.then_some(s.id)
    }

    /// The credentials in the Secret a Database's status names.
    pub fn credentials(&self, db: &Value) -> Credentials {
        let secret = db["status"]["credentialsSecret"].as_str().unwrap();
        let out = self
            .s
            .run(&[
                "get",
                "secret",
                secret,
                "-n",
                &self.ns,
                "-o",
                "json",
                "--show-secrets",
            ])
            .ok();
        let secret: Value = serde_json::from_str(&out).unwrap();
        let data = &secret["spec"]["data"];
        let key = |k: &str| data[k].as_str().unwrap().to_owned();
        Credentials {
            username: key("username"),
            password: key("password"),
            database: key("database"),
        }
    }

    /// `docker exec` of `plan` in `container` (through the adapter); returns trimmed stdout
    /// and panics when it exits non-zero.
    pub fn exec(&self, container: &str, plan: &ExecPlan) -> String {
        let env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let argv: Vec<&str> = plan.argv.iter().map(String::as_str).collect();
        let out = self
            .rt
            .block_on(self.run.docker.exec_with_env(container, &argv, &env))
            .unwrap();
        assert_eq!(out.exit_code, 0, "{:?}: {}{}", plan.argv, out.stderr, out.stdout);
        out.stdout.trim().to_owned()
    }
}

/// An [`ExecPlan`] of literal arguments and environment.
pub fn plan(argv: &[&str], env: &[(&str, &str)]) -> ExecPlan {
    ExecPlan {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// A SeaweedFS and a local directory, declared in a [`World`] as BackupStorages `local` and
/// `s3` (key prefix `prefix`), both Ready.
pub struct Storages {
    /// The S3 server.
    pub fs: seaweedfs::SeaweedFs,
    /// The local storage's directory.
    pub dir: tempfile::TempDir,
    prefix: String,
}

impl Storages {
    /// Starts SeaweedFS, applies the storages (and the Secret with the S3 keys) in `w`, and
    /// waits until both are Ready.
    pub fn start(w: &World, prefix: &str) -> Storages {
        let fs = w.rt.block_on(seaweedfs::start(&format!("bk-{}", w.run.id)));
        let dir = tempfile::Builder::new()
            .prefix("berth-backups-")
            .tempdir()
            .unwrap();
        w.apply(&fs.storages_yaml(&w.ns, dir.path(), prefix));
        for storage in ["local", "s3"] {
            w.s.run(&[
                "wait",
                &format!("backupstorage/{storage}"),
                "--for=condition=Ready",
                "--timeout",
                "60s",
            ])
            .ok();
        }
        Storages {
            fs,
            dir,
            prefix: prefix.to_owned(),
        }
    }

    /// The local storage, as berth opens it.
    pub fn local(&self) -> Storage {
        Storage::Local(Local::new(self.dir.path()))
    }

    /// The S3 storage, as berth opens it.
    pub fn s3(&self) -> Storage {
        self.s3_at(&self.prefix)
    }

    /// The S3 bucket under key prefix `prefix`.
    pub fn s3_at(&self, prefix: &str) -> Storage {
        Storage::S3(
            S3::new(&S3Config {
                endpoint: self.fs.endpoint(),
                bucket: self.fs.bucket().to_owned(),
                region: "us-east-1".into(),
                path_style: true,
                prefix: prefix.to_owned(),
                access_key_id: seaweedfs::ACCESS_KEY.into(),
                secret_access_key: seaweedfs::SECRET_KEY.into(),
            })
            .unwrap(),
        )
    }

    /// Finished backups in both storages: (local files, S3 objects).
    pub fn stored(&self, w: &World) -> (Listing, Listing) {
        let local = w.rt.block_on(self.local().list("")).unwrap();
        let s3 = w.rt.block_on(self.s3().list("")).unwrap();
        (local, s3)
    }

    /// The hex sha256 of the finished backup at `path` in `storage`, read back through it.
    pub fn sha256(&self, w: &World, storage: &Storage, path: &str) -> String {
        use futures::TryStreamExt;
        use sha2::{Digest, Sha256};
        w.rt.block_on(async {
            let mut hasher = Sha256::new();
            let mut stream = storage.read(path).await.unwrap();
            while let Some(chunk) = stream.try_next().await.unwrap() {
                hasher.update(&chunk);
            }
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
    }

    /// Every file under the local storage's directory, finished or not.
    pub fn local_files(&self) -> Vec<String> {
        files_under(self.dir.path())
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }
}

/// A Ready Database of a [`World`].
pub struct Database {
    /// Its name.
    pub name: String,
    /// Its running container.
    pub container: String,
    /// The credentials of its generated Secret.
    pub creds: Credentials,
}

impl World {
    /// Applies Database `name` of `engine` on `image` (destination `default`), waits until
    /// it is Ready, and reads its container and credentials.
    pub fn database(&self, name: &str, engine: &str, image: &str) -> Database {
        self.apply(&format!(
            "apiVersion: berth.dev/v1\nkind: Database\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec: {{engine: {engine}, image: {image}, destination: default}}\n",
            ns = self.ns
        ));
        let db = self.wait_ready(name);
        Database {
            name: name.to_owned(),
            container: db["status"]["container"].as_str().unwrap().to_owned(),
            creds: self.credentials(&db),
        }
    }
}

/// `psql` of `sql` as the Database's user, unaligned tuples only, stopping at the first error.
pub fn psql(c: &Credentials, sql: &str) -> ExecPlan {
    plan(
        &[
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-qtA",
            "-U",
            &c.username,
            "-d",
            &c.database,
            "-c",
            sql,
        ],
        &[],
    )
}

/// `mariadb` of `sql` as the Database's user, tab-separated without column names.
pub fn mariadb(c: &Credentials, sql: &str) -> ExecPlan {
    plan(
        &["mariadb", "-N", "-B", "-u", &c.username, &c.database, "-e", sql],
        &[("MYSQL_PWD", &c.password)],
    )
}

/// `redis-cli` with `args` on the Database's database number, authenticated.
pub fn redis_cli(c: &Credentials, args: &[&str]) -> ExecPlan {
    let mut argv = vec!["redis-cli", "-n", &c.database];
    argv.extend_from_slice(args);
    plan(&argv, &[("REDISCLI_AUTH", &c.password)])
}
