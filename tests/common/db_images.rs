//! Database test images built from Debian packages: one `debootstrap` rootfs with
//! PostgreSQL 15, MariaDB and Redis, imported as a base image, and one thin image per engine
//! whose entrypoint honours the official image's environment contract.
//!
//! # Guarantees
//! - Nothing is pulled: the rootfs comes from Debian's mirror, the images are built
//!   `FROM scratch` through the Docker adapter.
//! - Cached by a content hash of the recipe: the base image is tagged
//!   `berth-test/db-base:<hash>` and its rootfs tarball kept as
//!   `target/test-deps/db-rootfs-<hash>.tar`; a second run builds nothing.
//! - Safe across concurrent test processes: the base is made under an exclusive file lock
//!   (`target/test-deps/db-rootfs-<hash>.lock`) and files appear only by rename once
//!   complete.
//! - `rootfs_image` makes other Debian bases the same way from their own [`Rootfs`] recipe
//!   (`berth-test/<name>-base:<hash>`; tests/common/wordpress.rs); the engines' hash is
//!   unchanged by that.
//! - Entry points, as the official images: postgres (`POSTGRES_USER`, `POSTGRES_PASSWORD`,
//!   `POSTGRES_DB`; local connections trusted, TCP with scram-sha-256), mariadb
//!   (`MARIADB_ROOT_PASSWORD`, `MARIADB_USER`, `MARIADB_PASSWORD`, `MARIADB_DATABASE`, and
//!   the `MYSQL_*` aliases), redis (`docker-entrypoint.sh redis-server ...` drops to the
//!   redis user; the password comes as berth's engine table passes it, `--requirepass
//!   "$REDIS_PASSWORD"`). Each initialises an empty data directory on first start.
//!
//! # Caveats
//! - The first build runs `debootstrap` (root, `deb.debian.org` reachable): about 1-3 minutes
//!   depending on load, plus importing ~800 MB into Docker.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use berth_controllers::docker::Docker;
use sha2::{Digest, Sha256};

use super::images::{Entry, Source, build_tagged, deps_dir, ensure_image, exists};

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
const PACKAGES: &str = "postgresql-15,mariadb-server,redis-server";
/// What is removed from the rootfs before it is imported (docs, caches, the packages'
/// own pre-made data directories: the volumes must start empty).
const PRUNE: &[&str] = &[
    "var/cache/apt/archives",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "var/lib/mysql",
    "var/lib/postgresql/15/main",
];
const BASE_DOCKERFILE: &str = "FROM scratch\nADD rootfs.tar /\n";

/// A Debian rootfs recipe: what `debootstrap` installs, and what is pruned before import.
pub(crate) struct Rootfs {
    /// Names the base image (`berth-test/<name>-base:<hash>`) and its files in
    /// `target/test-deps/` (`<name>-rootfs-<hash>.*`); not part of the hash.
    pub(crate) name: &'static str,
    /// Comma-separated packages for `debootstrap --include`.
    pub(crate) packages: &'static str,
    /// Paths (relative to the rootfs) removed before import.
    pub(crate) prune: &'static [&'static str],
}

/// The engines' rootfs (its hash is the one this module always had).
const DB_ROOTFS: Rootfs = Rootfs {
    name: "db",
    packages: PACKAGES,
    prune: PRUNE,
};

const POSTGRES_ENTRYPOINT: &str = r#"#!/bin/sh
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "error: POSTGRES_PASSWORD is required" >&2; exit 1; }
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_pg initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    as_pg psql -q -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "initialised $PGDATA"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA"
"#;

const POSTGRES_DOCKERFILE: &str = r#"FROM {base}
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
ENV PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
"#;

const MARIADB_ENTRYPOINT: &str = r#"#!/bin/sh
set -eu
root_pw=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
user=${MARIADB_USER:-${MYSQL_USER:-}}
pw=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}
db=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
datadir=/var/lib/mysql
q() { printf '%s' "$1" | sed "s/'/''/g"; }
mkdir -p "$datadir" /run/mysqld
chown -R mysql:mysql "$datadir" /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
  [ -n "$root_pw" ] || { echo "error: MARIADB_ROOT_PASSWORD is required" >&2; exit 1; }
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
  mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket=/run/mysqld/init.sock &
  i=0
  until mariadb-admin --socket=/run/mysqld/init.sock -uroot ping >/dev/null 2>&1; do
    i=$((i+1)); [ "$i" -lt 300 ] || { echo "error: init server did not start" >&2; exit 1; }; sleep 0.1
  done
  {
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$(q "$root_pw")';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    [ -z "$db" ] || echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"
    if [ -n "$user" ]; then
      echo "CREATE USER '$(q "$user")'@'%' IDENTIFIED BY '$(q "$pw")';"
      [ -z "$db" ] || echo "GRANT ALL ON \`$db\`.* TO '$(q "$user")'@'%';"
    fi
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(q "$root_pw")';"
  } | mariadb --socket=/run/mysqld/init.sock -uroot
  mariadb-admin --socket=/run/mysqld/init.sock -uroot --password="$root_pw" shutdown
  wait
  echo "initialised $datadir"
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306
"#;

const MARIADB_DOCKERFILE: &str = r#"FROM {base}
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 3306
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
"#;

