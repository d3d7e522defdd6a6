//! The engine table: one small table of facts per database engine (image, port, data
//! directory, environment contract, readiness probe, dump and restore plans).
//!
//! Everything engine-specific lives here; the Database reconciler and the backup executor
//! only read these facts, they never branch on the engine. This module holds the types and
//! the plan builders; the rows of the table (and the scripts they run) are in `table`.
//!
//! # Guarantees
//! - No plan puts the password on a command line: it travels in the exec's environment
//!   (`PGPASSWORD`, `MYSQL_PWD`, `REDISCLI_AUTH`, ...) and shell scripts read it from there,
//!   so it is not in `argv` of the `docker exec`. [`Credentials`] and [`ExecPlan`] redact
//!   secrets in their `Debug` output.
//! - Usernames and database names reach shell scripts only through the environment, never
//!   spliced into the script text (no quoting bugs, no injection).
//! - [`Engine::dump`] writes one complete dump to stdout; [`Engine::restore`] reads exactly
//!   that format from stdin and replaces the data it covers.
//!
//! # Caveats
//! - Ran for real in the test suite: postgresql, mariadb, redis (on images built from
//!   Debian packages). mysql, mongodb, keydb, dragonfly and clickhouse plans are checked by
//!   unit tests only.
//! - mysql/mariadb: the root password is the Secret's `password` (the official images'
//!   `*_ROOT_PASSWORD`); dumps cover the Secret's database (`--databases DB
//!   --add-drop-database`), not the server's other databases.
//! - redis/keydb restore: the RDB is loaded by a temporary server on 127.0.0.1:[`RESTORE_PORT`]
//!   inside the container, and the live server replicates from it (`REPLICAOF`, full
//!   sync, then `REPLICAOF NO ONE`): the dataset is replaced without restarting the
//!   container, the volume's `dump.rdb` is never raced by a background save, and AOF is
//!   rewritten by the sync. The server is read-only while the sync runs.
//! - dragonfly restore writes `dump.rdb` into the data directory and shuts the server down
//!   without saving a second later; the container restarts and loads it (Dragonfly cannot
//!   replicate from a Redis-protocol master).
//! - mongodb: `mongodump`/`mongorestore` take the password as an option, so it is visible in
//!   the container's process list while the tool runs (never in the exec's argv).
//! - mongodb readiness succeeds on the official image's first-start temporary server too.

use berth_crds::kinds::database::DatabaseEngine;

/// Credentials as stored in the Database's Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user the application connects as.
    pub username: String,
    /// Its password (also the engine's superuser password where the engine has one).
    pub password: String,
    /// The database (redis: the database number).
    pub database: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .finish()
    }
}

/// A command run with `docker exec` in the database container.
#[derive(Clone, PartialEq, Eq)]
pub struct ExecPlan {
    /// The command, exec form.
    pub argv: Vec<String>,
    /// Extra environment of the exec (may carry the password).
    pub env: Vec<(String, String)>,
}

impl std::fmt::Debug for ExecPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<String> = self.env.iter().map(|(k, _)| format!("{k}=<redacted>")).collect();
        f.debug_struct("ExecPlan")
            .field("argv", &self.argv)
            .field("env", &env)
            .finish()
    }
}

impl ExecPlan {
    /// `env` as `KEY=value` strings, as Docker's exec API takes them.
    pub fn env_strings(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// Where a value of a template comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    /// A fixed string.
    Lit(&'static str),
    /// The username.
    User,
    /// The password.
    Password,
    /// The database.
    Database,
}

impl Val {
    fn resolve(self, c: &Credentials) -> String {
        match self {
            Self::Lit(s) => s.to_string(),
            Self::User => c.username.clone(),
            Self::Password => c.password.clone(),
            Self::Database => c.database.clone(),
        }
    }
}

/// An [`ExecPlan`] template: argv may name the user or database (never the password).
#[derive(Debug, Clone, Copy)]
struct Plan {
    argv: &'static [Val],
    env: &'static [(&'static str, Val)],
}

