//! The controller runtime end to end: a real embedded store, the real `Api`, real informers,
//! queues and workers, and recording test reconcilers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use berth::{
    api::{Api, WriteOptions},
    store::embedded::{EmbeddedOptions, EmbeddedStore},
};
use berth_crds::{
    Object,
    kinds::{ProjectSpec, event::EventType},
    registry::KindInfo,
};
use berth_runtime::{
    Action, Api as TypedApi, Controller, ControllerConfig, Informer, Manager, Metrics, ObjectRef, Reconciler,
    client::{self, Client, ObjectList, WatchStream},
    events::{self, Recorder},
    finalizer::{self, finalizer},
    object,
};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn kind(name: &str) -> &'static KindInfo {
    berth_crds::lookup(name).unwrap()
}

/// An embedded store in a temp dir and the API over it.
struct Env {
    api: Api,
    _dir: tempfile::TempDir,
}

fn env_with(history_limit: u64) -> Env {
    let dir = tempfile::Builder::new()
        .prefix("berth-runtime-")
        .tempdir()
        .unwrap();
    let store = EmbeddedStore::open_with(
        dir.path().join("data"),
        EmbeddedOptions {
            history_limit,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    Env {
        api: Api::new(Arc::new(store)),
        _dir: dir,
    }
}

fn env() -> Env {
    env_with(100_000)
}

async fn create_project(api: &Api, name: &str, description: &str) {
    let body = json!({"metadata": {"name": name}, "spec": {"description": description}});
    api.create(kind("Project"), None, body, WriteOptions::default())
        .await
        .unwrap();
}

async fn set_description(api: &Api, name: &str, description: &str) {
    api.patch(
        kind("Project"),
        None,
        name,
        json!({"spec": {"description": description}}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
}

fn description(obj: &Object<ProjectSpec>) -> String {
    obj.spec.description.clone().unwrap_or_default()
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A reconciler that records what it saw, checks that no key runs twice at once, and can be
/// told to fail or requeue.
#[derive(Default)]
struct Recording {
    in_flight: Mutex<HashSet<ObjectRef>>,
    max_in_flight: AtomicUsize,
    overlaps: AtomicUsize,
    runs: Mutex<Vec<(String, String, Instant)>>,
    /// Per key: how many more runs fail.
    failures: Mutex<HashMap<String, usize>>,
    /// Per key: requeue after this.
    requeue: Mutex<HashMap<String, Duration>>,
    work: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("told to fail")]
struct Told;

#[async_trait::async_trait]
impl Reconciler<ProjectSpec> for Recording {
    type Error = Told;

    async fn reconcile(&self, obj: Arc<Object<ProjectSpec>>) -> Result<Action, Told> {
        let key = ObjectRef::of(&obj);
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            if !in_flight.insert(key.clone()) {
                self.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            self.max_in_flight.fetch_max(in_flight.len(), Ordering::SeqCst);
        }
        if self.work.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(self.work).await;
        }
        self.in_flight.lock().unwrap().remove(&key);
        self.runs
            .lock()
            .unwrap()
            .push((key.name.clone(), description(&obj), Instant::now()));
        if let Some(left) = self.failures.lock().unwrap().get_mut(&key.name)
            && *left > 0
        {
            *left -= 1;
            return Err(Told);
        }
        Ok(match self.requeue.lock().unwrap().get(&key.name) {
            Some(d) => Action::requeue(*d),
            None => Action::await_change(),
        })
    }
}

impl Recording {
    fn runs_of(&self, name: &str) -> Vec<(String, Instant)> {
        self.runs
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, d, t)| (d.clone(), *t))
            .collect()
    }

    fn last_seen(&self, name: &str) -> Option<String> {
        self.runs_of(name).last().map(|(d, _)| d.clone())
    }
}

/// A running manager with one recording controller over Projects.
struct Running {
    recording: Arc<Recording>,
    informer: Informer<ProjectSpec>,
    metrics: Metrics,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// Forwards to the recording reconciler (the manager wants to own its reconciler).
struct Shared(Arc<Recording>);

#[async_trait::async_trait]
impl Reconciler<ProjectSpec> for Shared {
    type Error = Told;
    async fn reconcile(&self, obj: Arc<Object<ProjectSpec>>) -> Result<Action, Told> {
        self.0.reconcile(obj).await
    }
}

fn start(client: Arc<dyn Client>, recording: Recording, config: ControllerConfig) -> Running {
    let metrics = Metrics::new();
    let mut manager = Manager::new(client, metrics.clone());
    let informer = manager.informer::<ProjectSpec>();
    let recording = Arc::new(recording);
    manager.add(
        Controller::new("recording", informer.clone()).with_config(config),
        Shared(recording.clone()),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(manager.run(stop.clone()));
    Running {
        recording,
        informer,
        metrics,
        stop,
        task,
    }
}

fn counter(metrics: &Metrics, line_prefix: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rapid_updates_coalesce_and_the_last_reconcile_sees_the_final_spec() {
    let env = env();
    create_project(&env.api, "burst", "v0").await;
    let run = start(
        Arc::new(env.api.clone()),
        Recording {
            work: Duration::from_millis(50),
            ..Recording::default()
        },
        ControllerConfig::default(),
    );
    wait_for("the first reconcile", Duration::from_secs(10), || {
        run.recording.last_seen("burst").is_some()
    })
    .await;
    for i in 1..=1000 {
        set_description(&env.api, "burst", &format!("v{i}")).await;
    }
    wait_for("a reconcile of the final spec", Duration::from_secs(30), || {
        run.recording.last_seen("burst").as_deref() == Some("v1000")
    })
    .await;
    let runs = run.recording.runs_of("burst").len();
    eprintln!("1000 updates of one object: {runs} reconciles");
    // Coalescing, not timing: each reconcile takes 50 ms, so the count tracks how long the
    // 1,000 writes took (~150 on a quiet machine, ~220 seen under a loaded test run). Half
    // the updates is a bound no load here has come near, and still proves deduplication.
    assert!(runs <= 500, "1000 updates took {runs} reconciles");
    assert_eq!(run.recording.overlaps.load(Ordering::SeqCst), 0);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn no_key_is_reconciled_concurrently_under_eight_workers() {
    let env = env();
    let names: Vec<String> = (0..100).map(|i| format!("key-{i}")).collect();
    for n in &names {
        create_project(&env.api, n, "0").await;
    }
    let run = start(
        Arc::new(env.api.clone()),
        Recording {
            work: Duration::from_millis(1),
            ..Recording::default()
        },
        ControllerConfig {
            workers: 8,
            ..ControllerConfig::default()
        },
    );
    // 10,000 updates: 100 writers, one per key, 100 updates each, all at once.
    let mut writers = Vec::new();
    for n in names.clone() {
        let api = env.api.clone();
        writers.push(tokio::spawn(async move {
            for i in 1..=100 {
                set_description(&api, &n, &i.to_string()).await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    wait_for(
        "every key reconciled at its final spec",
        Duration::from_secs(60),
        || {
            names
                .iter()
                .all(|n| run.recording.last_seen(n).as_deref() == Some("100"))
        },
    )
    .await;
    let r = &run.recording;
    assert_eq!(
        r.overlaps.load(Ordering::SeqCst),
        0,
        "a key ran on two workers at once"
    );
    let parallel = r.max_in_flight.load(Ordering::SeqCst);
    assert!(
        parallel > 1,
        "workers never ran in parallel ({parallel}): the check proves nothing"
    );
    assert!(parallel <= 8, "more reconciles at once ({parallel}) than workers");
    let total = r.runs.lock().unwrap().len();
    eprintln!("10,000 updates of 100 keys under 8 workers: {total} reconciles, {parallel} at most at once");
    assert!(total < 10_100, "{total} reconciles for 10,000 events");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_reconcile_backs_off_exponentially_and_stops_after_success() {
    let env = env();
    create_project(&env.api, "flaky", "x").await;
    let recording = Recording::default();
    recording.failures.lock().unwrap().insert("flaky".into(), 6);
    let run = start(Arc::new(env.api.clone()), recording, ControllerConfig::default());
    wait_for("the seventh (successful) run", Duration::from_secs(20), || {
        run.recording.runs_of("flaky").len() >= 7
    })
    .await;
    let times: Vec<Instant> = run.recording.runs_of("flaky").iter().map(|(_, t)| *t).collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, gap) in gaps.iter().enumerate() {
        // 5 ms doubling, with up to +100 % jitter.
        let floor = Duration::from_millis(5) * 2u32.pow(n as u32);
        assert!(
            *gap >= floor,
            "retry {n} came after {gap:?}, before {floor:?}: {gaps:?}"
        );
    }
    assert!(gaps[5] > gaps[0] * 4, "delays do not grow: {gaps:?}");
    assert_eq!(counter(&run.metrics, "berth_reconcile_errors_total"), 6);
    // Absence check: a further retry would come within twice the last delay (plus jitter).
    tokio::time::sleep(gaps[5] * 4).await;
    assert_eq!(
        run.recording.runs_of("flaky").len(),
        7,
        "it kept retrying after success"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_after_is_honoured() {
    let env = env();
    create_project(&env.api, "periodic", "x").await;
    let recording = Recording::default();
    let every = Duration::from_millis(200);
    recording.requeue.lock().unwrap().insert("periodic".into(), every);
    let run = start(Arc::new(env.api.clone()), recording, ControllerConfig::default());
    wait_for("four runs", Duration::from_secs(10), || {
        run.recording.runs_of("periodic").len() >= 4
    })
    .await;
    let runs = run.recording.runs_of("periodic");
    for w in runs.windows(2) {
        let gap = w[1].1 - w[0].1;
        assert!(gap >= every && gap < every * 5, "requeue gap {gap:?}");
    }
    run.stop().await;
}

/// A client whose watches the test can cut, and whose new watches it can hold back.
struct Flaky {
    api: Api,
    /// Bumped to end every running watch.
    cut: tokio::sync::watch::Sender<u64>,
    gate: Arc<tokio::sync::Semaphore>,
    watches: AtomicUsize,
}

impl Flaky {
    fn new(api: Api) -> Self {
        Self {
            api,
            cut: tokio::sync::watch::Sender::new(0),
            gate: Arc::new(tokio::sync::Semaphore::new(1_000)),
            watches: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl Client for Flaky {
    async fn get(&self, k: &'static KindInfo, ns: Option<&str>, name: &str) -> Result<Value, client::Error> {
        Client::get(&self.api, k, ns, name).await
    }
    async fn list(
        &self,
        k: &'static KindInfo,
        ns: Option<&str>,
        sel: &str,
    ) -> Result<ObjectList, client::Error> {
        Client::list(&self.api, k, ns, sel).await
    }
    async fn watch(&self, k: &'static KindInfo, rv: i64) -> Result<WatchStream, client::Error> {
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| client::Error::Other(e.to_string()))?;
        drop(permit);
        // Which cut this watch is subject to is fixed before it counts as started: a test that
        // sees the count and then cuts always cuts this watch.
        let mut rx = self.cut.subscribe();
        let started = *rx.borrow_and_update();
        self.watches.fetch_add(1, Ordering::SeqCst);
        let inner = Client::watch(&self.api, k, rv).await?;
        let cut = async move {
            let _ = rx.wait_for(|g| *g != started).await;
        };
        let ended =
            futures::stream::once(async { Err(client::Error::Unavailable("test cut the watch".into())) });
        Ok(inner.take_until(Box::pin(cut)).chain(ended).boxed())
    }
    async fn create(
        &self,
        k: &'static KindInfo,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, client::Error> {
        Client::create(&self.api, k, ns, obj).await
    }
    async fn patch(
        &self,
        k: &'static KindInfo,
        ns: Option<&str>,
        n: &str,
        p: Value,
    ) -> Result<Value, client::Error> {
        Client::patch(&self.api, k, ns, n, p).await
    }
    async fn patch_status(
        &self,
        k: &'static KindInfo,
        ns: Option<&str>,
        n: &str,
        p: Value,
    ) -> Result<Value, client::Error> {
        Client::patch_status(&self.api, k, ns, n, p).await
    }
    async fn delete(&self, k: &'static KindInfo, ns: Option<&str>, n: &str) -> Result<(), client::Error> {
        Client::delete(&self.api, k, ns, n).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_watch_resumes_without_missing_an_update() {
    let env = env();
    create_project(&env.api, "resume", "before").await;
    let flaky = Arc::new(Flaky::new(env.api.clone()));
    let run = start(flaky.clone(), Recording::default(), ControllerConfig::default());
    wait_for("the first reconcile", Duration::from_secs(10), || {
        run.recording.last_seen("resume").is_some()
    })
    .await;
    wait_for("the watch", Duration::from_secs(10), || {
        flaky.watches.load(Ordering::SeqCst) == 1
    })
    .await;
    flaky.cut.send_modify(|g| *g += 1);
    set_description(&env.api, "resume", "during the gap").await;
    wait_for(
        "the update made while the watch was down",
        Duration::from_secs(10),
        || run.recording.last_seen("resume").as_deref() == Some("during the gap"),
    )
    .await;
    assert!(flaky.watches.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        counter(&run.metrics, "berth_informer_relists_total"),
        1,
        "it relisted instead of resuming"
    );
    assert!(counter(&run.metrics, "berth_watch_restarts_total") >= 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_relists_and_the_cache_ends_equal_to_the_store() {
    let env = env_with(8);
    for i in 0..10 {
        create_project(&env.api, &format!("p{i}"), "0").await;
    }
    let flaky = Arc::new(Flaky::new(env.api.clone()));
    let run = start(flaky.clone(), Recording::default(), ControllerConfig::default());
    wait_for("the watch", Duration::from_secs(10), || {
        flaky.watches.load(Ordering::SeqCst) == 1
    })
    .await;
    // Hold new watches back, cut the running one, and write far past the history limit.
    let held = flaky.gate.acquire_many(1_000).await.unwrap();
    flaky.cut.send_modify(|g| *g += 1);
    for i in 0..5 {
        env.api
            .delete(kind("Project"), None, &format!("p{i}"), &Default::default())
            .await
            .unwrap();
    }
    for i in 5..10 {
        set_description(&env.api, &format!("p{i}"), "changed").await;
    }
    for i in 10..30 {
        create_project(&env.api, &format!("p{i}"), "new").await;
    }
    drop(held);
    let store_state = || async {
        let list = env
            .api
            .list(kind("Project"), None, &Default::default(), &Default::default())
            .await
            .unwrap();
        list.items
            .iter()
            .map(|o| (berth_crds::json::name(o).to_owned(), object::resource_version(o)))
            .collect::<BTreeMap<_, _>>()
    };
    let expected = store_state().await;
    assert_eq!(expected.len(), 25);
    let informer = run.informer.clone();
    let cache_state = move || {
        informer
            .list()
            .iter()
            .map(|o| (o.name().to_owned(), object::revision(o)))
            .collect::<BTreeMap<_, _>>()
    };
    wait_for("the cache to equal the store", Duration::from_secs(20), || {
        cache_state() == expected
    })
    .await;
    assert!(
        counter(&run.metrics, "berth_informer_relists_total") >= 2,
        "no relist after Gone"
    );
    wait_for("the new objects reconciled", Duration::from_secs(10), || {
        run.recording.last_seen("p29").as_deref() == Some("new")
    })
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_project_controller_at_rest_makes_no_writes_between_resyncs() {
    let env = env();
    for i in 0..100 {
        create_project(&env.api, &format!("rest-{i}"), "").await;
    }
    let metrics = Metrics::new();
    let mut manager = Manager::new(Arc::new(env.api.clone()), metrics.clone());
    let options = berth_controllers::Options {
        controller: ControllerConfig {
            resync: Duration::from_millis(300),
            ..ControllerConfig::default()
        },
        // The Docker-driving controllers have their own rest-cost checks (tests/apps.rs).
        disabled: vec![
            "server".into(),
            "destination".into(),
            "application".into(),
            "database".into(),
        ],
        ..Default::default()
    };
    berth_controllers::install(&mut manager, &options);
    let stop = CancellationToken::new();
    let task = tokio::spawn(manager.run(stop.clone()));
    let api = env.api.clone();
    let ready = || async {
        let list = api
            .list(kind("Project"), None, &Default::default(), &Default::default())
            .await
            .unwrap();
        list.items.iter().all(|p| {
            p.pointer("/status/conditions/0/reason").and_then(Value::as_str) == Some("EnvironmentsReady")
                && p.pointer("/status/environments/0").and_then(Value::as_str)
                    == Some(&format!("{}-production", berth_crds::json::name(p)))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready().await {
        assert!(Instant::now() < deadline, "projects never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revision = env.api.store().current_revision().await.unwrap();
    let writes = metrics.writes_by("project");
    assert!(
        writes >= 100,
        "status was written {writes} times for 100 projects"
    );
    let reconciles = counter(&metrics, "berth_reconcile_total{controller=\"project\"}");
    // Two full resyncs later...
    wait_for("two resyncs", Duration::from_secs(20), || {
        counter(&metrics, "berth_reconcile_total{controller=\"project\"}") >= reconciles + 200
    })
    .await;
    // ...nothing was written, through the API or to the store, and Docker was never called.
    assert_eq!(metrics.writes_by("project"), writes);
    assert_eq!(env.api.store().current_revision().await.unwrap(), revision);
    assert!(
        !metrics
            .render()
            .lines()
            .any(|l| l.starts_with("berth_docker_api_calls_total{"))
    );
    // A new Environment of one project updates just that project's status.
    let staging = json!({"metadata": {"name": "rest-7-staging"}, "spec": {"project": "rest-7"}});
    env.api
        .create(kind("Environment"), None, staging, WriteOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = env.api.get(kind("Project"), None, "rest-7").await.unwrap();
        if p.pointer("/status/environments").map(Value::to_string)
            == Some(r#"["rest-7-production","rest-7-staging"]"#.into())
        {
            assert_eq!(
                p.pointer("/status/conditions/0/message"),
                Some(&json!("2 environments"))
            );
            break;
        }
        assert!(Instant::now() < deadline, "status not updated: {p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.writes_by("project"), writes + 1);
    stop.cancel();
    task.await.unwrap();
}

/// Uses the finalizer helper: counts applies and cleanups.
struct Finalizing {
    api: TypedApi<ProjectSpec>,
    applied: Arc<AtomicUsize>,
    cleaned: Arc<AtomicUsize>,
    /// How many cleanups answer "not finished yet" before one finishes.
    hold: usize,
}

#[async_trait::async_trait]
impl Reconciler<ProjectSpec> for Finalizing {
    type Error = finalizer::Error<Infallible>;
    async fn reconcile(&self, obj: Arc<Object<ProjectSpec>>) -> Result<Action, Self::Error> {
        finalizer(&self.api, "berth.dev/test-cleanup", obj, |ev| async move {
            match ev {
                finalizer::Event::Apply(_) => {
                    self.applied.fetch_add(1, Ordering::SeqCst);
                }
                finalizer::Event::Cleanup(_) => {
                    if self.cleaned.fetch_add(1, Ordering::SeqCst) < self.hold {
                        return Ok(Action::cleanup_pending(Duration::from_millis(300)));
                    }
                }
            };
            Ok(Action::await_change())
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_finalizer_helper_adds_applies_cleans_up_and_lets_go() {
    let env = env();
    create_project(&env.api, "fin", "").await;
    let metrics = Metrics::new();
    let mut manager = Manager::new(Arc::new(env.api.clone()), metrics.clone());
    let informer = manager.informer::<ProjectSpec>();
    let f = Finalizing {
        api: manager.api_for("fin"),
        applied: Arc::new(AtomicUsize::new(0)),
        cleaned: Arc::new(AtomicUsize::new(0)),
        hold: 2,
    };
    let (applied, cleaned) = (f.applied.clone(), f.cleaned.clone());
    manager.add(Controller::new("fin", informer), f);
    let stop = CancellationToken::new();
    let task = tokio::spawn(manager.run(stop.clone()));
    wait_for("apply", Duration::from_secs(10), || {
        applied.load(Ordering::SeqCst) >= 1
    })
    .await;
    let p = env.api.get(kind("Project"), None, "fin").await.unwrap();
    assert_eq!(berth_crds::json::finalizers(&p), ["berth.dev/test-cleanup"]);
    assert_eq!(cleaned.load(Ordering::SeqCst), 0);
    env.api
        .delete(kind("Project"), None, "fin", &Default::default())
        .await
        .unwrap();
    wait_for("a pending cleanup", Duration::from_secs(10), || {
        cleaned.load(Ordering::SeqCst) >= 1
    })
    .await;
    let held = env.api.get(kind("Project"), None, "fin").await.unwrap();
    assert_eq!(
        berth_crds::json::finalizers(&held),
        ["berth.dev/test-cleanup"],
        "a pending cleanup keeps the finalizer"
    );
    wait_for("cleanup", Duration::from_secs(10), || {
        cleaned.load(Ordering::SeqCst) == 3
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.api.get(kind("Project"), None, "fin").await.is_ok() {
        assert!(Instant::now() < deadline, "the object stayed after cleanup");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_deduplicated_findable_by_label_and_aged_out() {
    let env = env();
    create_project(&env.api, "ev", "").await;
    let client: Arc<dyn Client> = Arc::new(env.api.clone());
    let project = TypedApi::<ProjectSpec>::all(client.clone())
        .get("ev")
        .await
        .unwrap();
    let recorder = Recorder::new(client.clone(), "test-controller");
    for _ in 0..3 {
        recorder
            .publish(&project, EventType::Warning, "Failed", "it broke")
            .await
            .unwrap();
    }
    recorder
        .publish(&project, EventType::Normal, "Ready", "fine")
        .await
        .unwrap();
    let selector = format!("berth.dev/involved-uid={}", project.uid());
    let list = client.list(kind("Event"), None, &selector).await.unwrap();
    assert_eq!(list.items.len(), 2);
    let failed = list
        .items
        .iter()
        .find(|e| e["spec"]["reason"] == "Failed")
        .unwrap();
    assert_eq!(failed["spec"]["count"], 3);
    assert_eq!(failed["spec"]["involvedObject"]["name"], "ev");
    assert_eq!(failed["metadata"]["ownerReferences"][0]["uid"], project.uid());
    // Nothing is old yet; an hour later everything is.
    let now = chrono::Utc::now();
    assert_eq!(
        events::sweep(client.as_ref(), events::DEFAULT_TTL, now)
            .await
            .unwrap(),
        0
    );
    let later = now + chrono::Duration::hours(2);
    assert_eq!(
        events::sweep(client.as_ref(), events::DEFAULT_TTL, later)
            .await
            .unwrap(),
        2
    );
    assert!(
        client
            .list(kind("Event"), None, "")
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_reconcile_finish() {
    let env = env();
    create_project(&env.api, "slow", "").await;
    let run = start(
        Arc::new(env.api.clone()),
        Recording {
            work: Duration::from_millis(500),
            ..Recording::default()
        },
        ControllerConfig::default(),
    );
    wait_for("the reconcile to start", Duration::from_secs(10), || {
        !run.recording.in_flight.lock().unwrap().is_empty()
    })
    .await;
    let recording = run.recording.clone();
    run.stop().await;
    assert_eq!(
        recording.runs_of("slow").len(),
        1,
        "the in-flight reconcile was cut short"
    );
}
