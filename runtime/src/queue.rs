//! The work queue: client-go's dirty + processing sets, delayed adds and per-key backoff.
//!
//! # Guarantees
//! - A key waiting in the queue is there once, however often it is added (dedup).
//! - A key handed out by [`WorkQueue::get`] is not handed out again until
//!   [`WorkQueue::done`]; an add meanwhile marks it dirty and it is queued again at `done`
//!   (so no key is ever processed by two workers at once, and no change is lost).
//! - [`WorkQueue::add_after`] keeps the earliest of several pending delays for one key.
//! - [`WorkQueue::add_rate_limited`] delays a key by the larger of its own exponential
//!   backoff (from [`QueueConfig::base_delay`] doubling to [`QueueConfig::max_delay`], with
//!   jitter) and a shared token bucket ([`QueueConfig::qps`], [`QueueConfig::burst`]);
//!   [`WorkQueue::forget`] resets the key's backoff. This is client-go's
//!   `DefaultControllerRateLimiter`: the bucket bounds the overall retry rate.
//! - After [`WorkQueue::shut_down`], `get` returns `None` at once: workers stop taking keys.
//!
//! # Caveats
//! - Delays run on tokio's clock, so tests can pause it.
//! - First-time adds (watch events) are not rate limited, as in client-go: an event storm is
//!   absorbed by dedup instead.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    hash::Hash,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use prometheus_client::metrics::gauge::Gauge;
use tokio::{sync::Notify, time::Instant};

/// Tunables of a [`WorkQueue`].
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// A key's first retry delay.
    pub base_delay: Duration,
    /// The longest retry delay (before jitter).
    pub max_delay: Duration,
    /// Sustained retries per second across all keys.
    pub qps: f64,
    /// Retries allowed at once before `qps` applies.
    pub burst: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(300),
            qps: 10.0,
            burst: 100,
        }
    }
}

/// A deduplicating, delaying, rate-limiting work queue of keys.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    config: QueueConfig,
    depth: Gauge,
}

#[derive(Debug)]
struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    /// Delayed adds by due time (the counter keeps equal instants apart).
    timers: BTreeMap<(Instant, u64), K>,
    waiting: HashMap<K, (Instant, u64)>,
    seq: u64,
    failures: HashMap<K, (u32, ExponentialBackoff)>,
    bucket: Bucket,
    shutting_down: bool,
}

