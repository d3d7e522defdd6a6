//! A Notifier's status after a delivery attempt, and the test message `berth notify test`
//! sends: what the delivery controller and the test action will write.
//!
//! # Guarantees
//! - `Ready` reflects the last attempt: `True`/`Delivered`, or `False` with
//!   `DeliveryRetrying` (transient) or `DeliveryFailed` (permanent or misconfigured), its
//!   message being the [`NotifyError`]'s text, which holds no secret.
//! - `sent` and `failed` count attempts that succeeded or finally failed; a retryable failure
//!   counts in neither (the notification is still pending).
//!
//! # Caveats
//! - Pure: writing the status back (`status::update`) is the caller's.

use berth_crds::kinds::notifier::NotifierStatus;
use berth_crds::meta::ConditionStatus;
use chrono::{DateTime, Utc};

use super::{Message, NotifyError, ObjectRef, Severity};
use crate::status::set_condition;

/// The condition a delivery sets.
pub const READY: &str = "Ready";

berth_crds::api_words! {
    /// The reasons of a Notifier's `Ready` after a delivery attempt.
    pub enum DeliveryReason {
        /// The receiver accepted the last notification.
        Delivered,
        /// The last attempt failed in a way a retry may fix; it is still pending.
        DeliveryRetrying,
        /// The last attempt failed for good (refused, or misconfigured).
        DeliveryFailed,
    }
}

/// Records the outcome of one delivery attempt in `status`; returns whether it changed.
pub fn record_delivery(
    status: &mut NotifierStatus,
    result: &Result<(), NotifyError>,
    generation: i64,
    now: DateTime<Utc>,
) -> bool {
    let before = status.clone();
    let (cond, reason, message) = match result {
        Ok(()) => {
            status.sent += 1;
            (
                ConditionStatus::True,
                DeliveryReason::Delivered,
                "the last notification was delivered".to_owned(),
            )
        }
        Err(e @ NotifyError::Retry { .. }) => (
            ConditionStatus::False,
            DeliveryReason::DeliveryRetrying,
            e.to_string(),
        ),
        Err(e) => {
            status.failed += 1;
            (
                ConditionStatus::False,
                DeliveryReason::DeliveryFailed,
                e.to_string(),
            )
        }
    };
    status.observed_generation = Some(generation);
    set_condition(
        &mut status.conditions,
        READY,
        cond,
        reason.as_str(),
        &message,
        generation,
        now,
    );
    *status != before
}

/// The message of `berth notify test notifier/NAME`: informational, about the Notifier
/// itself, with an id unique to `nonce` (a test is never deduplicated).
pub fn test_message(notifier: &str, nonce: &str) -> Message {
    let object = ObjectRef {
        kind: "Notifier".into(),
        namespace: None,
        name: notifier.into(),
    };
    Message {
        id: format!("test-{notifier}-{nonce}"),
        title: format!("Test notification from berth ({notifier})"),
        body: format!("If you can read this, Notifier {notifier} delivers."),
        severity: Severity::Info,
        describe: object.describe_command(),
        object,
        reason: "Test".into(),
        resolved: false,
    }
}
