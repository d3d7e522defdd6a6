//! Backups of real engines end to end: PostgreSQL, MariaDB and Redis (Debian-built images,
//! run by the Database controller), backed up through `berth backup` to a local directory
//! and a real SeaweedFS at once, destroyed, and restored through `berth restore` from each
//! storage: the data is identical (checksummed by the engine itself).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use berth_controllers::database::engine::{self, Credentials, ExecPlan};
use berth_crds::kinds::database::DatabaseEngine;
use common::{
    db_images,
    docker_run::TestRun,
    server::OutputExt,
    world::{Database, Storages, World, mariadb, psql, redis_cli},
};

/// How a test fills, destroys and checksums an engine's data with its own client.
struct Engine {
    kind: &'static str,
    fill: fn(&Credentials) -> ExecPlan,
    destroy: fn(&Credentials) -> ExecPlan,
    checksum: fn(&Credentials) -> ExecPlan,
}

/// A berth with the Database controller, a SeaweedFS, storages `local` and `s3`, and a Ready
/// Database `<kind>db` of `kind` on `image`. Drops berth first, then the Docker objects, then
/// SeaweedFS.
struct Setup {
    w: World,
    _storages: Storages,
    db: Database,
}

fn setup(kind: &str, image: impl FnOnce(&tokio::runtime::Runtime, &TestRun) -> String) -> Setup {
    let w = World::start("bk", &[]);
    let storages = Storages::start(&w, "");
    let image = image(&w.rt, &w.run);
    let db = w.database(&format!("{kind}db"), kind, &image);
    Setup {
        w,
        _storages: storages,
        db,
    }
}

fn flow(engine: Engine, image: impl FnOnce(&tokio::runtime::Runtime, &TestRun) -> String) {
    let Setup { w, _storages, db } = setup(engine.kind, image);
    let sh = |p: ExecPlan| w.exec(&db.container, &p);
    let creds = &db.creds;

    sh((engine.fill)(creds));
    let original = sh((engine.checksum)(creds));
    assert!(!original.is_empty());
    let t0 = Instant::now();
    let target = format!("database/{}", db.name);
    let out =
        w.s.run(&[
            "backup",
            &target,
            "-n",
            &w.ns,
            "--storage",
            "local",
            "--storage",
            "s3",
            "--name",
            "bk",
        ])
        .ok();
    assert!(out.contains("backup/bk succeeded"), "{out}");
    println!(
        "{}: backup to local + s3 in {:.1}s: {out}",
        engine.kind,
        t0.elapsed().as_secs_f64()
    );
    let bk = w.get("backup", "bk");
    assert_eq!(bk["status"]["locations"].as_array().unwrap().len(), 2, "{bk}");

    for storage in ["s3", "local"] {
        sh((engine.destroy)(creds));
        assert_ne!(sh((engine.checksum)(creds)), original, "the data was destroyed");
        let out =
            w.s.run(&[
                "restore",
                &target,
                "-n",
                &w.ns,
                "--backup",
                "bk",
                "--storage",
                storage,
            ])
            .ok();
        assert!(out.contains("succeeded"), "{out}");
        // Redis restores through a replica sync: wait for the engine to show the data.
        w.until(
            &format!("{} restored from {storage} to read {original}", engine.kind),
            Duration::from_secs(60),
            || (sh((engine.checksum)(creds)) == original).then_some(()),
        );
        println!(
            "{}: restored from {storage}, checksum {original} identical",
            engine.kind
        );
    }
    w.s.run(&["delete", "database", &db.name, "-n", &w.ns, "--wait"])
        .ok();
}

#[test]
fn postgresql_backup_to_local_and_s3_and_restore_from_each() {
    flow(
        Engine {
            kind: "postgresql",
            fill: |c| {
                psql(
                    c,
                    "CREATE TABLE t (id int PRIMARY KEY, v text); \
                     INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
                )
            },
            destroy: |c| psql(c, "DELETE FROM t; INSERT INTO t VALUES (1, 'destroyed');"),
            checksum: |c| {
                psql(
                    c,
                    "SELECT count(*) || ':' || md5(string_agg(id || '=' || v, ',' ORDER BY id)) FROM t",
                )
            },
        },
        |rt, run| rt.block_on(db_images::postgres_image(&run.docker)),
    );
}