/// A token bucket that reserves: a caller without a token gets the delay until its token.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// An empty queue; `depth` reports how many keys are ready.
    pub fn new(config: QueueConfig, depth: Gauge) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                timers: BTreeMap::new(),
                waiting: HashMap::new(),
                seq: 0,
                failures: HashMap::new(),
                bucket: Bucket {
                    tokens: f64::from(config.burst),
                    last: Instant::now(),
                },
                shutting_down: false,
            }),
            notify: Notify::new(),
            config,
            depth,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // A panic while holding this lock leaves consistent sets behind: keep going.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `key` now, unless it is already waiting.
    pub fn add(&self, key: K) {
        let mut st = self.lock();
        if st.add(key) {
            self.depth.set(st.queue.len() as i64);
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay` (at once for zero); the earliest pending delay wins.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let mut st = self.lock();
        if st.shutting_down {
            return;
        }
        let due = Instant::now() + delay;
        if let Some(&(at, seq)) = st.waiting.get(&key) {
            if at <= due {
                return;
            }
            st.timers.remove(&(at, seq));
        }
        st.seq += 1;
        let seq = st.seq;
        st.timers.insert((due, seq), key.clone());
        st.waiting.insert(key, (due, seq));
        drop(st);
        // A waiting worker recomputes how long to sleep.
        self.notify.notify_one();
    }

    /// Queues `key` after its next backoff delay (see the module docs); returns the delay.
    pub fn add_rate_limited(&self, key: K) -> Duration {
        let delay = {
            let mut st = self.lock();
            let config = &self.config;
            let (count, backoff) = st.failures.entry(key.clone()).or_insert_with(|| {
                let builder = ExponentialBuilder::default()
                    .with_min_delay(config.base_delay)
                    .with_max_delay(config.max_delay)
                    .with_factor(2.0)
                    .with_jitter()
                    .without_max_times();
                (0, builder.build())
            });
            *count += 1;
            let own = backoff.next().unwrap_or(config.max_delay);
            let shared = st.bucket.reserve(config.qps, config.burst);
            own.max(shared)
        };
        self.add_after(key, delay);
        delay
    }

    /// Resets `key`'s backoff (after a success).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// How many times `key` failed since it was last forgotten.
    pub fn retries(&self, key: &K) -> u32 {
        self.lock().failures.get(key).map_or(0, |(n, _)| *n)
    }

    /// Takes the next ready key, waiting for one; `None` once the queue is shut down.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut st = self.lock();
                if st.shutting_down {
                    return None;
                }
                st.promote_due(Instant::now());
                if let Some(key) = st.queue.pop_front() {
                    st.dirty.remove(&key);
                    st.processing.insert(key.clone());
                    self.depth.set(st.queue.len() as i64);
                    let more = !st.queue.is_empty();
                    drop(st);
                    if more {
                        // Pass the wake-up on: adds may have coalesced into one permit.
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
                st.timers.first_key_value().map(|((at, _), _)| *at)
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` as processed; queues it again if it was added meanwhile.
    pub fn done(&self, key: &K) {
        let mut st = self.lock();
        st.processing.remove(key);
        if st.dirty.contains(key) && !st.shutting_down {
            st.queue.push_back(key.clone());
            self.depth.set(st.queue.len() as i64);
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Keys ready to be taken.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is ready.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys being processed.
    pub fn processing(&self) -> usize {
        self.lock().processing.len()
    }

    /// Stops handing out keys: every `get` returns `None` from now on.
    pub fn shut_down(&self) {
        self.lock().shutting_down = true;
        self.notify.notify_waiters();
    }
}

impl<K: Clone + Eq + Hash> State<K> {
    /// Queues `key` unless dirty already; returns whether it became ready.
    fn add(&mut self, key: K) -> bool {
        if self.shutting_down || self.dirty.contains(&key) {
            return false;
        }
        self.dirty.insert(key.clone());
        if self.processing.contains(&key) {
            return false;
        }
        self.queue.push_back(key);
        true
    }

    fn promote_due(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.waiting.remove(&key);
            self.add(key);
        }
    }
}

impl Bucket {
    fn reserve(&mut self, qps: f64, burst: u32) -> Duration {
        if qps <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * qps).min(f64::from(burst));
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / qps)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(config: QueueConfig) -> WorkQueue<&'static str> {
        WorkQueue::new(config, Gauge::default())
    }

    fn unlimited() -> QueueConfig {
        QueueConfig {
            qps: 0.0,
            ..QueueConfig::default()
        }
    }

    /// Whether a key is ready within `d` of paused time.
    async fn try_get(q: &WorkQueue<&'static str>, d: Duration) -> Option<&'static str> {
        tokio::time::timeout(d, q.get()).await.ok().flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_keys_are_deduplicated() {
        let q = queue(unlimited());
        for k in ["a", "a", "b", "a", "b"] {
            q.add(k);
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert_eq!(try_get(&q, Duration::from_secs(1)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_changed_while_processing_runs_again_after_done() {
        let q = queue(unlimited());
        q.add("a");
        assert_eq!(q.get().await, Some("a"));
        q.add("a");
        q.add("a");
        // Not handed to a second worker while the first holds it.
        assert_eq!(try_get(&q, Duration::from_secs(1)).await, None);
        q.done(&"a");
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        assert_eq!(try_get(&q, Duration::from_secs(1)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_waits_and_the_earliest_delay_wins() {
        let q = queue(unlimited());
        let start = Instant::now();
        q.add_after("a", Duration::from_secs(10));
        q.add_after("a", Duration::from_secs(3));
        q.add_after("a", Duration::from_secs(7));
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        q.done(&"a");
        assert_eq!(try_get(&q, Duration::from_secs(60)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_per_key_and_resets_on_forget() {
        let q = queue(unlimited());
        let base = Duration::from_millis(5);
        for n in 0..10u32 {
            let start = Instant::now();
            let delay = q.add_rate_limited("a");
            let floor = base * 2u32.pow(n);
            assert!(delay >= floor && delay < floor * 2, "retry {n}: {delay:?}");
            assert_eq!(q.get().await, Some("a"));
            // Tokio's timer has millisecond resolution.
            let waited = start.elapsed();
            assert!(
                waited >= delay && waited <= delay + Duration::from_millis(1),
                "{waited:?}"
            );
            q.done(&"a");
        }
        assert_eq!(q.retries(&"a"), 10);
        // Another key has its own backoff.
        assert!(q.add_rate_limited("b") < base * 2);
        q.forget(&"a");
        assert_eq!(q.retries(&"a"), 0);
        assert!(q.add_rate_limited("a") < base * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_capped() {
        let q = queue(QueueConfig {
            max_delay: Duration::from_secs(1),
            ..unlimited()
        });
        let delays: Vec<_> = (0..20).map(|_| q.add_rate_limited("a")).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(2)));
        assert!(delays[19] >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_bucket_limits_retries_across_keys() {
        let q: WorkQueue<String> = WorkQueue::new(
            QueueConfig {
                qps: 10.0,
                burst: 5,
                ..QueueConfig::default()
            },
            Gauge::default(),
        );
        let delays: Vec<_> = (0..20).map(|i| q.add_rate_limited(format!("k{i}"))).collect();
        for d in &delays[..5] {
            assert!(*d < Duration::from_millis(10), "within the burst: {d:?}");
        }
        for (i, d) in delays[5..].iter().enumerate() {
            let expect = Duration::from_millis(100 * (i as u64 + 1));
            assert!(
                d.abs_diff(expect) < Duration::from_millis(1),
                "key {}: {d:?}",
                i + 5
            );
        }
        // 20 keys at 10 qps after a burst of 5: the last is ready after 1.5 s.
        let start = Instant::now();
        for _ in 0..20 {
            let k = q.get().await;
            assert!(k.is_some());
        }
        assert!(start.elapsed() >= Duration::from_millis(1500));
        // The bucket refills with time.
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(q.add_rate_limited("fresh".into()) < Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn shut_down_stops_handing_out_keys() {
        let q = std::sync::Arc::new(queue(unlimited()));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.ok().flatten(), None);
        q.add("a");
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn many_workers_share_a_burst_of_keys() {
        let q = std::sync::Arc::new(WorkQueue::<u32>::new(unlimited(), Gauge::default()));
        let mut workers = Vec::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..4 {
            let (q, tx) = (q.clone(), tx.clone());
            workers.push(tokio::spawn(async move {
                while let Some(k) = q.get().await {
                    let _ = tx.send(k);
                    q.done(&k);
                }
            }));
        }
        for k in 0..100 {
            q.add(k);
        }
        let mut seen = HashSet::new();
        while seen.len() < 100 {
            if let Some(k) = rx.recv().await {
                seen.insert(k);
            }
        }
        q.shut_down();
        for w in workers {
            assert!(w.await.is_ok());
        }
    }
}
