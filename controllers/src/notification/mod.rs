//! The notification controller: turns Events into messages on each Notifier's channel, with
//! Alertmanager's delivery model (group, dedup, repeat, resolve, retry).
//!
//! Per Notifier: **observe** (the Notifier, every cached Event) → **decide**
//! ([`decide::decide`], pure: [`decide::Plan`]) → **act** (write the status, or send one
//! group and record the outcome), repeated until nothing is due.
//!
//! # Guarantees
//! - Recorded before sent: a selected Event becomes an alert in the Notifier's
//!   `status.pending`, written through the API, before any attempt; the outcome of an
//!   attempt is written after it. A restart (even `kill -9`) or a receiver outage loses
//!   nothing: the queue is in the store.
//! - At-least-once: a group leaves the queue only when delivered or refused (4xx other
//!   than 429). Retries back off exponentially from 1 s to 5 min, never before the
//!   receiver's `Retry-After`; a misconfigured channel (missing Secret) retries every 5 min.
//! - Grouping: alerts of one key (reason, severity, resolved) arriving within `groupWait`
//!   go out as one message per channel; a key sent recently waits `groupInterval`.
//! - Dedup by the Event's name (stable: object uid, type, reason, message); an event that
//!   happens again is re-sent only after `repeatInterval`; a recovery reason
//!   ([`decide::RECOVERIES`]) after a sent problem sends a resolved message (`sendResolved`).
//! - Only Events that last happened after the Notifier was created are considered.
//! - Each attempt updates `Ready`, `sent`/`failed` ([`crate::notify::status::record_delivery`]),
//!   `lastSentAt` and `failures` (failed attempts since the last delivery).
//!
//! # Caveats
//! - At-least-once, not exactly-once: a crash between a delivery and its status write sends
//!   that group again, with the same message id (the webhook's `webhook-id`) for receivers
//!   to dedupe.
//! - The Notifier is read through the API at each reconcile (not from the cache), so a
//!   status write not yet in the cache cannot resend a delivered group.
//! - The status is written without a resourceVersion precondition. `berth notify test`
//!   patches only `conditions`, `sent`, `failed` and `observedGeneration`, so it never
//!   touches the queue; a delivery recorded here at the same moment can undo its counts.

pub mod decide;
pub mod message;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

use berth_crds::{
    Object,
    kinds::{EventSpec, NotifierSpec, SecretSpec, common::NamespacedSecretKeyRef},
};
use chrono::{SubsecRound, Utc};
use tracing::Instrument;

use self::decide::{Plan, Route, Seen};
use crate::{
    client,
    controller::{Action, Controller, ControllerConfig, Reconciler},
    informer::Informer,
    manager::Manager,
    notify::{self, Channel, NotifyError, Secret, status::record_delivery},
    status,
};
use berth_runtime::Api;

/// The controller's name (metrics, logs, `--disable-controller`).
pub const NAME: &str = "notification";

/// Steps one reconcile takes at most before handing back to the queue.
const MAX_STEPS: usize = 16;

/// A failed notification reconcile (retried with the queue's backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Notifier's status could not be written.
    #[error("notifier status: {0}")]
    Status(#[from] status::Error),
    /// The Notifier could not be read.
    #[error("notifier read: {0}")]
    Read(client::Error),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(NotifyError),
}

/// Delivers Events to Notifiers.
pub struct NotificationReconciler {
    api: Api<NotifierSpec>,
    secrets: Api<SecretSpec>,
    events: Informer<EventSpec>,
    http: reqwest::Client,
}

/// Adds the notification controller to `manager`.
pub fn install(manager: &mut Manager, config: ControllerConfig) -> Result<(), Error> {
    let notifiers = manager.informer::<NotifierSpec>();
    let events = manager.informer::<EventSpec>();
    let all = notifiers.clone();
    let controller = Controller::new(NAME, notifiers)
        .with_config(config)
        .watches(&events, move |_| all.keys());
    let reconciler = NotificationReconciler {
        api: manager.api_for(NAME),
        secrets: manager.api_for(NAME),
        events,
        http: notify::http_client().map_err(Error::Client)?,
    };
    manager.add(controller, reconciler);
    Ok(())
}

#[async_trait::async_trait]
impl Reconciler<NotifierSpec> for NotificationReconciler {
    type Error = Error;

