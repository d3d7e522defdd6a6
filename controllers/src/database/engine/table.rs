//! The engine table's rows: the facts of each engine, and the shell scripts some of their
//! plans run. Data only; what the fields mean is documented on [`Engine`].

use super::Val::{Database as D, Lit as L, Password as P, User as U};
use super::{DefaultDatabase, Engine, Plan};
use berth_crds::kinds::database::DatabaseEngine;

/// redis/keydb restore: a temporary server loads the RDB, the live server full-syncs from
/// it as a replica, then is promoted back. `$CLI`/`$SERVER` name the binaries.
pub(super) const REDIS_RESTORE: &str = r#"set -eu
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

pub(super) static POSTGRESQL: Engine = Engine {
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

pub(super) static MYSQL: Engine = Engine {
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

pub(super) static MARIADB: Engine = Engine {
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

pub(super) static MONGODB: Engine = Engine {
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

pub(super) static REDIS: Engine = Engine {
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

pub(super) static KEYDB: Engine = Engine {
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

pub(super) static DRAGONFLY: Engine = Engine {
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

pub(super) static CLICKHOUSE: Engine = Engine {
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