impl Plan {
    fn fill(&self, c: &Credentials) -> ExecPlan {
        ExecPlan {
            argv: self.argv.iter().map(|v| v.resolve(c)).collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.resolve(c)))
                .collect(),
        }
    }
}

/// The default database name when the Secret does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultDatabase {
    /// The Database object's name with `-` turned into `_` (a valid SQL identifier).
    ObjectName,
    /// A fixed name (redis: `0`).
    Fixed(&'static str),
}

/// The facts of one engine.
#[derive(Debug)]
pub struct Engine {
    /// Which engine.
    pub engine: DatabaseEngine,
    /// The official image, without tag.
    pub image: &'static str,
    /// The default tag (`spec.version` overrides it).
    pub tag: &'static str,
    /// The port the engine listens on in its container.
    pub port: u16,
    /// Where the data volume is mounted.
    pub data_dir: &'static str,
    /// The username generated credentials get.
    pub default_username: &'static str,
    /// The database generated credentials get.
    pub default_database: DefaultDatabase,
    /// URL scheme of the connection-URL template.
    pub url_scheme: &'static str,
    /// What follows `host:port` in the connection URL (`$(database)` is the Secret's key).
    pub url_path: &'static str,
    /// Whether the URL carries a username (redis has only a password).
    pub url_user: bool,
    /// Environment of the container: the official image's contract.
    container_env: &'static [(&'static str, Val)],
    /// Variables left out when the username is the superuser (`root`): the official
    /// images refuse to create `root` as an extra user.
    user_env: &'static [(&'static str, Val)],
    /// The superuser name that [`Engine::user_env`] is skipped for.
    superuser: Option<&'static str>,
    /// Replaces the image's `CMD` (exec form) when not empty.
    pub args: &'static [&'static str],
    /// Exits 0 once the engine accepts connections.
    ready: Plan,
    /// Writes a complete dump to stdout.
    dump: Plan,
    /// Loads a dump from stdin.
    restore: Plan,
}

/// The port the redis/keydb restore plan's temporary server listens on (127.0.0.1 only).
pub const RESTORE_PORT: u16 = 6399;

mod table;

use table::{CLICKHOUSE, DRAGONFLY, KEYDB, MARIADB, MONGODB, MYSQL, POSTGRESQL, REDIS};

/// The facts of `e`.
pub fn engine(e: DatabaseEngine) -> &'static Engine {
    match e {
        DatabaseEngine::Postgresql => &POSTGRESQL,
        DatabaseEngine::Mysql => &MYSQL,
        DatabaseEngine::Mariadb => &MARIADB,
        DatabaseEngine::Mongodb => &MONGODB,
        DatabaseEngine::Redis => &REDIS,
        DatabaseEngine::Keydb => &KEYDB,
        DatabaseEngine::Dragonfly => &DRAGONFLY,
        DatabaseEngine::Clickhouse => &CLICKHOUSE,
    }
}

/// Every engine, in declaration order.
pub const ALL: [DatabaseEngine; 8] = [
    DatabaseEngine::Postgresql,
    DatabaseEngine::Mysql,
    DatabaseEngine::Mariadb,
    DatabaseEngine::Mongodb,
    DatabaseEngine::Redis,
    DatabaseEngine::Keydb,
    DatabaseEngine::Dragonfly,
    DatabaseEngine::Clickhouse,
];

impl Engine {
    /// Writes a complete dump to stdout.
    pub fn dump(&self, c: &Credentials) -> ExecPlan {
        self.dump.fill(c)
    }

    /// Reads a dump (as [`Engine::dump`] writes it) from stdin and loads it.
    pub fn restore(&self, c: &Credentials) -> ExecPlan {
        self.restore.fill(c)
    }

    /// Exits 0 once the engine accepts connections.
    pub fn ready(&self, c: &Credentials) -> ExecPlan {
        self.ready.fill(c)
    }

    /// The image to run: `image` if given, else the official image at `version` (or the
    /// default tag).
    pub fn image_for(&self, image: Option<&str>, version: Option<&str>) -> String {
        match image {
            Some(i) => i.to_string(),
            None => format!("{}:{}", self.image, version.unwrap_or(self.tag)),
        }
    }