    async fn reconcile(&self, obj: Arc<Object<NotifierSpec>>) -> Result<Action, Error> {
        if obj.is_deleting() {
            return Ok(Action::await_change());
        }
        // Read through, not from the cache: the cache may not have our last status write
        // yet, and a stale queue would send a delivered group again.
        let mut current = match self.api.get(obj.name()).await {
            Ok(fresh) => fresh,
            Err(client::Error::NotFound { .. }) => return Ok(Action::await_change()),
            Err(e) => return Err(Error::Read(e)),
        };
        let route = Route::of(&current.spec);
        // Events' timestamps are whole seconds: so is the cut-off.
        let since = current
            .metadata
            .creation_timestamp
            .unwrap_or_default()
            .trunc_subsecs(0);
        for _ in 0..MAX_STEPS {
            let cached = self.events.list();
            let seen: Vec<Seen<'_>> = cached
                .iter()
                .map(|e| Seen {
                    name: e.name(),
                    spec: &e.spec,
                })
                .collect();
            let status_now = current.status.clone().unwrap_or_default();
            // Sub-second precision, so that a 1 s group wait is not a 2 s one.
            let now = Utc::now();
            match decide::decide(&route, &status_now, &seen, since, now) {
                Plan::Record(next) => {
                    status::update(&self.api, &current, &next).await?;
                    current.status = Some(*next);
                }
                Plan::Send(index) => {
                    let next = self.send(&current, index).await;
                    status::update(&self.api, &current, &next).await?;
                    current.status = Some(next);
                }
                Plan::Wait(d) => return Ok(Action::requeue(d.max(Duration::from_millis(100)))),
                Plan::Idle => return Ok(Action::await_change()),
            }
        }
        Ok(Action::requeue(Duration::ZERO))
    }
}

impl NotificationReconciler {
    /// Reads the Secret keys `spec` names (a missing one is left out: the channel says so).
    async fn secret(&self, r: &NamespacedSecretKeyRef) -> Option<(NamespacedSecretKeyRef, Secret)> {
        let found = self.secrets.within(Some(&r.namespace)).get(&r.name).await.ok()?;
        found
            .spec
            .data
            .get(&r.key)
            .map(|v| (r.clone(), Secret::new(v.clone())))
    }

    async fn channel(&self, spec: &NotifierSpec) -> Result<Channel, NotifyError> {
        let mut refs: Vec<&NamespacedSecretKeyRef> = Vec::new();
        if let Some(e) = &spec.email {
            refs.extend(e.password_secret_ref.iter());
        }
        if let Some(d) = &spec.discord {
            refs.push(&d.webhook_url_secret_ref);
        }
        if let Some(t) = &spec.telegram {
            refs.push(&t.bot_token_secret_ref);
        }
        if let Some(s) = &spec.slack {
            refs.push(&s.webhook_url_secret_ref);
        }
        if let Some(w) = &spec.webhook {
            refs.extend(w.secret_ref.iter());
        }
        let mut values = Vec::new();
        for r in refs {
            values.extend(self.secret(r).await);
        }
        Channel::from_spec(spec, |r| {
            values.iter().find(|(k, _)| k == r).map(|(_, v)| v.clone())
        })
    }

    /// Sends `pending[index]` once; the status after it.
    async fn send(
        &self,
        notifier: &Object<NotifierSpec>,
        index: usize,
    ) -> berth_crds::kinds::notifier::NotifierStatus {
        let status_now = notifier.status.clone().unwrap_or_default();
        let Some(group) = status_now.pending.get(index) else {
            return status_now;
        };
        let message = message::build(group);
        let span = tracing::info_span!(
            "notify",
            notifier = notifier.name(),
            message = %message.id,
            alerts = group.alerts.len(),
            attempt = group.attempts + 1,
        );
        let result = async {
            let channel = self.channel(&notifier.spec).await?;
            channel.send(&self.http, &message).await
        }
        .instrument(span.clone())
        .await;
        span.in_scope(|| match &result {
            Ok(()) => tracing::info!("notification delivered"),
            Err(e) => tracing::warn!(error = %e, "notification not delivered"),
        });
        let mut next = decide::after_send(&status_now, index, &result, Utc::now());
        record_delivery(&mut next, &result, notifier.generation(), status::now());
        next
    }
}
