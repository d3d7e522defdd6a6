//! Notification channels: one [`Message`] sent once through one [`Channel`] — e-mail over
//! SMTP ([`email`]), Discord ([`discord`]), Telegram ([`telegram`]), Slack ([`slack`]) or a
//! Standard-Webhooks-signed JSON webhook ([`webhook`]). Routing, grouping, deduplication and
//! the retry loop are the caller's: [`Channel::send`] makes one attempt and says, through
//! [`NotifyError`], whether and when another one may succeed.
//!
//! ```ignore
//! let channel = Channel::from_spec(&notifier.spec, |r| secrets.get(r).cloned())?;
//! match channel.send(&notify::http_client(), &message).await {
//!     Ok(()) => {}
//!     Err(NotifyError::Retry { after, .. }) => requeue(after.unwrap_or(backoff)),
//!     Err(e) => record_failure(e.to_string()), // safe to show: no secret in it
//! }
//! ```
//!
//! # Guarantees
//! - Secrets (SMTP passwords, bot tokens, webhook URLs, signing keys) are held in [`Secret`],
//!   whose `Debug` is redacted; no error message contains one, nor a URL built from one
//!   (Telegram's token is in its path, Discord's and Slack's webhook URLs are secrets).
//! - Classification follows Alertmanager: 2xx is success; 429, 5xx, timeouts and connection
//!   failures are [`NotifyError::Retry`] (with the receiver's delay when it gives one: the
//!   `Retry-After` header, Discord's JSON `retry_after` in seconds, Telegram's
//!   `parameters.retry_after`); every other status (4xx, 3xx: redirects are not followed) is
//!   [`NotifyError::Permanent`]; a configuration that cannot work is [`NotifyError::Config`].
//! - Every base URL is configurable (`baseUrl`), so tests and proxies can stand in.
//!
//! # Caveats
//! - No SSRF guard yet: URLs are posted to as configured (an allow-list belongs with delivery).
//! - Receivers' limits (Discord 4096 characters of description, Telegram 4096 of text, Slack
//!   3000 per block) are met by truncating, marked with `…`.

pub mod discord;
pub mod email;
mod http;
pub mod slack;
pub mod status;
pub mod telegram;
pub mod webhook;

use std::fmt;
use std::time::Duration;

use berth_crds::kinds::NotifierSpec;
use berth_crds::kinds::common::NamespacedSecretKeyRef;
use serde::Serialize;

/// How long one HTTP delivery attempt may take, connecting included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one SMTP command may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a delivery attempt failed, and whether another one may succeed. Messages are lowercase
/// and free of secrets: they can go to logs, status and events as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// A transient failure (429, 5xx, timeout, connection): try again, not before `after`
    /// when the receiver said so.
    #[error("{reason} (will retry)")]
    Retry {
        /// The receiver's requested delay, when it gave one.
        after: Option<Duration>,
        /// What happened.
        reason: String,
    },
    /// The receiver refused the message (4xx other than 429): retrying cannot help.
    #[error("{reason}")]
    Permanent {
        /// What happened.
        reason: String,
    },
    /// The channel cannot work as configured (missing Secret, bad URL or address).
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

impl NotifyError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }

    /// The receiver's requested delay before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retry { after, .. } => *after,
            _ => None,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }

    /// [`NotifyError::redact`] with a secret URL: the URL, its path and each path segment
    /// that may be a token (8 characters or more, not a plain lowercase word like `webhooks`).
    pub(crate) fn redact_url(self, url: &Secret) -> Self {
        let mut parts = vec![url.clone()];
        if let Ok(parsed) = reqwest::Url::parse(url.expose()) {
            parts.push(Secret::new(parsed.path()));
            parts.extend(
                parsed
                    .path()
                    .split('/')
                    .filter(|s| s.len() >= 8 && !s.chars().all(|c| c.is_ascii_lowercase()))
                    .map(Secret::new),
            );
        }
        self.redact(&parts.iter().collect::<Vec<_>>())
    }

    /// Replaces every occurrence of each secret in the message by `<redacted>` (a receiver
    /// may echo what it was sent).
    pub(crate) fn redact(self, secrets: &[&Secret]) -> Self {
        let clean = |mut s: String| {
            for secret in secrets {
                if !secret.0.is_empty() {
                    s = s.replace(&secret.0, "<redacted>");
                }
            }
            s
        };
        match self {
            Self::Retry { after, reason } => Self::Retry {
                after,
                reason: clean(reason),
            },
            Self::Permanent { reason } => Self::Permanent {
                reason: clean(reason),
            },
            Self::Config { reason } => Self::Config {
                reason: clean(reason),
            },
        }
    }
}

/// A resolved secret value. `Debug` and `Display` print `<redacted>`; [`Secret::expose`] is
/// the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How bad the news is; it picks the colour (Discord, Slack) and the subject's tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something good happened (deployment succeeded, recovered).
    Success,
    /// For information.
    #[default]
    Info,
    /// Needs attention soon (disk filling, certificate expiring).
    Warning,
    /// Something is broken (deployment failed, server unreachable).
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// An RGB colour: green, blue, amber, red.
    pub fn color(self) -> u32 {
        match self {
            Self::Success => 0x2E_CC71,
            Self::Info => 0x34_98DB,
            Self::Warning => 0xF3_9C12,
            Self::Critical => 0xE7_4C3C,
        }
    }
}

