//! The engine table: one small table of facts per database engine (image, port, data
//! directory, environment contract, readiness probe, dump and restore plans).
//!
//! Everything engine-specific lives here; the Database reconciler and the backup executor
//! only read these facts, they never branch on the engine.
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

use Val::{Database as D, Lit as L, Password as P, User as U};

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

/// redis/keydb restore: a temporary server loads the RDB, the live server full-syncs from
/// it as a replica, then is promoted back. `$CLI`/`$SERVER` name the binaries.
const REDIS_RESTORE: &str = r#"set -eu
port=6399
dir=$("$CLI" --raw config get dir | sed -n 2p)
[ -n "$dir" ] || { echo "cannot read the server's dir" >&2; exit 1; }
tmp="berth-restore-$$.rdb"
tcli() { (unset REDISCLI_AUTH; "$CLI" -p "$port" "$@"); }
cleanup() { tcli shutdown nosave >/dev/null 2>&1 || true; rm -f "$dir/$tmp"; }
trap cleanup EXIT
cat > "$dir/$tmp"
(unset REDISCLI_AUTH; "$SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" --dbfilename "$tmp" \
  --save '' --appendonly no --repl-diskless-sync-delay 0 --daemonize yes --logfile '' --pidfile '')
wait_for() { i=0; until eval "$1"; do i=$((i+1)); [ "$i" -lt 3000 ] || { echo "timed out: $2" >&2; exit 1; }; sleep 0.1; done; }
wait_for '[ "$(tcli ping 2>/dev/null)" = PONG ]' "the temporary server did not load the dump"
[ "$("$CLI" replicaof 127.0.0.1 "$port")" = OK ] || { echo "replicaof failed" >&2; exit 1; }
wait_for '"$CLI" info replication | grep -q "master_link_status:up"' "the server did not sync the dump"
[ "$("$CLI" replicaof no one)" = OK ] || { echo "replicaof no one failed" >&2; exit 1; }
"#;

/// dragonfly dump: `SAVE RDB` into the data directory, stream the file, remove it.
const DRAGONFLY_DUMP: &str = r#"set -eu
f="berth-dump-$$"
trap 'rm -f "/data/$f.rdb"' EXIT
[ "$(redis-cli save rdb "$f")" = OK ] || { echo "save failed" >&2; exit 1; }
cat "/data/$f.rdb"
"#;

/// dragonfly restore: the RDB becomes the snapshot loaded at start, then the server stops
/// without saving (in the background, so the exec reports its own exit code first).
const DRAGONFLY_RESTORE: &str = r#"set -eu
cat > /data/dump.rdb.berth-tmp
rm -f /data/dump-summary.dfs /data/dump-*.dfs
mv /data/dump.rdb.berth-tmp /data/dump.rdb
(sleep 1; redis-cli shutdown nosave) >/dev/null 2>&1 &
"#;

/// clickhouse dump: per table, `DROP` + `CREATE` + the rows as `INSERT` statements.
const CLICKHOUSE_DUMP: &str = r#"set -eu
q() { clickhouse-client --database "$BERTH_DATABASE" -q "$1"; }
for t in $(q "SELECT name FROM system.tables WHERE database = currentDatabase() AND NOT is_temporary ORDER BY name FORMAT TSVRaw"); do
  printf 'DROP TABLE IF EXISTS `%s`;\n' "$t"
  q "SHOW CREATE TABLE \`$t\` FORMAT TSVRaw"
  printf ';\n'
  q "SELECT * FROM \`$t\` FORMAT SQLInsert SETTINGS output_format_sql_insert_table_name = '$t', output_format_sql_insert_include_column_names = 1"
done
"#;

/// mongodb: the tool with the credentials from the environment.
const MONGO_DUMP: &str = r#"exec mongodump --archive --quiet --authenticationDatabase admin --username "$BERTH_USERNAME" --password "$BERTH_PASSWORD""#;
const MONGO_RESTORE: &str = r#"exec mongorestore --archive --drop --quiet --authenticationDatabase admin --username "$BERTH_USERNAME" --password "$BERTH_PASSWORD""#;

/// redis/keydb readiness: `PING` answered `PONG` (redis-cli exits 0 on error replies).
const REDIS_READY: &str = r#"[ "$("$CLI" ping)" = PONG ]"#;

static POSTGRESQL: Engine = Engine {
    engine: DatabaseEngine::Postgresql,
    image: "postgres",
    tag: "17",
    port: 5432,
    data_dir: "/var/lib/postgresql/data",
    default_username: "postgres",
    default_database: DefaultDatabase::ObjectName,
    url_scheme: "postgresql",
    url_path: "/$(database)",
    url_user: true,
    container_env: &[("POSTGRES_USER", U), ("POSTGRES_PASSWORD", P), ("POSTGRES_DB", D)],
    user_env: &[],
    superuser: None,
    args: &[],
    // Over TCP: the official entrypoint's first-start server listens on the socket only.
    ready: Plan {
        argv: &[
            L("pg_isready"),
            L("-q"),
            L("-h"),
            L("127.0.0.1"),
            L("-U"),
            U,
            L("-d"),
            D,
        ],
        env: &[],
    },
    dump: Plan {
        argv: &[L("pg_dump"), L("-Fc"), L("--no-password"), L("-U"), U, L("-d"), D],
        env: &[("PGPASSWORD", P)],
    },
    restore: Plan {
        argv: &[
            L("pg_restore"),
            L("--clean"),
            L("--if-exists"),
            L("--no-owner"),
            L("--no-acl"),
            L("--single-transaction"),
            L("--exit-on-error"),
            L("--no-password"),
            L("-U"),
            U,
            L("-d"),
            D,
        ],
        env: &[("PGPASSWORD", P)],
    },
};

