//! Routing and delivery end to end: a real `berth serve` (Docker controllers off but in the
//! last test), Events created through the API as a controller's recorder creates them, and
//! the recording HTTP receiver as a webhook Notifier.
//!
//! - an Event reaches the receiver within 2 s of being recorded (groupWait 1 s);
//! - the receiver answering 503 three times (about 7 s of outage with the 1-2-4 s backoff,
//!   shorter than the 30 s to keep the suite's budget), then 200: everything arrives,
//!   nothing is lost;
//! - 50 Events within the group window make exactly one message;
//! - berth killed (SIGKILL) with a notification pending delivers it after the restart;
//! - a recovery (`Unhealthy` → `Recovered`) sends a resolved message;
//! - a real `ImagePullFailed` from the Application controller (Docker) is delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    http::{Client, collection, object},
    receivers::{HttpReceiver, Recorded, Reply},
    server::{Backend, BerthServer},
};
use serde_json::{Value, json};

const NO_DOCKER: &str = "server,destination,application,database,proxy,backup,service,gitrepository";

fn start() -> BerthServer {
    BerthServer::start(Backend::Embedded, &["--disable-controllers", NO_DOCKER])
}

async fn notifier(c: &Client, name: &str, receiver: &HttpReceiver, route: Value) {
    let body = json!({
        "apiVersion": "berth.dev/v1", "kind": "Notifier", "metadata": {"name": name},
        "spec": {"webhook": {"url": format!("{}/hook/{name}", receiver.url())}, "route": route},
    });
    c.create(&collection(None, "notifiers"), &body).await;
}

/// Creates an Event as the runtime's recorder does (cluster-scoped, `involved-*` labels).
async fn event(c: &Client, app: &str, reason: &str, message: &str) -> String {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let name = format!("{app}-{}", reason.to_ascii_lowercase());
    let body = json!({
        "apiVersion": "berth.dev/v1", "kind": "Event",
        "metadata": {"name": name, "labels": {
            "berth.dev/involved-uid": format!("uid-{app}"), "berth.dev/involved-kind": "application",
            "berth.dev/involved-name": app, "berth.dev/involved-namespace": "shop"}},
        "spec": {
            "involvedObject": {"kind": "Application", "namespace": "shop", "name": app, "uid": format!("uid-{app}")},
            "type": if reason == "Recovered" { "Normal" } else { "Warning" }, "reason": reason, "message": message, "source": "application-controller",
            "count": 1, "firstTimestamp": now, "lastTimestamp": now,
        },
    });
    c.create(&collection(None, "events"), &body).await;
    name
}

async fn status(c: &Client, name: &str) -> Value {
    let (code, obj) = c.get(&object(None, "notifiers", name)).await;
    assert_eq!(code, 200, "{obj}");
    obj["status"].clone()
}