/// The object a message is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// Its kind (`Application`).
    pub kind: String,
    /// Its namespace; `None` for cluster-scoped kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// `kind/name`, or `kind namespace/name`, for people.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// The command that shows more: `berth describe application/web -n shop`.
    pub fn describe_command(&self) -> String {
        let kind = self.kind.to_ascii_lowercase();
        match &self.namespace {
            Some(ns) => format!("berth describe {kind}/{} -n {ns}", self.name),
            None => format!("berth describe {kind}/{}", self.name),
        }
    }
}

/// One notification, channel-neutral.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Message {
    /// A stable id: the same news keeps it across retries and restarts (the webhook's
    /// `webhook-id`, receivers' idempotency key). A resolved message carries its own id.
    pub id: String,
    /// A one-line summary.
    pub title: String,
    /// What happened, in a few sentences.
    pub body: String,
    /// How bad it is.
    pub severity: Severity,
    /// The object it is about.
    pub object: ObjectRef,
    /// The event reason (`BuildFailed`).
    pub reason: String,
    /// How to look closer, usually [`ObjectRef::describe_command`].
    pub describe: String,
    /// Whether this says that an earlier problem is over.
    pub resolved: bool,
}

impl Message {
    /// The title with a `[RESOLVED]` tag when resolved.
    pub fn headline(&self) -> String {
        if self.resolved {
            format!("[RESOLVED] {}", self.title)
        } else {
            self.title.clone()
        }
    }

    /// The colour: green when resolved, else by severity.
    pub fn color(&self) -> u32 {
        if self.resolved {
            Severity::Success.color()
        } else {
            self.severity.color()
        }
    }
}

/// A channel with its secrets resolved, ready to send.
#[derive(Debug, Clone)]
pub enum Channel {
    /// E-mail over SMTP.
    Email(email::EmailChannel),
    /// A Discord webhook.
    Discord(discord::DiscordChannel),
    /// A Telegram bot.
    Telegram(telegram::TelegramChannel),
    /// A Slack incoming webhook.
    Slack(slack::SlackChannel),
    /// A generic JSON webhook, signed when it has a secret.
    Webhook(webhook::WebhookChannel),
}

impl Channel {
    /// Builds the channel of `spec`, reading each named Secret key through `secret`
    /// (`None`: missing). Fails with [`NotifyError::Config`] naming the field, never a value.
    pub fn from_spec(
        spec: &NotifierSpec,
        secret: impl Fn(&NamespacedSecretKeyRef) -> Option<Secret>,
    ) -> Result<Self, NotifyError> {
        let need = |r: &NamespacedSecretKeyRef, field: &str| {
            secret(r).ok_or_else(|| {
                NotifyError::config(format!(
                    "{field}: secret {}/{} has no key {:?}",
                    r.namespace, r.name, r.key
                ))
            })
        };
        if let Some(e) = &spec.email {
            let password = match &e.password_secret_ref {
                Some(r) => Some(need(r, "spec.email.passwordSecretRef")?),
                None => None,
            };
            return email::EmailChannel::new(e, password).map(Self::Email);
        }
        if let Some(d) = &spec.discord {
            let url = need(&d.webhook_url_secret_ref, "spec.discord.webhookUrlSecretRef")?;
            return Ok(Self::Discord(discord::DiscordChannel::new(
                url,
                d.base_url.clone(),
            )));
        }
        if let Some(t) = &spec.telegram {
            let token = need(&t.bot_token_secret_ref, "spec.telegram.botTokenSecretRef")?;
            return Ok(Self::Telegram(telegram::TelegramChannel::new(
                token,
                t.chat_id.clone(),
                t.base_url.clone(),
            )));
        }
        if let Some(s) = &spec.slack {
            let url = need(&s.webhook_url_secret_ref, "spec.slack.webhookUrlSecretRef")?;
            return Ok(Self::Slack(slack::SlackChannel::new(url, s.base_url.clone())));
        }
        if let Some(w) = &spec.webhook {
            let key = match &w.secret_ref {
                Some(r) => Some(need(r, "spec.webhook.secretRef")?),
                None => None,
            };
            return webhook::WebhookChannel::new(w.url.clone(), w.base_url.clone(), key).map(Self::Webhook);
        }
        Err(NotifyError::config("spec: no channel is set"))
    }

    /// The channel's name: `email`, `discord`, `telegram`, `slack` or `webhook`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Discord(_) => "discord",
            Self::Telegram(_) => "telegram",
            Self::Slack(_) => "slack",
            Self::Webhook(_) => "webhook",
        }
    }

    /// Makes one delivery attempt of `message`. `http` is used by the HTTP channels (build
    /// it with [`http_client`]: no redirects, a timeout).
    pub async fn send(&self, http: &reqwest::Client, message: &Message) -> Result<(), NotifyError> {
        match self {
            Self::Email(c) => c.send(message).await,
            Self::Discord(c) => c.send(http, message).await,
            Self::Telegram(c) => c.send(http, message).await,
            Self::Slack(c) => c.send(http, message).await,
            Self::Webhook(c) => c.send(http, message).await,
        }
    }
}

/// The HTTP client for the channels: redirects are not followed (a redirect is a
/// [`NotifyError::Permanent`]), every request times out after [`HTTP_TIMEOUT`].
pub fn http_client() -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| NotifyError::config(format!("http client: {e}")))
}

/// Cuts `s` to at most `max` characters, ending with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