    /// The container's environment under the official image's contract.
    pub fn container_env(&self, c: &Credentials) -> Vec<(String, String)> {
        let skip_user = self.superuser == Some(c.username.as_str());
        self.container_env
            .iter()
            .chain(self.user_env.iter().filter(|_| !skip_user))
            .map(|(k, v)| (k.to_string(), v.resolve(c)))
            .collect()
    }

    /// Generated-credential defaults for a Database named `name`, with `password`.
    pub fn default_credentials(&self, name: &str, password: String) -> Credentials {
        Credentials {
            username: self.default_username.to_string(),
            password,
            database: match self.default_database {
                DefaultDatabase::ObjectName => name.replace('-', "_"),
                DefaultDatabase::Fixed(d) => d.to_string(),
            },
        }
    }

    /// The connection URL with `$(username)`, `$(password)` and `$(database)` standing for
    /// the Secret's keys: never the password itself.
    pub fn url_template(&self, host: &str) -> String {
        let user = if self.url_user { "$(username)" } else { "" };
        format!(
            "{}://{user}:$(password)@{host}:{}{}",
            self.url_scheme, self.port, self.url_path
        )
    }
}

#[cfg(test)]
mod tests {
    use super::table::REDIS_RESTORE;
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            username: "alice".into(),
            password: "s3cr3t-Pa55".into(),
            database: "shop".into(),
        }
    }

    fn env<'a>(p: &'a ExecPlan, k: &str) -> Option<&'a str> {
        p.env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_engine_is_in_the_table_under_its_own_name() {
        for e in ALL {
            assert_eq!(engine(e).engine, e);
        }
    }

    #[test]
    fn no_plan_puts_the_password_on_the_command_line() {
        let c = creds();
        for e in ALL {
            let t = engine(e);
            for (what, plan) in [
                ("dump", t.dump(&c)),
                ("restore", t.restore(&c)),
                ("ready", t.ready(&c)),
            ] {
                assert!(
                    plan.argv.iter().all(|a| !a.contains(&c.password)),
                    "{e:?} {what}: password in argv {:?}",
                    plan.argv
                );
                assert!(
                    !format!("{plan:?}").contains(&c.password),
                    "{e:?} {what}: password in Debug"
                );
                assert!(!plan.argv.is_empty(), "{e:?} {what}: empty plan");
            }
            assert!(t.args.iter().all(|a| !a.contains(&c.password)));
            assert!(!t.url_template("db.ns").contains(&c.password));
        }
        assert!(!format!("{c:?}").contains(&c.password));
    }

    #[test]
    fn scripts_read_names_from_the_environment_not_the_script_text() {
        let c = Credentials {
            username: "x'; rm -rf /; '".into(),
            password: "p".into(),
            database: "d$(reboot)".into(),
        };
        for e in ALL {
            let t = engine(e);
            for plan in [t.dump(&c), t.restore(&c), t.ready(&c)] {
                if plan.argv.first().map(String::as_str) == Some("sh") {
                    let script = &plan.argv[2];
                    assert!(
                        !script.contains(&c.username) && !script.contains(&c.database),
                        "{e:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn postgresql_plans() {
        let t = engine(DatabaseEngine::Postgresql);
        let c = creds();
        let d = t.dump(&c);
        assert_eq!(
            d.argv,
            ["pg_dump", "-Fc", "--no-password", "-U", "alice", "-d", "shop"]
        );
        assert_eq!(env(&d, "PGPASSWORD"), Some("s3cr3t-Pa55"));
        let r = t.restore(&c);
        assert_eq!(r.argv[0], "pg_restore");
        for flag in [
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
        ] {
            assert!(r.argv.iter().any(|a| a == flag), "{flag}");
        }
        assert_eq!(r.argv[r.argv.len() - 2..], ["-d", "shop"]);
        assert_eq!(t.ready(&c).argv[..4], ["pg_isready", "-q", "-h", "127.0.0.1"]);
        assert_eq!(
            t.container_env(&c),
            [
                ("POSTGRES_USER".to_string(), "alice".to_string()),
                ("POSTGRES_PASSWORD".into(), "s3cr3t-Pa55".into()),
                ("POSTGRES_DB".into(), "shop".into())
            ]
        );
        assert_eq!(t.image_for(None, None), "postgres:17");
        assert_eq!(t.image_for(None, Some("15")), "postgres:15");
        assert_eq!(t.image_for(Some("my/pg:1"), Some("15")), "my/pg:1");
        assert_eq!(
            t.url_template("orders.shop"),
            "postgresql://$(username):$(password)@orders.shop:5432/$(database)"
        );
    }

    #[test]
    fn mysql_plans() {
        let t = engine(DatabaseEngine::Mysql);
        let c = creds();
        let d = t.dump(&c);
        assert_eq!(d.argv[..3], ["mysqldump", "-uroot", "--single-transaction"]);
        assert_eq!(d.argv[d.argv.len() - 2..], ["--databases", "shop"]);
        assert!(d.argv.iter().any(|a| a == "--add-drop-database"));
        assert_eq!(env(&d, "MYSQL_PWD"), Some("s3cr3t-Pa55"));
        assert_eq!(t.restore(&c).argv, ["mysql", "-uroot"]);
        assert_eq!(t.ready(&c).argv[..2], ["mysqladmin", "ping"]);
        let names: Vec<_> = t.container_env(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "MYSQL_ROOT_PASSWORD",
                "MYSQL_DATABASE",
                "MYSQL_USER",
                "MYSQL_PASSWORD"
            ]
        );
        let root = Credentials {
            username: "root".into(),
            ..creds()
        };
        let names: Vec<_> = t.container_env(&root).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["MYSQL_ROOT_PASSWORD", "MYSQL_DATABASE"],
            "root is not created twice"
        );
    }

    #[test]
    fn mariadb_plans() {
        let t = engine(DatabaseEngine::Mariadb);
        let c = creds();
        let d = t.dump(&c);
        assert_eq!(d.argv[..3], ["mariadb-dump", "-uroot", "--single-transaction"]);
        assert_eq!(d.argv[d.argv.len() - 2..], ["--databases", "shop"]);
        assert!(
            !d.argv.iter().any(|a| a.starts_with("--set-gtid")),
            "mysql-only flag"
        );
        assert_eq!(env(&d, "MYSQL_PWD"), Some("s3cr3t-Pa55"));
        let r = t.restore(&c);
        assert_eq!(r.argv, ["mariadb", "-uroot"]);
        assert_eq!(env(&r, "MYSQL_PWD"), Some("s3cr3t-Pa55"));
        assert_eq!(t.ready(&c).argv[..3], ["mariadb-admin", "ping", "--protocol=tcp"]);
        let e = t.container_env(&c);
        assert!(e.contains(&("MARIADB_ROOT_PASSWORD".into(), "s3cr3t-Pa55".into())));
        assert!(e.contains(&("MARIADB_USER".into(), "alice".into())));
        assert!(e.contains(&("MARIADB_DATABASE".into(), "shop".into())));
        assert_eq!(t.image_for(None, None), "mariadb:11.4");
        assert_eq!(t.default_credentials("my-db", "p".into()).database, "my_db");
    }

    #[test]
    fn mongodb_plans() {
        let t = engine(DatabaseEngine::Mongodb);
        let c = creds();
        let d = t.dump(&c);
        assert_eq!(d.argv[..2], ["sh", "-c"]);
        assert!(d.argv[2].starts_with("exec mongodump --archive"));
        assert_eq!(env(&d, "BERTH_USERNAME"), Some("alice"));
        assert_eq!(env(&d, "BERTH_PASSWORD"), Some("s3cr3t-Pa55"));
        let r = t.restore(&c);
        assert!(r.argv[2].starts_with("exec mongorestore --archive --drop"));
        assert_eq!(t.ready(&c).argv[0], "mongosh");
        assert_eq!(
            t.url_template("m.ns"),
            "mongodb://$(username):$(password)@m.ns:27017/$(database)?authSource=admin"
        );
    }

    #[test]
    fn redis_plans() {
        let t = engine(DatabaseEngine::Redis);
        let c = t.default_credentials("cache", "pw".into());
        assert_eq!((c.username.as_str(), c.database.as_str()), ("default", "0"));
        let d = t.dump(&c);
        assert_eq!(d.argv, ["redis-cli", "--rdb", "-"]);
        assert_eq!(env(&d, "REDISCLI_AUTH"), Some("pw"));
        let r = t.restore(&c);
        assert_eq!(r.argv[..2], ["sh", "-c"]);
        assert!(r.argv[2].contains(&format!("port={RESTORE_PORT}")));
        assert!(r.argv[2].contains("replicaof no one"));
        assert_eq!(env(&r, "SERVER"), Some("redis-server"));
        let ready = t.ready(&c);
        assert!(ready.argv[2].contains("PONG"));
        assert_eq!(t.container_env(&c), [("REDIS_PASSWORD".into(), "pw".into())]);
        assert!(t.args[2].contains("--requirepass \"$REDIS_PASSWORD\""));
        assert_eq!(
            t.url_template("c.ns"),
            "redis://:$(password)@c.ns:6379/$(database)"
        );
    }

    #[test]
    fn keydb_plans() {
        let t = engine(DatabaseEngine::Keydb);
        let c = creds();
        assert_eq!(t.dump(&c).argv, ["keydb-cli", "--rdb", "-"]);
        let r = t.restore(&c);
        assert_eq!(r.argv[2], REDIS_RESTORE);
        assert_eq!(env(&r, "CLI"), Some("keydb-cli"));
        assert_eq!(env(&r, "SERVER"), Some("keydb-server"));
        assert_eq!(env(&t.ready(&c), "CLI"), Some("keydb-cli"));
        assert!(t.args[2].contains("keydb-server"));
        assert_eq!(
            t.container_env(&c),
            [("KEYDB_PASSWORD".into(), "s3cr3t-Pa55".into())]
        );
    }

    #[test]
    fn dragonfly_plans() {
        let t = engine(DatabaseEngine::Dragonfly);
        let c = creds();
        let d = t.dump(&c);
        assert!(d.argv[2].contains("save rdb"));
        assert_eq!(env(&d, "REDISCLI_AUTH"), Some("s3cr3t-Pa55"));
        let r = t.restore(&c);
        assert!(r.argv[2].contains("mv /data/dump.rdb.berth-tmp /data/dump.rdb"));
        assert!(r.argv[2].contains("shutdown nosave"));
        let e = t.container_env(&c);
        assert!(e.contains(&("DFLY_requirepass".into(), "s3cr3t-Pa55".into())));
        assert!(e.contains(&("DFLY_dbfilename".into(), "dump".into())));
    }

    #[test]
    fn clickhouse_plans() {
        let t = engine(DatabaseEngine::Clickhouse);
        let c = creds();
        let d = t.dump(&c);
        assert!(d.argv[2].contains("SHOW CREATE TABLE"));
        assert!(d.argv[2].contains("FORMAT SQLInsert"));
        assert_eq!(env(&d, "BERTH_DATABASE"), Some("shop"));
        assert_eq!(env(&d, "CLICKHOUSE_PASSWORD"), Some("s3cr3t-Pa55"));
        assert_eq!(
            t.restore(&c).argv,
            ["clickhouse-client", "--multiquery", "--database", "shop"]
        );
        assert_eq!(t.ready(&c).argv, ["clickhouse-client", "-q", "SELECT 1"]);
        assert_eq!(t.port, 8123);
    }

    #[test]
    fn shell_scripts_parse() {
        // `sh -n` checks the syntax of every script plan without running it.
        let c = creds();
        for e in ALL {
            let t = engine(e);
            let mut scripts: Vec<String> = [t.dump(&c), t.restore(&c), t.ready(&c)]
                .into_iter()
                .filter(|p| p.argv[0] == "sh")
                .map(|p| p.argv[2].clone())
                .collect();
            if t.args.first() == Some(&"sh") {
                scripts.push(t.args[2].to_string());
            }
            for s in scripts {
                let out = std::process::Command::new("sh")
                    .args(["-n", "-c", &s])
                    .output()
                    .expect("sh runs");
                assert!(
                    out.status.success(),
                    "{e:?}: {}\n{s}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