#[test]
fn mariadb_backup_to_local_and_s3_and_restore_from_each() {
    flow(
        Engine {
            kind: "mariadb",
            fill: |c| {
                mariadb(
                    c,
                    "CREATE TABLE t (id int PRIMARY KEY, v text); \
                     INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_20000;",
                )
            },
            destroy: |c| mariadb(c, "DELETE FROM t; INSERT INTO t VALUES (1, 'destroyed');"),
            checksum: |c| {
                mariadb(
                    c,
                    "SET SESSION group_concat_max_len = 4194304; \
                     SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(CONCAT(id, '=', v) ORDER BY id))) FROM t",
                )
            },
        },
        |rt, run| rt.block_on(db_images::mariadb_image(&run.docker)),
    );
}

#[test]
fn redis_backup_to_local_and_s3_and_restore_from_each() {
    flow(
        Engine {
            kind: "redis",
            fill: |c| {
                redis_cli(
                    c,
                    &[
                        "EVAL",
                        "for i=1,20000 do redis.call('SET','k'..i,'v'..i) end return 1",
                        "0",
                    ],
                )
            },
            destroy: |c| {
                redis_cli(
                    c,
                    &[
                        "EVAL",
                        "redis.call('FLUSHDB') redis.call('SET','k1','destroyed') return 1",
                        "0",
                    ],
                )
            },
            checksum: |c| {
                redis_cli(
                    c,
                    &[
                        "EVAL",
                        "local s={} for i=1,20000 do s[i]=tostring(redis.call('GET','k'..i)) end \
                         return redis.call('DBSIZE')..':'..redis.sha1hex(table.concat(s,','))",
                        "0",
                    ],
                )
            },
        },
        |rt, run| rt.block_on(db_images::redis_image(&run.docker)),
    );
}

#[test]
#[ignore = "a measurement: fills PostgreSQL with ~1 GiB and backs it up, minutes on a \
            loaded machine; run with `cargo test --test backup_engines -- --ignored --nocapture`"]
fn backing_up_a_gigabyte_postgres_keeps_berths_memory_bounded() {
    let Setup { w, _storages, db } = setup("postgresql", |rt, run| {
        rt.block_on(db_images::postgres_image(&run.docker))
    });
    let sh = |p: ExecPlan| w.exec(&db.container, &p);
    sh(psql(
        &db.creds,
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) AS v \
         FROM generate_series(1, 8000000) g",
    ));
    let size = sh(psql(&db.creds, "SELECT pg_database_size(current_database())"));
    let bytes: f64 = size.parse().unwrap();
    // The same dump tool, writing to a local file in the container.
    let dump = engine::engine(DatabaseEngine::Postgresql).dump(&db.creds);
    let mut baseline = dump.clone();
    let argv = dump.argv.join(" ");
    baseline.argv = vec![
        "sh".into(),
        "-c".into(),
        format!("{argv} > /tmp/baseline.dump && wc -c < /tmp/baseline.dump && rm /tmp/baseline.dump"),
    ];
    let t0 = Instant::now();
    let dump_bytes = sh(baseline);
    let baseline_s = t0.elapsed().as_secs_f64();
    let before = w.s.peak_rss_kib();
    let target = format!("database/{}", db.name);
    let t0 = Instant::now();
    let out =
        w.s.run(&[
            "backup",
            &target,
            "-n",
            &w.ns,
            "--storage",
            "local",
            "--storage",
            "s3",
            "--name",
            "big",
        ])
        .ok();
    let took = t0.elapsed().as_secs_f64();
    assert!(out.contains("backup/big succeeded"), "{out}");
    let peak = w.s.peak_rss_kib();
    let mb = bytes / 1e6;
    println!(
        "postgres database of {:.0} MB (pg_dump -Fc: {} bytes): berth backup to local + S3 at once {:.1} s \
         = {:.1} MB/s of database; pg_dump -Fc to a local file in the container {:.1} s = {:.1} MB/s; \
         berth peak RSS {} MiB (before the backup {} MiB)",
        mb,
        dump_bytes,
        took,
        mb / took,
        baseline_s,
        mb / baseline_s,
        peak / 1024,
        before / 1024
    );
    assert!(
        peak < 100 * 1024,
        "berth's peak RSS {peak} KiB must stay under 100 MiB"
    );
}