const REDIS_ENTRYPOINT: &str = r#"#!/bin/sh
set -e
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  mkdir -p /data
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
"#;

const REDIS_DOCKERFILE: &str = r#"FROM {base}
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
"#;

/// Tag of the PostgreSQL 15 image (official `postgres` contract), building it if needed.
pub async fn postgres_image(docker: &Docker) -> String {
    engine_image(docker, "postgres", POSTGRES_DOCKERFILE, POSTGRES_ENTRYPOINT).await
}

/// Tag of the MariaDB image (official `mariadb` contract), building it if needed.
pub async fn mariadb_image(docker: &Docker) -> String {
    engine_image(docker, "mariadb", MARIADB_DOCKERFILE, MARIADB_ENTRYPOINT).await
}

/// Tag of the Redis image (official `redis` entrypoint), building it if needed.
pub async fn redis_image(docker: &Docker) -> String {
    engine_image(docker, "redis", REDIS_DOCKERFILE, REDIS_ENTRYPOINT).await
}

async fn engine_image(docker: &Docker, name: &str, dockerfile: &str, entrypoint: &'static str) -> String {
    let base = base_image(docker).await;
    // The Dockerfile names the base by its recipe hash, so the thin image's content hash
    // follows the base.
    let dockerfile: &'static str = Box::leak(dockerfile.replace("{base}", &base).into_boxed_str());
    ensure_image(
        docker,
        &format!("db-{name}"),
        vec![
            Entry {
                path: "Dockerfile",
                mode: 0o644,
                source: Source::Text(dockerfile),
            },
            Entry {
                path: "entrypoint.sh",
                mode: 0o755,
                source: Source::Text(entrypoint),
            },
        ],
    )
    .await
}

fn recipe_hash(recipe: &Rootfs) -> String {
    let mut h = Sha256::new();
    for part in [SUITE, MIRROR, recipe.packages, BASE_DOCKERFILE] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for p in recipe.prune {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `berth-test/db-base:<recipe hash>`, made once (debootstrap + import) under a file lock.
async fn base_image(docker: &Docker) -> String {
    rootfs_image(docker, &DB_ROOTFS).await
}

/// `berth-test/<name>-base:<recipe hash>` of `recipe`, made once (debootstrap + import)
/// under a file lock, like the engines' base.
pub(crate) async fn rootfs_image(docker: &Docker, recipe: &'static Rootfs) -> String {
    let (name, hash) = (recipe.name, recipe_hash(recipe));
    let tag = format!("berth-test/{name}-base:{hash}");
    if exists(docker, &tag).await {
        return tag;
    }
    let dir = deps_dir();
    std::fs::create_dir_all(&dir).expect("create target/test-deps");
    let lock_path = dir.join(format!("{name}-rootfs-{hash}.lock"));
    let lock = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::create(&lock_path).expect("create the rootfs lock");
        f.lock().expect("lock the rootfs");
        f
    })
    .await
    .expect("lock task");
    // Another process may have built it while this one waited.
    if !exists(docker, &tag).await {
        let tarball = dir.join(format!("{name}-rootfs-{hash}.tar"));
        if !tarball.exists() {
            let (d, t) = (dir.clone(), tarball.clone());
            let h = hash.clone();
            tokio::task::spawn_blocking(move || make_rootfs_tar(recipe, &d, &h, &t))
                .await
                .expect("rootfs task");
        }
        build_tagged(
            docker,
            &format!("{name}-base"),
            &tag,
            vec![
                Entry {
                    path: "Dockerfile",
                    mode: 0o644,
                    source: Source::Text(BASE_DOCKERFILE),
                },
                Entry {
                    path: "rootfs.tar",
                    mode: 0o644,
                    source: Source::File(tarball),
                },
            ],
        )
        .await;
    }
    drop(lock);
    tag
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// debootstrap into a fresh directory, prune it, tar it, rename the tarball into place.
fn make_rootfs_tar(recipe: &Rootfs, dir: &Path, hash: &str, tarball: &Path) {
    let started = Instant::now();
    let rootfs: PathBuf = dir.join(format!("{}-rootfs-{hash}.tmp", recipe.name));
    if rootfs.exists() {
        std::fs::remove_dir_all(&rootfs).expect("remove a partial rootfs");
    }
    assert!(
        Path::new("/usr/sbin/debootstrap").exists(),
        "debootstrap missing: run scripts/install-test-deps.sh"
    );
    run(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", recipe.packages))
            .arg(SUITE)
            .arg(&rootfs)
            .arg(MIRROR),
        "debootstrap",
    );
    for p in recipe.prune {
        let path = rootfs.join(p);
        if path.exists() {
            std::fs::remove_dir_all(&path).expect("prune the rootfs");
        }
    }
    let partial = tarball.with_extension("tar.part");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .args([
                "--exclude=./dev/*",
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "-cf",
            ])
            .arg(&partial)
            .arg("."),
        "tar the rootfs",
    );
    std::fs::rename(&partial, tarball).expect("rename the rootfs tarball");
    std::fs::remove_dir_all(&rootfs).expect("remove the rootfs directory");
    let mut note = std::io::stderr();
    let _ = writeln!(
        note,
        "made the {} rootfs {} in {:.0}s",
        recipe.name,
        tarball.display(),
        started.elapsed().as_secs_f64()
    );
}
