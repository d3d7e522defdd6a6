//! The backup controllers end to end on real engines: a real `berth serve` (Database,
//! BackupStorage, BackupSchedule, Backup and Restore controllers, the CLI) runs Redis and
//! PostgreSQL from the Debian-built images (`tests/common/db_images.rs`), and backs them up
//! on cron schedules to a local directory and a real SeaweedFS.
//!
//! - Redis: a schedule every minute runs on its cron slots, and retention keep-last-2
//!   leaves exactly two files and two objects after four runs; wrong S3 credentials fail
//!   a scheduled run with S3's own message and the next tick runs (and succeeds once the
//!   credentials are fixed).
//! - PostgreSQL (~130 MB of table data, so that a streamed `pg_dump` takes seconds): berth
//!   is killed (SIGKILL) in the middle of a scheduled backup; after the restart that Backup
//!   is Failed `Interrupted`, its `.partial` file and S3 multipart upload are gone, and the
//!   next scheduled run succeeds and restores to identical data.
//!
//! The tests wait on cron ticks (every minute): about 4 minutes for the schedule (four
//! runs), 2–3 for kill -9, 1.5 for the wrong credentials; they run in parallel threads
//! (each has its own berth, run label, network, namespace and SeaweedFS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    process::Command,
    time::{Duration, Instant},
};

use chrono::DateTime;
use common::{
    db_images,
    server::OutputExt,
    world::{Database, Storages, World, psql, redis_cli},
};
use serde_json::Value;

/// A berth with a Ready Database `<engine>db` and the storages `local` and `s3` (S3 keys
/// under `berth/`). Drops berth first, then the Docker objects, then SeaweedFS.
struct Bk {
    w: World,
    st: Storages,
    db: Database,
}

impl Bk {
    fn start(engine: &str) -> Bk {
        let w = World::start("bc", &[]);
        let st = Storages::start(&w, "berth");
        let image = match engine {
            "postgresql" => w.rt.block_on(db_images::postgres_image(&w.run.docker)),
            "redis" => w.rt.block_on(db_images::redis_image(&w.run.docker)),
            other => panic!("no test image for {other}"),
        };
        let db = w.database(&format!("{engine}db"), engine, &image);
        Bk { w, st, db }
    }

    fn sh(&self, plan: berth_controllers::database::engine::ExecPlan) -> String {
        self.w.exec(&self.db.container, &plan)
    }

    /// A BackupSchedule `name` of the Database every minute to `storages` (YAML list items).
    fn schedule(&self, name: &str, storages: &str) {
        self.w.apply(&format!(
            "apiVersion: berth.dev/v1\nkind: BackupSchedule\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  database: {db}\n  schedule: \"* * * * *\"\n  storages:\n{storages}",
            ns = self.w.ns,
            db = self.db.name,
        ));
    }

    /// The schedule's Backups by name.
    fn runs(&self, schedule: &str) -> BTreeMap<String, Value> {
        self.w
            .list("backups", &format!("berth.dev/backup-schedule={schedule}"))
            .into_iter()
            .map(|b| (b["metadata"]["name"].as_str().unwrap().to_owned(), b))
            .collect()
    }

    /// Waits until the run of `schedule` in the slot after `previous`'s succeeds (no other
    /// run may fail) and returns it.
    fn next_run_succeeds(&self, schedule: &str, previous: &str) -> Value {
        let b = self.w.until(
            &format!("the scheduled run after {previous} to succeed"),
            Duration::from_secs(150),
            || {
                self.runs(schedule).into_iter().find_map(|(name, b)| {
                    if name == previous {
                        return None;
                    }
                    assert_ne!(b["status"]["phase"], "Failed", "only {previous} fails: {b}");
                    (b["status"]["phase"] == "Succeeded").then_some(b)
                })
            },
        );
        let name = b["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            tick_of(name),
            tick_of(previous) + 60,
            "the very next slot ran: {name} after {previous}"
        );
        b
    }
}

/// The cron tick a scheduled Backup is for: its name ends in the tick's unix time.
fn tick_of(name: &str) -> i64 {
    name.rsplit('-').next().unwrap().parse().unwrap()
}

fn time(b: &Value, field: &str) -> f64 {
    let t = DateTime::parse_from_rfc3339(b["status"][field].as_str().unwrap()).unwrap();
    t.timestamp_millis() as f64 / 1000.0
}

fn condition(b: &Value, type_: &str) -> Value {
    b["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no condition {type_}: {b}"))
        .clone()
}

/// The first `n` bytes of the gunzip'd file at `path` (`gzip -t` checks it whole first).
fn gunzipped_head(path: &str, n: usize) -> Vec<u8> {
    let test = Command::new("gzip").args(["-t", path]).output().unwrap();
    assert!(
        test.status.success(),
        "{path} is not a valid gzip file: {}",
        test.err()
    );
    let out = Command::new("gzip").args(["-dc", path]).output().unwrap();
    assert!(out.status.success(), "{}", out.err());
    out.stdout[..n.min(out.stdout.len())].to_vec()
}

