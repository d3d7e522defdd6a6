//! Telegram bots: `POST {base}/bot{token}/sendMessage` with `chat_id`, an HTML `text` and
//! `parse_mode: HTML`.
//!
//! # Guarantees
//! - The bot token (it is in the URL's path) is never in an error or `Debug` output.
//! - Every piece of the message is HTML-escaped (`&`, `<`, `>`, `"`), so no text can open a
//!   tag; the title is cut to 256 and the body to 3000 characters, which leaves the object,
//!   reason and command room within Telegram's 4096.
//! - 429 is retried after `parameters.retry_after`, else the `Retry-After` header; an answer
//!   of 2xx with `"ok": false` is permanent.
//!
//! # Caveats
//! - The 4096 limit counts characters after entity parsing; berth truncates the body before
//!   escaping, which keeps the visible text within the limit.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::http::{self, Answer};
use super::{Message, NotifyError, Secret, truncate};

/// Telegram's Bot API.
pub const DEFAULT_BASE_URL: &str = "https://api.telegram.org";

/// A Telegram bot and chat with the token resolved.
#[derive(Debug, Clone)]
pub struct TelegramChannel {
    token: Secret,
    chat_id: String,
    base_url: Option<String>,
}

impl TelegramChannel {
    /// A channel posting to `chat_id` as the bot `token`; `base_url` replaces
    /// [`DEFAULT_BASE_URL`].
    pub fn new(token: Secret, chat_id: String, base_url: Option<String>) -> Self {
        Self {
            token,
            chat_id,
            base_url,
        }
    }

    /// Sends `message` with `sendMessage`.
    pub async fn send(&self, client: &reqwest::Client, message: &Message) -> Result<(), NotifyError> {
        let result = async {
            let base = self
                .base_url
                .as_deref()
                .unwrap_or(DEFAULT_BASE_URL)
                .trim_end_matches('/');
            let url = http::rebase(
                &format!("{base}/bot{}/sendMessage", self.token.expose()),
                None,
                "the Telegram URL",
            )?;
            let body = serde_json::to_vec(&payload(&self.chat_id, message))
                .map_err(|e| NotifyError::config(format!("telegram: encode: {e}")))?;
            let answer = http::post(client, "telegram", url, HeaderMap::new(), body).await?;
            http::check("telegram", &answer, body_retry_after(&answer))?;
            let ok = serde_json::from_str::<Value>(&answer.body)
                .ok()
                .and_then(|v| v.get("ok").and_then(Value::as_bool));
            if ok == Some(false) {
                return Err(NotifyError::Permanent {
                    reason: format!("telegram: not ok: {}", truncate(&answer.body, 200)),
                });
            }
            Ok(())
        }
        .await;
        result.map_err(|e| e.redact(&[&self.token]))
    }
}

/// The `sendMessage` body.
pub fn payload(chat_id: &str, message: &Message) -> Value {
    json!({
        "chat_id": chat_id,
        "text": text(message),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    })
}

/// The message as Telegram HTML.
pub fn text(message: &Message) -> String {
    let mut out = format!(
        "<b>{}</b>\n{}\n\n<b>Object:</b> {}",
        escape(&truncate(&message.headline(), 256)),
        escape(&truncate(&message.body, 3000)),
        escape(&message.object.display()),
    );
    if !message.reason.is_empty() {
        out.push_str(&format!("\n<b>Reason:</b> {}", escape(&message.reason)));
    }
    if !message.describe.is_empty() {
        out.push_str(&format!("\n<code>{}</code>", escape(&message.describe)));
    }
    out
}

/// Escapes text for Telegram's HTML parse mode.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// `parameters.retry_after` (seconds) from a Bot API error body.
fn body_retry_after(answer: &Answer) -> Option<std::time::Duration> {
    let v: Value = serde_json::from_str(&answer.body).ok()?;
    http::seconds(v.get("parameters")?.get("retry_after")?.as_f64()?)
}