static MYSQL: Engine = Engine {
    engine: DatabaseEngine::Mysql,
    image: "mysql",
    tag: "8.4",
    port: 3306,
    data_dir: "/var/lib/mysql",
    default_username: "berth",
    default_database: DefaultDatabase::ObjectName,
    url_scheme: "mysql",
    url_path: "/$(database)",
    url_user: true,
    container_env: &[("MYSQL_ROOT_PASSWORD", P), ("MYSQL_DATABASE", D)],
    user_env: &[("MYSQL_USER", U), ("MYSQL_PASSWORD", P)],
    superuser: Some("root"),
    args: &[],
    // Over TCP: the first-start server runs with --skip-networking.
    ready: Plan {
        argv: &[
            L("mysqladmin"),
            L("ping"),
            L("--protocol=tcp"),
            L("-h"),
            L("127.0.0.1"),
            L("-uroot"),
        ],
        env: &[("MYSQL_PWD", P)],
    },
    dump: Plan {
        argv: &[
            L("mysqldump"),
            L("-uroot"),
            L("--single-transaction"),
            L("--routines"),
            L("--triggers"),
            L("--events"),
            L("--set-gtid-purged=OFF"),
            L("--add-drop-database"),
            L("--databases"),
            D,
        ],
        env: &[("MYSQL_PWD", P)],
    },
    restore: Plan {
        argv: &[L("mysql"), L("-uroot")],
        env: &[("MYSQL_PWD", P)],
    },
};

static MARIADB: Engine = Engine {
    engine: DatabaseEngine::Mariadb,
    image: "mariadb",
    tag: "11.4",
    port: 3306,
    data_dir: "/var/lib/mysql",
    default_username: "berth",
    default_database: DefaultDatabase::ObjectName,
    url_scheme: "mysql",
    url_path: "/$(database)",
    url_user: true,
    container_env: &[("MARIADB_ROOT_PASSWORD", P), ("MARIADB_DATABASE", D)],
    user_env: &[("MARIADB_USER", U), ("MARIADB_PASSWORD", P)],
    superuser: Some("root"),
    args: &[],
    ready: Plan {
        argv: &[
            L("mariadb-admin"),
            L("ping"),
            L("--protocol=tcp"),
            L("-h"),
            L("127.0.0.1"),
            L("-uroot"),
        ],
        env: &[("MYSQL_PWD", P)],
    },
    dump: Plan {
        argv: &[
            L("mariadb-dump"),
            L("-uroot"),
            L("--single-transaction"),
            L("--routines"),
            L("--triggers"),
            L("--events"),
            L("--add-drop-database"),
            L("--databases"),
            D,
        ],
        env: &[("MYSQL_PWD", P)],
    },
    restore: Plan {
        argv: &[L("mariadb"), L("-uroot")],
        env: &[("MYSQL_PWD", P)],
    },
};

static MONGODB: Engine = Engine {
    engine: DatabaseEngine::Mongodb,
    image: "mongo",
    tag: "8.0",
    port: 27017,
    data_dir: "/data/db",
    default_username: "root",
    default_database: DefaultDatabase::ObjectName,
    url_scheme: "mongodb",
    url_path: "/$(database)?authSource=admin",
    url_user: true,
    container_env: &[
        ("MONGO_INITDB_ROOT_USERNAME", U),
        ("MONGO_INITDB_ROOT_PASSWORD", P),
        ("MONGO_INITDB_DATABASE", D),
    ],
    user_env: &[],
    superuser: None,
    args: &[],
    ready: Plan {
        argv: &[
            L("mongosh"),
            L("--quiet"),
            L("--norc"),
            L("--eval"),
            L("db.adminCommand('ping').ok"),
        ],
        env: &[],
    },
    dump: Plan {
        argv: &[L("sh"), L("-c"), L(MONGO_DUMP)],
        env: &[("BERTH_USERNAME", U), ("BERTH_PASSWORD", P)],
    },
    restore: Plan {
        argv: &[L("sh"), L("-c"), L(MONGO_RESTORE)],
        env: &[("BERTH_USERNAME", U), ("BERTH_PASSWORD", P)],
    },
};

