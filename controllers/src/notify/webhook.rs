//! A generic JSON webhook, signed per Standard Webhooks 1.0 when it has a secret: headers
//! `webhook-id` (the message id), `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, where the
//! key is the base64 decoding of the secret after its `whsec_` prefix.
//!
//! # Guarantees
//! - The signature covers the exact bytes sent; receivers verify it with any Standard
//!   Webhooks library (tested against the PyPI reference, `standardwebhooks`).
//! - `webhook-id` is [`Message::id`], so retries of one message share it and receivers can
//!   deduplicate.
//! - The signing key is never in an error or `Debug` output.
//!
//! # Caveats
//! - Receivers reject timestamps more than 5 minutes off: the sender's clock must be right.
//! - One signature (no key rotation yet: the header would list one `v1,…` per key).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use sha2::Sha256;

use super::http;
use super::{Message, NotifyError, Secret};

/// The prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook URL and, when signed, its decoded key.
#[derive(Debug, Clone)]
pub struct WebhookChannel {
    url: String,
    base_url: Option<String>,
    key: Option<Secret>,
    raw: Option<Secret>,
}

impl WebhookChannel {
    /// A channel posting to `url` (`base_url` replaces its scheme and host), signing with
    /// `secret` (`whsec_<base64>`; the prefix may be left out) when given.
    pub fn new(url: String, base_url: Option<String>, secret: Option<Secret>) -> Result<Self, NotifyError> {
        let key = match &secret {
            Some(s) => Some(decode_secret(s)?),
            None => None,
        };
        Ok(Self {
            url,
            base_url,
            key,
            raw: secret,
        })
    }

    /// Posts `message` as JSON, signed when the channel has a key.
    pub async fn send(&self, client: &reqwest::Client, message: &Message) -> Result<(), NotifyError> {
        let url = http::rebase(&self.url, self.base_url.as_deref(), "spec.webhook.url")?;
        let body = serde_json::to_vec(&payload(message))
            .map_err(|e| NotifyError::config(format!("webhook: encode: {e}")))?;
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.key {
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let signature = sign(key, &message.id, timestamp, &body)?;
            let value = |s: &str| {
                HeaderValue::from_str(s)
                    .map_err(|_| NotifyError::config("webhook: the message id is not a valid header value"))
            };
            headers.insert("webhook-id", value(&message.id)?);
            headers.insert("webhook-timestamp", value(&timestamp.to_string())?);
            headers.insert("webhook-signature", value(&signature)?);
        }
        let answer = http::post(client, "webhook", url, headers, body).await;
        let secrets: Vec<&Secret> = self.key.iter().chain(self.raw.iter()).collect();
        answer
            .and_then(|a| http::check("webhook", &a, None))
            .map_err(|e| e.redact(&secrets))
    }
}

/// The body: the message as flat JSON, `event` being its reason.
pub fn payload(message: &Message) -> Value {
    json!({
        "id": message.id,
        "event": message.reason,
        "title": message.title,
        "message": message.body,
        "severity": message.severity,
        "resolved": message.resolved,
        "object": message.object,
        "describe": message.describe,
    })
}

/// The key of a `whsec_<base64>` secret (padding optional), as a [`Secret`] holding the
/// raw bytes' base64.
fn decode_secret(secret: &Secret) -> Result<Secret, NotifyError> {
    let b64 = secret.expose().trim();
    let b64 = b64.strip_prefix(SECRET_PREFIX).unwrap_or(b64);
    let bytes = STANDARD_NO_PAD
        .decode(b64.trim_end_matches('='))
        .map_err(|_| NotifyError::config("spec.webhook.secretRef: not a whsec_<base64> secret"))?;
    if bytes.is_empty() {
        return Err(NotifyError::config("spec.webhook.secretRef: the secret is empty"));
    }
    Ok(Secret::new(STANDARD.encode(bytes)))
}

/// The `webhook-signature` value: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
/// `key` being a decoded secret (base64 of the raw key bytes, see [`WebhookChannel::new`]).
pub fn sign(key: &Secret, id: &str, timestamp: u64, body: &[u8]) -> Result<String, NotifyError> {
    let raw = STANDARD
        .decode(key.expose())
        .map_err(|_| NotifyError::config("webhook: bad signing key"))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&raw).map_err(|_| NotifyError::config("webhook: bad signing key"))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Signs with a `whsec_` secret directly (what receivers are configured with).
pub fn sign_with_secret(
    secret: &Secret,
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<String, NotifyError> {
    sign(&decode_secret(secret)?, id, timestamp, body)
}
