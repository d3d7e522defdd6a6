//! Discord webhooks: one embed per message (title, description, a colour by severity,
//! fields for the object, the reason and how to look closer).
//!
//! # Guarantees
//! - The webhook URL (it holds the webhook token) is never in an error or `Debug` output.
//! - 429 is retried after Discord's delay: the JSON body's `retry_after` (seconds, float),
//!   else the `Retry-After` header; 404 (deleted webhook) and other 4xx are permanent.
//! - Discord's limits are met: title 256, description 4096, field value 1024 characters.
//!
//! # Caveats
//! - No `@here` mention, and no `?wait=true`: success is Discord's plain 204.

use serde_json::{Value, json};

use super::http::{self, Answer};
use super::{Message, NotifyError, Secret, truncate};

/// A Discord webhook with its URL resolved.
#[derive(Debug, Clone)]
pub struct DiscordChannel {
    url: Secret,
    base_url: Option<String>,
}

impl DiscordChannel {
    /// A channel posting to the webhook `url`; `base_url` replaces its scheme and host.
    pub fn new(url: Secret, base_url: Option<String>) -> Self {
        Self { url, base_url }
    }

    /// Posts `message` as one embed.
    pub async fn send(&self, client: &reqwest::Client, message: &Message) -> Result<(), NotifyError> {
        http::post_to_secret_url(
            client,
            "discord",
            &self.url,
            self.base_url.as_deref(),
            "the Discord webhook URL",
            &payload(message),
            body_retry_after,
        )
        .await
    }
}

/// The webhook body: `{"embeds": [{title, description, color, fields, footer}]}`.
pub fn payload(message: &Message) -> Value {
    let mut fields = vec![json!({
        "name": "Object",
        "value": truncate(&message.object.display(), 1024),
        "inline": true,
    })];
    if !message.reason.is_empty() {
        fields.push(json!({"name": "Reason", "value": truncate(&message.reason, 1024), "inline": true}));
    }
    if !message.describe.is_empty() {
        fields.push(json!({
            "name": "Look closer",
            "value": truncate(&format!("`{}`", message.describe), 1024),
            "inline": false,
        }));
    }
    json!({
        "embeds": [{
            "title": truncate(&message.headline(), 256),
            "description": truncate(&message.body, 4096),
            "color": message.color(),
            "fields": fields,
            "footer": {"text": truncate(&format!("berth · {}", message.severity.as_str()), 2048)},
        }]
    })
}

/// Discord's `retry_after` (seconds, float) from a JSON error body.
fn body_retry_after(answer: &Answer) -> Option<std::time::Duration> {
    let v: Value = serde_json::from_str(&answer.body).ok()?;
    http::seconds(v.get("retry_after")?.as_f64()?)
}