static REDIS: Engine = Engine {
    engine: DatabaseEngine::Redis,
    image: "redis",
    tag: "7.4",
    port: 6379,
    data_dir: "/data",
    default_username: "default",
    default_database: DefaultDatabase::Fixed("0"),
    url_scheme: "redis",
    url_path: "/$(database)",
    url_user: false,
    container_env: &[("REDIS_PASSWORD", P)],
    user_env: &[],
    superuser: None,
    // Through the image's entrypoint again, so it drops to the redis user.
    args: &[
        "sh",
        "-c",
        r#"exec docker-entrypoint.sh redis-server --requirepass "$REDIS_PASSWORD""#,
    ],
    ready: Plan {
        argv: &[L("sh"), L("-c"), L(REDIS_READY)],
        env: &[("CLI", L("redis-cli")), ("REDISCLI_AUTH", P)],
    },
    dump: Plan {
        argv: &[L("redis-cli"), L("--rdb"), L("-")],
        env: &[("REDISCLI_AUTH", P)],
    },
    restore: Plan {
        argv: &[L("sh"), L("-c"), L(REDIS_RESTORE)],
        env: &[
            ("CLI", L("redis-cli")),
            ("SERVER", L("redis-server")),
            ("REDISCLI_AUTH", P),
        ],
    },
};

static KEYDB: Engine = Engine {
    engine: DatabaseEngine::Keydb,
    image: "eqalpha/keydb",
    // KeyDB's pinned tags are per architecture; `latest` is its multi-arch 6.3 release.
    tag: "latest",
    port: 6379,
    data_dir: "/data",
    default_username: "default",
    default_database: DefaultDatabase::Fixed("0"),
    url_scheme: "redis",
    url_path: "/$(database)",
    url_user: false,
    container_env: &[("KEYDB_PASSWORD", P)],
    user_env: &[],
    superuser: None,
    args: &[
        "sh",
        "-c",
        r#"exec docker-entrypoint.sh keydb-server /etc/keydb/keydb.conf --requirepass "$KEYDB_PASSWORD""#,
    ],
    ready: Plan {
        argv: &[L("sh"), L("-c"), L(REDIS_READY)],
        env: &[("CLI", L("keydb-cli")), ("REDISCLI_AUTH", P)],
    },
    dump: Plan {
        argv: &[L("keydb-cli"), L("--rdb"), L("-")],
        env: &[("REDISCLI_AUTH", P)],
    },
    restore: Plan {
        argv: &[L("sh"), L("-c"), L(REDIS_RESTORE)],
        env: &[
            ("CLI", L("keydb-cli")),
            ("SERVER", L("keydb-server")),
            ("REDISCLI_AUTH", P),
        ],
    },
};

static DRAGONFLY: Engine = Engine {
    engine: DatabaseEngine::Dragonfly,
    image: "docker.dragonflydb.io/dragonflydb/dragonfly",
    tag: "v1.25.0",
    port: 6379,
    data_dir: "/data",
    default_username: "default",
    default_database: DefaultDatabase::Fixed("0"),
    url_scheme: "redis",
    url_path: "/$(database)",
    url_user: false,
    // Dragonfly reads every flag from `DFLY_<flag>`.
    container_env: &[("DFLY_requirepass", P), ("DFLY_dbfilename", L("dump"))],
    user_env: &[],
    superuser: None,
    args: &[],
    ready: Plan {
        argv: &[L("sh"), L("-c"), L(REDIS_READY)],
        env: &[("CLI", L("redis-cli")), ("REDISCLI_AUTH", P)],
    },
    dump: Plan {
        argv: &[L("sh"), L("-c"), L(DRAGONFLY_DUMP)],
        env: &[("REDISCLI_AUTH", P)],
    },
    restore: Plan {
        argv: &[L("sh"), L("-c"), L(DRAGONFLY_RESTORE)],
        env: &[("REDISCLI_AUTH", P)],
    },
};

static CLICKHOUSE: Engine = Engine {
    engine: DatabaseEngine::Clickhouse,
    image: "clickhouse/clickhouse-server",
    tag: "24.8",
    port: 8123,
    data_dir: "/var/lib/clickhouse",
    default_username: "berth",
    default_database: DefaultDatabase::ObjectName,
    url_scheme: "http",
    url_path: "/?database=$(database)",
    url_user: true,
    container_env: &[
        ("CLICKHOUSE_USER", U),
        ("CLICKHOUSE_PASSWORD", P),
        ("CLICKHOUSE_DB", D),
        ("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", L("1")),
    ],
    user_env: &[],
    superuser: None,
    args: &[],
    // clickhouse-client reads CLICKHOUSE_USER / CLICKHOUSE_PASSWORD from its environment.
    ready: Plan {
        argv: &[L("clickhouse-client"), L("-q"), L("SELECT 1")],
        env: &[("CLICKHOUSE_USER", U), ("CLICKHOUSE_PASSWORD", P)],
    },
    dump: Plan {
        argv: &[L("sh"), L("-c"), L(CLICKHOUSE_DUMP)],
        env: &[
            ("CLICKHOUSE_USER", U),
            ("CLICKHOUSE_PASSWORD", P),
            ("BERTH_DATABASE", D),
        ],
    },
    restore: Plan {
        argv: &[L("clickhouse-client"), L("--multiquery"), L("--database"), D],
        env: &[("CLICKHOUSE_USER", U), ("CLICKHOUSE_PASSWORD", P)],
    },
};

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
