//! `berth notify test notifier/NAME`: sends a test message through a Notifier's channel.
//!
//! The CLI reads the Notifier and the Secret keys it names through the API and sends from
//! where it runs (the channels library, `berth_controllers::notify`).
//!
//! # Guarantees
//! - Exit 0 only when the receiver accepted the message; otherwise exit 1 with the
//!   channel's error, which says whether a retry could help and never shows a secret.
//! - The Notifier's `Ready` then reflects this delivery (`Delivered`, `DeliveryFailed` or
//!   `DeliveryRetrying` with the error), and `sent`/`failed` count it; a status that cannot
//!   be written (a viewer token) is a warning, the exit code stays the delivery's.
//!
//! # Caveats
//! - It sends from the client's machine, not the server's: a receiver only the server can
//!   reach (an SMTP relay on its loopback) fails here. A server-side test action is future
//!   work, with the delivery controller.

use std::collections::BTreeMap;
use std::process::ExitCode;

use berth_controllers::notify::status::{record_delivery, test_message};
use berth_controllers::notify::{self, Channel, Secret};
use berth_crds::kinds::common::NamespacedSecretKeyRef;
use berth_crds::kinds::notifier::NotifierStatus;
use berth_crds::kinds::{NotifierSpec, SecretSpec};
use berth_crds::registry::lookup;

use super::{
    client::Client,
    error::{Error, Result},
    target,
};

/// Arguments of `berth notify`.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: NotifyCommand,
}

/// The `berth notify` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through a Notifier now.
    Test {
        /// `notifier/NAME` (or just `NAME`).
        target: String,
    },
}

/// Runs `berth notify`.
pub async fn run(c: &Client, args: &NotifyArgs) -> Result<ExitCode> {
    let NotifyCommand::Test { target: t } = &args.command;
    let name = match t.split_once('/') {
        Some((kind, name)) => {
            if target::kind(kind)?.kind != "Notifier" {
                return Err(Error::Usage(format!("{t}: notify test takes a notifier")));
            }
            name
        }
        None => t.as_str(),
    };
    let notifier_info = lookup("Notifier").ok_or_else(|| Error::Usage("no Notifier kind".into()))?;
    let secret_info = lookup("Secret").ok_or_else(|| Error::Usage("no Secret kind".into()))?;
    let obj = c.get(notifier_info, None, name).await?;
    let spec: NotifierSpec = serde_json::from_value(obj.get("spec").cloned().unwrap_or_default())
        .map_err(|e| Error::Manifest(format!("notifier/{name}: {e}")))?;

    let mut values: BTreeMap<(String, String, String), Secret> = BTreeMap::new();
    for r in secret_refs(&spec) {
        let Some(secret) = c.get_opt(secret_info, Some(&r.namespace), &r.name).await? else {
            continue;
        };
        let data: SecretSpec = serde_json::from_value(secret.get("spec").cloned().unwrap_or_default())
            .map_err(|e| Error::Manifest(format!("secret {}/{}: {e}", r.namespace, r.name)))?;
        if let Some(v) = data.data.get(&r.key) {
            values.insert(key(r), Secret::new(v.clone()));
        }
    }
    let channel = Channel::from_spec(&spec, |r| values.get(&key(r)).cloned())
        .map_err(|e| Error::Usage(format!("notifier/{name}: {e}")))?;
    let http = notify::http_client().map_err(|e| Error::Transport(e.to_string()))?;
    let nonce = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default()
    );
    let result = channel.send(&http, &test_message(name, &nonce)).await;
    let mut status: NotifierStatus =
        serde_json::from_value(obj.get("status").cloned().unwrap_or_default()).unwrap_or_default();
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_default();
    record_delivery(&mut status, &result, generation, chrono::Utc::now());
    // Only the fields a delivery records: the delivery controller keeps its queue in the
    // same status, and a merge patch of the whole (stale) status would overwrite it.
    let mut recorded = serde_json::Map::new();
    if let Ok(serde_json::Value::Object(all)) = serde_json::to_value(&status) {
        for key in ["conditions", "sent", "failed", "observedGeneration"] {
            if let Some(v) = all.get(key) {
                recorded.insert(key.to_owned(), v.clone());
            }
        }
    }
    let patch = serde_json::json!({ "status": recorded });
    if let Err(e) = c.patch_status(notifier_info, None, name, &patch).await {
        eprintln!("warning: notifier/{name}: status not updated: {e}");
    }
    match result {
        Ok(()) => {
            println!("notifier/{name}: test message delivered ({})", channel.name());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(Error::Transport(format!("notifier/{name}: {e}"))),
    }
}

fn key(r: &NamespacedSecretKeyRef) -> (String, String, String) {
    (r.namespace.clone(), r.name.clone(), r.key.clone())
}

/// Every Secret key `spec` names.
fn secret_refs(spec: &NotifierSpec) -> Vec<&NamespacedSecretKeyRef> {
    let mut refs = Vec::new();
    refs.extend(spec.email.as_ref().and_then(|e| e.password_secret_ref.as_ref()));
    refs.extend(spec.discord.as_ref().map(|d| &d.webhook_url_secret_ref));
    refs.extend(spec.telegram.as_ref().map(|t| &t.bot_token_secret_ref));
    refs.extend(spec.slack.as_ref().map(|s| &s.webhook_url_secret_ref));
    refs.extend(spec.webhook.as_ref().and_then(|w| w.secret_ref.as_ref()));
    refs
}