/// Checks a succeeded Backup's copy in `local` and `s3`: the files exist under the expected
/// key, their size and sha256 (read back through each storage) are the status's, and the
/// local one is a valid gzip whose content starts with `magic`.
fn check_copies(t: &Bk, b: &Value, magic: &[u8]) {
    let name = b["metadata"]["name"].as_str().unwrap();
    let st = &b["status"];
    assert_eq!(st["phase"], "Succeeded", "{b}");
    assert!(
        st["pending"].as_array().is_none_or(Vec::is_empty),
        "no pending uploads once done: {st}"
    );
    let key = format!("{}/{}/{name}.gz", t.w.ns, t.db.name);
    let (size, sha) = (st["sizeBytes"].as_u64().unwrap(), st["sha256"].as_str().unwrap());
    let (local, s3) = t.st.stored(&t.w);
    let local_path = t.st.dir.path().join(&key).display().to_string();
    let s3_key = format!("berth/{key}");
    assert!(
        local.contains(&(local_path.clone(), size)),
        "{local_path} of {size} bytes in {local:?}"
    );
    assert!(
        s3.contains(&(s3_key.clone(), size)),
        "{s3_key} of {size} bytes in {s3:?}"
    );
    assert_eq!(
        t.st.sha256(&t.w, &t.st.local(), &local_path),
        sha,
        "local copy of {name}"
    );
    assert_eq!(t.st.sha256(&t.w, &t.st.s3(), &s3_key), sha, "s3 copy of {name}");
    let head = gunzipped_head(&local_path, magic.len());
    assert_eq!(head, magic, "{name} holds the engine's dump");
}

#[test]
fn a_schedule_every_minute_runs_on_time_and_keeps_the_last_two_everywhere() {
    let began = Instant::now();
    let t = Bk::start("redis");
    t.sh(redis_cli(
        &t.db.creds,
        &[
            "EVAL",
            "for i=1,20000 do redis.call('SET','k'..i,'v'..i) end return 1",
            "0",
        ],
    ));
    t.schedule(
        "every-minute",
        "  - {name: local, retention: {keepLast: 2}}\n  - {name: s3, retention: {keepLast: 2}}\n",
    );
    let mut succeeded: BTreeMap<String, Value> = BTreeMap::new();
    t.w.until(
        "four scheduled backups to succeed",
        Duration::from_secs(330),
        || {
            for (name, b) in t.runs("every-minute") {
                assert_ne!(b["status"]["phase"], "Failed", "{b}");
                if b["status"]["phase"] == "Succeeded" {
                    succeeded.entry(name).or_insert(b);
                }
            }
            (succeeded.len() >= 4).then_some(())
        },
    );
    // On time: four consecutive minutes, each started within seconds of its slot.
    let ticks: Vec<i64> = succeeded.keys().map(|n| tick_of(n)).collect();
    assert_eq!(ticks[0] % 60, 0, "{ticks:?} are on the minute");
    assert!(
        ticks.windows(2).all(|w| w[1] - w[0] == 60),
        "one run per minute, none skipped: {ticks:?}"
    );
    for (name, b) in &succeeded {
        let tick = tick_of(name) as f64;
        let (started, done) = (time(b, "startTime"), time(b, "completionTime"));
        println!(
            "{name}: started {:.1}s after its slot, done {:.1}s after it ({} bytes)",
            started - tick,
            done - tick,
            b["status"]["sizeBytes"]
        );
        // Timestamps are whole seconds: a start in the tick's second reads as 0.
        assert!(
            (0.0..=10.0).contains(&(started - tick)),
            "{name} started {:.1}s after its slot",
            started - tick
        );
    }
    // Retention runs when the fourth succeeds: exactly two everywhere, the newest two.
    let (local, s3) =
        t.w.until("retention to leave two copies", Duration::from_secs(30), || {
            let (local, s3) = t.st.stored(&t.w);
            (local.len() == 2 && s3.len() == 2 && t.runs("every-minute").len() == 2).then_some((local, s3))
        });
    let runs = t.runs("every-minute");
    let newest: Vec<&String> = succeeded.keys().rev().take(2).collect();
    assert_eq!(runs.keys().rev().collect::<Vec<_>>(), newest, "{local:?} {s3:?}");
    for b in runs.values() {
        check_copies(&t, b, b"REDIS");
    }
    let sched = t.w.get("backupschedule", "every-minute");
    assert!(sched["status"]["nextScheduleTime"].is_string(), "{sched}");
    assert!(sched["status"]["lastSuccessfulTime"].is_string(), "{sched}");
    println!("schedule test took {:.0}s", began.elapsed().as_secs_f64());
}