async fn until<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn hooks(r: &HttpReceiver) -> Vec<Recorded> {
    r.requests()
        .into_iter()
        .filter(|q| q.path.starts_with("/hook/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_arrives_within_two_seconds_and_names_where_to_look() {
    let s = start();
    let c = Client::new(&s.url, Some(&s.token));
    let r = HttpReceiver::start().await;
    notifier(&c, "ops", &r, json!({"groupWait": "1s", "types": ["Warning"]})).await;
    let t0 = Instant::now();
    event(&c, "web", "ImagePullFailed", "image nginx:nope not found").await;
    let got = until("the webhook", Duration::from_secs(10), async || {
        hooks(&r).into_iter().next()
    })
    .await;
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "delivered after {took:?}");
    let body = got.json();
    assert_eq!(body["event"], "ImagePullFailed");
    assert_eq!(
        body["object"],
        json!({"kind": "Application", "namespace": "shop", "name": "web"})
    );
    assert_eq!(body["describe"], "berth describe application/web -n shop");
    let text = body["message"].as_str().unwrap();
    assert!(
        text.contains("image nginx:nope not found") && text.contains("Application shop/web"),
        "{text}"
    );
    let st = until("status", Duration::from_secs(5), async || {
        let st = status(&c, "ops").await;
        (st["sent"] == 1).then_some(st)
    })
    .await;
    assert!(st["lastSentAt"].is_string(), "{st}");
    assert_eq!(st["failures"], 0);
    // `berth get notifiers` shows LAST SENT and FAILURES.
    let out = s.run(&["get", "notifiers"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("LAST SENT") && table.contains("FAILURES"),
        "{table}"
    );
    // Deduplicated: nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(hooks(&r).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_outage_loses_nothing() {
    let s = start();
    let c = Client::new(&s.url, Some(&s.token));
    let r = HttpReceiver::start().await;
    for _ in 0..3 {
        r.reply(Reply::new(503, "down"));
    }
    notifier(&c, "ops", &r, json!({"groupWait": "1s", "groupInterval": "1s"})).await;
    event(&c, "web", "BuildFailed", "exit status 2").await;
    event(&c, "db", "BackupFailed", "s3: access denied").await;
    let st = until("both groups delivered", Duration::from_secs(30), async || {
        let st = status(&c, "ops").await;
        (st["sent"] == 2 && st.get("pending").is_none()).then_some(st)
    })
    .await;
    assert_eq!(st["failures"], 0, "{st}");
    let all = hooks(&r);
    let seen: Vec<_> = all
        .iter()
        .map(|q| (q.json()["id"].clone(), q.json()["title"].clone()))
        .collect();
    assert_eq!(all.len(), 5, "3 refused, then one per group: {seen:#?}");
    let text: String = all
        .iter()
        .map(|q| String::from_utf8_lossy(&q.body).into_owned())
        .collect();
    assert!(
        text.contains("exit status 2") && text.contains("s3: access denied"),
        "{text}"
    );
    // A retried message keeps its id.
    let ids: std::collections::BTreeSet<String> = all
        .iter()
        .map(|q| q.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_failures_in_the_window_make_one_message() {
    let s = start();
    let c = Client::new(&s.url, Some(&s.token));
    let r = HttpReceiver::start().await;
    notifier(&c, "ops", &r, json!({"groupWait": "5s"})).await;
    let t0 = Instant::now();
    for i in 0..50 {
        event(
            &c,
            &format!("app{i}"),
            "DeploymentFailed",
            "rollout deadline exceeded",
        )
        .await;
    }
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "50 events took {:?}",
        t0.elapsed()
    );
    let got = until("the grouped message", Duration::from_secs(15), async || {
        hooks(&r).into_iter().next()
    })
    .await;
    let body = got.json();
    assert_eq!(body["title"], "DeploymentFailed: 50 objects", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("and 30 more"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hooks(&r).len(), 1, "exactly one message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_notification_survives_kill_9() {
    let mut s = start();
    let c = Client::new(&s.url, Some(&s.token));
    let r = HttpReceiver::start().await;
    r.reply(Reply::new(503, "down"));
    r.reply(Reply::new(503, "down"));
    notifier(&c, "ops", &r, json!({"groupWait": "1s"})).await;
    event(&c, "web", "Unhealthy", "health check failed 3 times").await;
    until("the first attempt", Duration::from_secs(10), async || {
        (!hooks(&r).is_empty()).then_some(())
    })
    .await;
    let st = status(&c, "ops").await;
    assert_eq!(
        st["pending"].as_array().map(Vec::len),
        Some(1),
        "recorded in the store: {st}"
    );
    s.restart_hard();
    let c = Client::new(&s.url, Some(&s.token));
    until(
        "delivery after the restart",
        Duration::from_secs(30),
        async || {
            let st = status(&c, "ops").await;
            (st["sent"] == 1 && st.get("pending").is_none()).then_some(())
        },
    )
    .await;
    let all = hooks(&r);
    let ids: Vec<Value> = all.iter().map(|q| q.json()["id"].clone()).collect();
    assert_eq!(ids.len(), 3, "503, then 503 and 200 after the restart: {ids:?}");
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one message id across the restart: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_sends_a_resolved_message() {
    let s = start();
    let c = Client::new(&s.url, Some(&s.token));
    let r = HttpReceiver::start().await;
    notifier(&c, "ops", &r, json!({"groupWait": "1s", "groupInterval": "1s"})).await;
    event(&c, "web", "Unhealthy", "health check failed 3 times").await;
    until("the problem", Duration::from_secs(10), async || {
        (hooks(&r).len() == 1).then_some(())
    })
    .await;
    event(&c, "web", "Recovered", "healthy again").await;
    let got = until("the resolution", Duration::from_secs(10), async || {
        hooks(&r).get(1).cloned()
    })
    .await;
    let body = got.json();
    assert_eq!(body["resolved"], true, "{body}");
    assert_eq!(body["event"], "Unhealthy", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("resolved: healthy again"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        hooks(&r).len(),
        2,
        "the recovery is not also sent as an event of its own"
    );
}

/// A real failure: the Application controller's `ImagePullFailed` event (a registry on a
/// closed loopback port) reaches the webhook.
#[test]
fn a_real_image_pull_failure_is_notified() {
    let w = common::world::World::start("notify", &[]);
    let r = w.rt.block_on(HttpReceiver::start());
    let c = Client::new(&w.s.url, Some(&w.s.token));
    let route = json!({"groupWait": "1s", "reasons": ["ImagePullFailed"]});
    w.rt.block_on(notifier(&c, "ops", &r, route));
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: nopull\n  namespace: {ns}\n\
         spec:\n  source:\n    image: 127.0.0.1:9/berth-test/absent-{run}:1\n  destination: default\n",
        ns = w.ns,
        run = w.run.id,
    ));
    let got = w.until(
        "the pull failure at the receiver",
        Duration::from_secs(30),
        || hooks(&r).into_iter().next(),
    );
    let body = got.json();
    assert_eq!(body["event"], "ImagePullFailed", "{body}");
    assert_eq!(body["object"]["name"], "nopull", "{body}");
    assert_eq!(
        body["describe"],
        format!("berth describe application/nopull -n {}", w.ns),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("absent-"), "{body}");
}
