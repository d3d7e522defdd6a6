//! Slack incoming webhooks: `text` (the notification's fallback) plus Block Kit blocks — a
//! header, the body, the object and reason as fields, and how to look closer.
//!
//! # Guarantees
//! - The webhook URL (it is the credential) is never in an error or `Debug` output.
//! - Text is escaped for Slack's mrkdwn (`&`, `<`, `>`), so nothing becomes a link or
//!   mention; blocks stay within Slack's limits (header 150, section 3000 characters).
//! - Slack's plain-text errors (`invalid_payload`, `channel_not_found`…) are permanent;
//!   429 and 5xx are retried (`Retry-After` honoured).

use serde_json::{Value, json};

use super::http;
use super::{Message, NotifyError, Secret, truncate};

/// A Slack incoming webhook with its URL resolved.
#[derive(Debug, Clone)]
pub struct SlackChannel {
    url: Secret,
    base_url: Option<String>,
}

impl SlackChannel {
    /// A channel posting to the webhook `url`; `base_url` replaces its scheme and host.
    pub fn new(url: Secret, base_url: Option<String>) -> Self {
        Self { url, base_url }
    }

    /// Posts `message`.
    pub async fn send(&self, client: &reqwest::Client, message: &Message) -> Result<(), NotifyError> {
        // Slack names no delay in its body; `Retry-After` is read by the shared check.
        http::post_to_secret_url(
            client,
            "slack",
            &self.url,
            self.base_url.as_deref(),
            "the Slack webhook URL",
            &payload(message),
            |_| None,
        )
        .await
    }
}

/// The webhook body: `{"text", "blocks"}`.
pub fn payload(message: &Message) -> Value {
    let headline = message.headline();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&headline, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&escape(&message.body), 3000)}}),
    ];
    let mut fields = vec![json!({
        "type": "mrkdwn",
        "text": truncate(&format!("*Object*\n{}", escape(&message.object.display())), 2000),
    })];
    if !message.reason.is_empty() {
        fields.push(json!({
            "type": "mrkdwn",
            "text": truncate(&format!("*Reason*\n{}", escape(&message.reason)), 2000),
        }));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    if !message.describe.is_empty() {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate(&format!("`{}`", escape(&message.describe)), 3000)}],
        }));
    }
    json!({
        "text": truncate(&escape(&format!("{headline}: {}", message.object.display())), 3000),
        "blocks": blocks,
    })
}

/// Escapes text for Slack's mrkdwn.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