#[test]
fn wrong_s3_credentials_fail_the_backup_with_the_s3_message_and_the_schedule_keeps_running() {
    let began = Instant::now();
    let t = Bk::start("redis");
    t.sh(redis_cli(&t.db.creds, &["SET", "k", "v"]));
    let storage = |secret: &str| {
        format!(
            r#"apiVersion: berth.dev/v1
kind: Secret
metadata: {{name: s3-wrong, namespace: {ns}}}
spec:
  data: {{accessKeyId: {ak}, secretAccessKey: {secret}}}
---
apiVersion: berth.dev/v1
kind: BackupStorage
metadata: {{name: s3-wrong}}
spec:
  s3:
    endpoint: {endpoint}
    bucket: {bucket}
    pathStyle: true
    prefix: wrong
    credentialsSecretRef: {{namespace: {ns}, name: s3-wrong}}
"#,
            ns = t.w.ns,
            ak = common::seaweedfs::ACCESS_KEY,
            endpoint = t.st.fs.endpoint(),
            bucket = t.st.fs.bucket(),
        )
    };
    t.w.apply(&storage("not-the-secret"));
    let ready = t.w.until(
        "s3-wrong to be reported unreachable",
        Duration::from_secs(60),
        || {
            let v: Value = serde_json::from_str(
                &t.w.s
                    .run(&["get", "backupstorage", "s3-wrong", "-o", "json"])
                    .ok(),
            )
            .unwrap();
            let ready = v["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?
                .clone();
            // A first check may still find the Secret missing (InvalidConfig).
            (ready["status"] == "False" && ready["reason"] == "Unreachable").then_some(ready)
        },
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{ready}"
    );
    t.schedule("bad", "  - name: s3-wrong\n");
    let failed =
        t.w.until("a failed scheduled backup", Duration::from_secs(100), || {
            t.runs("bad")
                .into_values()
                .find(|b| b["status"]["phase"] == "Failed")
        });
    let error = failed["status"]["error"].as_str().unwrap();
    assert!(
        error.contains("SignatureDoesNotMatch"),
        "the S3 error reaches status: {error}"
    );
    assert_eq!(condition(&failed, "Failed")["reason"], "StorageUnavailable");
    let events = t.w.s.run(&["get", "events", "-o", "json"]).ok();
    assert!(
        events.contains("BackupFailed") && events.contains("SignatureDoesNotMatch"),
        "a Warning event for the failure: {events}"
    );
    let failed_tick = tick_of(failed["metadata"]["name"].as_str().unwrap());
    let sched = t.w.get("backupschedule", "bad");
    assert_eq!(condition(&sched, "Ready")["status"], "True", "{sched}");
    assert_eq!(
        time(&sched, "nextScheduleTime") as i64,
        failed_tick + 60,
        "the schedule goes on: {sched}"
    );

    // The schedule keeps running: with the credentials fixed, its next tick succeeds.
    t.w.apply(&storage(common::seaweedfs::SECRET_KEY));
    let next = t.next_run_succeeds("bad", failed["metadata"]["name"].as_str().unwrap());
    let name = next["metadata"]["name"].as_str().unwrap();
    let objects = t.w.rt.block_on(t.st.s3_at("wrong").list("")).unwrap();
    assert_eq!(
        objects,
        [(
            format!("wrong/{}/{}/{name}.gz", t.w.ns, t.db.name),
            next["status"]["sizeBytes"].as_u64().unwrap()
        )],
        "only the successful run is stored"
    );
    println!(
        "the failed run ended {:.1}s after its slot; the next one started {:.1}s after its own",
        time(&failed, "completionTime") - failed_tick as f64,
        time(&next, "startTime") - tick_of(name) as f64
    );
    println!(
        "wrong-credentials test took {:.0}s",
        began.elapsed().as_secs_f64()
    );
}

#[test]
fn kill_9_mid_backup_marks_it_interrupted_removes_its_uploads_and_the_next_scheduled_run_succeeds() {
    let began = Instant::now();
    let mut t = Bk::start("postgresql");
    // ~130 MB of hex text: pg_dump -Fc needs 10-20 s here and writes ~25 MB (past three
    // S3 parts), so berth is reliably killed in the middle.
    let t0 = Instant::now();
    t.sh(psql(
        &t.db.creds,
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         INSERT INTO t SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) \
         FROM generate_series(1, 1000000) g",
    ));
    let checksum = "SELECT count(*) || ':' || md5(string_agg(md5(v), '' ORDER BY id)) FROM t";
    let original = t.sh(psql(&t.db.creds, checksum));
    println!("filled in {:.1}s: {original}", t0.elapsed().as_secs_f64());
    t.schedule("every-minute", "  - name: local\n  - name: s3\n");

    // Mid-backup: Running, both uploads recorded, the local file past the first S3 part
    // (so the multipart upload holds data), and SeaweedFS shows the upload.
    let (victim, upload_id) = t.w.until(
        "a scheduled backup to be streaming",
        Duration::from_secs(150),
        || {
            let (name, b) = t
                .runs("every-minute")
                .into_iter()
                .find(|(_, b)| b["status"]["phase"] == "Running")?;
            let pending = b["status"]["pending"].as_array()?;
            let upload_id = pending.iter().find(|p| p["storage"] == "s3")?["uploadId"]
                .as_str()?
                .to_owned();
            let partial = format!(
                "{}/{}/{}/{name}.gz.partial",
                t.st.dir.path().display(),
                t.w.ns,
                t.db.name
            );
            let bytes = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
            let uploads = t.w.rt.block_on(t.st.fs.multipart_uploads());
            (pending.len() == 2 && bytes > 10 * 1024 * 1024 && uploads.contains(&upload_id))
                .then_some((name, upload_id))
        },
    );
    t.w.s.kill();
    let victim_tick = tick_of(&victim);
    let killed_after_slot = chrono::Utc::now().timestamp_millis() as f64 / 1000.0 - victim_tick as f64;
    let leftovers = t.st.local_files();
    assert!(
        leftovers.len() == 1 && leftovers[0].ends_with(&format!("/{victim}.gz.partial")),
        "the crash leaves the partial file: {leftovers:?}"
    );
    assert!(t.w.rt.block_on(t.st.fs.multipart_uploads()).contains(&upload_id));
    let (local, s3) = t.st.stored(&t.w);
    assert!(
        local.is_empty() && s3.is_empty(),
        "nothing finished-looking after the crash: {local:?} {s3:?}"
    );

    let restarted = Instant::now();
    t.w.s.restart_hard();
    let b = t.w.until(
        "the interrupted backup to be failed",
        Duration::from_secs(60),
        || {
            let b = t.w.try_get("backup", &victim)?;
            (b["status"]["phase"] != "Running").then_some(b)
        },
    );
    let marked = restarted.elapsed().as_secs_f64();
    assert_eq!(b["status"]["phase"], "Failed", "{b}");
    assert_eq!(condition(&b, "Failed")["reason"], "Interrupted", "{b}");
    let error = b["status"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("interrupted") && error.ends_with("its unfinished uploads were removed"),
        "{error}"
    );
    assert!(
        t.st.local_files().is_empty(),
        "the .partial file is removed: {:?}",
        t.st.local_files()
    );
    assert!(
        !t.w.rt.block_on(t.st.fs.multipart_uploads()).contains(&upload_id),
        "the multipart upload {upload_id} is aborted"
    );
    assert_eq!(t.st.stored(&t.w), (vec![], vec![]));
    println!(
        "killed {killed_after_slot:.1}s after {victim}'s slot; after the restart it was \
         Failed/Interrupted in {marked:.1}s"
    );

    // The next scheduled run (the slot after the victim's) succeeds, and restores.
    let next = t.next_run_succeeds("every-minute", &victim);
    let name = next["metadata"]["name"].as_str().unwrap().to_owned();
    println!(
        "{name}: started {:.1}s after its slot, {} bytes in {:.1}s",
        time(&next, "startTime") - tick_of(&name) as f64,
        next["status"]["sizeBytes"],
        time(&next, "completionTime") - time(&next, "startTime")
    );
    check_copies(&t, &next, b"PGDMP");
    assert_eq!(
        t.w.try_get("backup", &victim).unwrap()["status"]["phase"],
        "Failed",
        "the interrupted run is never retried"
    );

    t.sh(psql(
        &t.db.creds,
        "TRUNCATE t; INSERT INTO t VALUES (1, 'destroyed')",
    ));
    assert_ne!(t.sh(psql(&t.db.creds, checksum)), original);
    let target = format!("database/{}", t.db.name);
    let t0 = Instant::now();
    let out =
        t.w.s
            .run(&[
                "restore",
                &target,
                "-n",
                &t.w.ns,
                "--backup",
                &name,
                "--storage",
                "s3",
            ])
            .ok();
    assert!(out.contains("succeeded"), "{out}");
    println!("restored {name} from s3 in {:.1}s", t0.elapsed().as_secs_f64());
    assert_eq!(
        t.sh(psql(&t.db.creds, checksum)),
        original,
        "the scheduled backup restores identical data"
    );

    // Bad input: a backup that does not exist fails the restore with the field named.
    let out =
        t.w.s
            .run(&["restore", &target, "-n", &t.w.ns, "--backup", "nope"]);
    assert!(!out.status.success());
    assert!(
        out.err().contains("spec.backup: backup \"nope\" not found"),
        "{}",
        out.err()
    );
    println!("kill -9 test took {:.0}s", began.elapsed().as_secs_f64());
}
