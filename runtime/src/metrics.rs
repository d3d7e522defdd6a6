//! The runtime's Prometheus metrics, rendered in the text format for `/metrics`.
//!
//! # Guarantees
//! - One [`Metrics`] is one registry: a process (or a test) that makes its own gets its own
//!   counters.
//! - Families: `berth_workqueue_depth{controller}`, `berth_reconcile_total{controller}`,
//!   `berth_reconcile_errors_total{controller}`, `berth_reconcile_duration_seconds{controller}`,
//!   `berth_watch_restarts_total{kind}`, `berth_informer_relists_total{kind}`,
//!   `berth_informer_malformed_total{kind}`, `berth_api_writes_total{controller,verb}`,
//!   `berth_leader` (1 while this process runs the controllers).
//! - Adapters add their own families to the same registry ([`Metrics::register`]): the
//!   Docker adapter's `berth_docker_api_calls_total{operation}`, for one.

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels naming a controller.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// The controller's name.
    pub controller: String,
}

/// Labels naming a kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The kind, e.g. `Project`.
    pub kind: String,
}

/// Labels of an API write.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// The controller that wrote.
    pub controller: String,
    /// `create`, `patch`, `patch_status` or `delete`.
    pub verb: String,
}

/// Every metric of the runtime, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    adapters: Arc<Mutex<HashMap<&'static str, Box<dyn Any + Send>>>>,
    /// Keys ready in each controller's queue.
    pub queue_depth: Family<ControllerLabels, Gauge>,
    /// Reconciles run.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// Reconciles that failed.
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    /// How long reconciles take.
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// Watches resumed after they ended.
    pub watch_restarts: Family<KindLabels, Counter>,
    /// Full lists (at start and after Gone).
    pub relists: Family<KindLabels, Counter>,
    /// Stored objects that did not parse as their kind (once per resourceVersion).
    pub malformed: Family<KindLabels, Counter>,
    /// Writes through the API by controllers.
    pub api_writes: Family<WriteLabels, Counter>,
    /// 1 while this process holds leadership and runs the controllers.
    pub leader: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("berth");
        let m = Self {
            registry: Arc::new(Mutex::new(Registry::default())),
            adapters: Arc::new(Mutex::new(HashMap::new())),
            queue_depth: Family::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            }),
            watch_restarts: Family::default(),
            relists: Family::default(),
            malformed: Family::default(),
            api_writes: Family::default(),
            leader: Gauge::default(),
        };
        registry.register(
            "workqueue_depth",
            "Keys ready in a controller's work queue",
            m.queue_depth.clone(),
        );
        registry.register("reconcile", "Reconciles run", m.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that returned an error",
            m.reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in reconcile",
            m.reconcile_duration.clone(),
        );
        registry.register(
            "watch_restarts",
            "Watches resumed after they ended",
            m.watch_restarts.clone(),
        );
        registry.register("informer_relists", "Full lists by informers", m.relists.clone());
        registry.register(
            "api_writes",
            "API writes made by controllers",
            m.api_writes.clone(),
        );
        registry.register(
            "informer_malformed",
            "Stored objects that did not parse as their kind",
            m.malformed.clone(),
        );
        registry.register(
            "leader",
            "1 while this process runs the controllers",
            m.leader.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            ..m
        }
    }

    /// The per-controller label set.
    pub fn controller(name: &str) -> ControllerLabels {
        ControllerLabels {
            controller: name.to_owned(),
        }
    }

    /// The family `name` of an adapter (rendered as `berth_<name>`, with `_total` for
    /// counters), registered on first use; later calls with the same name and type return
    /// the same family, so an adapter set up once per leadership term counts on.
    pub fn adapter_family<M>(&self, name: &'static str, help: &str) -> M
    where
        M: prometheus_client::registry::Metric + Clone + Default,
    {
        let mut adapters = self.adapters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = adapters.get(name).and_then(|m| m.downcast_ref::<M>()) {
            return m.clone();
        }
        let metric = M::default();
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(name, help, metric.clone());
        adapters.insert(name, Box::new(metric.clone()));
        metric
    }

    /// Sum of API writes by `controller` (every verb).
    pub fn writes_by(&self, controller: &str) -> u64 {
        ["create", "patch", "patch_status", "delete"]
            .iter()
            .map(|verb| {
                self.api_writes
                    .get_or_create(&WriteLabels {
                        controller: controller.to_owned(),
                        verb: (*verb).to_owned(),
                    })
                    .get()
            })
            .sum()
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.reconciles.get_or_create(&Metrics::controller("project")).inc();
        let calls: Family<KindLabels, Counter> = m.adapter_family("adapter_calls", "Calls by an adapter");
        calls.get_or_create(&KindLabels { kind: "x".into() }).inc();
        let again: Family<KindLabels, Counter> = m.adapter_family("adapter_calls", "Calls by an adapter");
        again.get_or_create(&KindLabels { kind: "x".into() }).inc();
        m.leader.set(1);
        let text = m.render();
        assert!(
            text.contains("berth_reconcile_total{controller=\"project\"} 1"),
            "{text}"
        );
        assert!(text.contains("berth_adapter_calls_total{kind=\"x\"} 2"), "{text}");
        assert!(text.contains("berth_leader 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
