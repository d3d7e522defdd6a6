//! `Notifier`: where berth sends notifications (deployments, backups, disk pressure):
//! e-mail, Discord, Telegram, Slack or a signed webhook.
//!
//! # Guarantees
//! - Exactly one channel is set; every error names the offending field.
//! - Every HTTP channel's base URL is configurable (`baseUrl`), for proxies and tests.
//! - Credentials are never sent in the clear over the network: `tls: none` with a password
//!   is accepted only for a loopback `smtpHost` (`localhost`, `127.0.0.0/8`, `::1`).
//!
//! - `spec.route` selects which Events are sent (reasons, types, namespaces, a minimum
//!   severity) and how they are batched (`groupWait`, `groupInterval`, `repeatInterval`,
//!   `sendResolved`), after Alertmanager's route; every duration is validated by name.
//! - `status.pending` is the delivery queue: an event is recorded there (through the API)
//!   before any attempt to send it, so neither a restart nor a receiver outage loses it;
//!   `status.log` is the notification log that deduplicates and paces repeats.
//!
//! # Caveats
//! - Secrets are named here, not checked: a missing Secret is found at delivery time.
//! - The queue and the log live in the Notifier's status, which the delivery controller
//!   alone writes; both are bounded ([`MAX_PENDING_ALERTS`], [`MAX_LOG_ENTRIES`]).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{NamespacedSecretKeyRef, exactly_one, non_empty};
use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// A notification channel: exactly one of `email`, `discord`, `telegram`, `slack` or `webhook`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifierSpec {
    /// E-mail over SMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailNotifier>,
    /// A Discord webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<DiscordNotifier>,
    /// A Telegram bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramNotifier>,
    /// A Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackNotifier>,
    /// A generic JSON webhook, signed per Standard Webhooks when `secretRef` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookNotifier>,
    /// Event reasons or types to send (e.g. `BackupFailed`, `Warning`); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Which events are sent and how they are batched; Alertmanager's defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<NotifierRoute>,
}

/// The most alerts `status.pending` holds; beyond it the oldest pending alerts are dropped
/// (and counted in the next message).
pub const MAX_PENDING_ALERTS: usize = 500;
/// The most entries `status.log` holds; the oldest go first.
pub const MAX_LOG_ENTRIES: usize = 1000;

/// How bad an event must be to be sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MinSeverity {
    /// Everything, good news included.
    #[default]
    Info,
    /// Warnings and failures.
    Warning,
    /// Failures only.
    Critical,
}

/// Which events a Notifier sends, and how they are grouped and repeated (Alertmanager's route).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifierRoute {
    /// Event reasons to send (e.g. `BackupFailed`); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Event types to send (`Normal`, `Warning`); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Namespaces (Environments) of the involved objects; all, cluster-scoped ones included,
    /// when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// The least severity sent.
    #[serde(default)]
    pub min_severity: MinSeverity,
    /// How long to wait for more events of a new group before sending it.
    #[serde(default = "default_group_wait")]
    pub group_wait: String,
    /// How long to wait before sending a group again with the same key.
    #[serde(default = "default_group_interval")]
    pub group_interval: String,
    /// How long before what is still happening is sent again.
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: String,
    /// Whether to send a message when a problem is over (`Recovered` after `Unhealthy`).
    #[serde(default = "default_true")]
    pub send_resolved: bool,
}

impl Default for NotifierRoute {
    fn default() -> Self {
        Self {
            reasons: Vec::new(),
            types: Vec::new(),
            namespaces: Vec::new(),
            min_severity: MinSeverity::Info,
            group_wait: default_group_wait(),
            group_interval: default_group_interval(),
            repeat_interval: default_repeat_interval(),
            send_resolved: true,
        }
    }
}

fn default_group_wait() -> String {
    "30s".into()
}

fn default_group_interval() -> String {
    "5m".into()
}

fn default_repeat_interval() -> String {
    "4h".into()
}

fn default_true() -> bool {
    true
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// No encryption (local relays only: a password is accepted only for a loopback host).
    None,
}

/// E-mail over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailNotifier {
    /// The SMTP server's host name.
    pub smtp_host: String,
    /// The SMTP port.
    #[serde(default = "default_smtp_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// The SMTP user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Secret key holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<NamespacedSecretKeyRef>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    /// Connection security.
    #[serde(default)]
    pub tls: SmtpTls,
}

fn default_smtp_port() -> u16 {
    587
}

/// A Discord webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscordNotifier {
    /// The Secret key holding the webhook URL.
    pub webhook_url_secret_ref: NamespacedSecretKeyRef,
    /// Overrides the webhook URL's scheme and host (for testing or proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// A Telegram bot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelegramNotifier {
    /// The Secret key holding the bot token.
    pub bot_token_secret_ref: NamespacedSecretKeyRef,
    /// The chat id to post to.
    pub chat_id: String,
    /// The Bot API URL; `https://api.telegram.org` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// A Slack incoming webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackNotifier {
    /// The Secret key holding the incoming webhook URL (`https://hooks.slack.com/services/…`).
    pub webhook_url_secret_ref: NamespacedSecretKeyRef,
    /// Overrides the webhook URL's scheme and host (for testing or proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// A generic JSON webhook, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`) when `secretRef` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookNotifier {
    /// The URL events are POSTed to.
    pub url: String,
    /// Overrides the URL's scheme and host (for testing or proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The Secret key holding the Standard Webhooks signing secret, `whsec_<base64>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<NamespacedSecretKeyRef>,
}

/// Whether `host` names this machine: `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Observed state of a Notifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifierStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Notifications sent successfully.
    #[serde(default)]
    pub sent: u64,
    /// Notifications that could not be delivered.
    #[serde(default)]
    pub failed: u64,
    /// When a message was last delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Failed delivery attempts since the last success (retries included).
    #[serde(default)]
    pub failures: u64,
    /// Groups recorded and not yet delivered: the delivery queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingGroup>,
    /// What was delivered, by alert id: the notification log (dedup, repeats, resolved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<LogEntry>,
}

/// One event (or its resolution) waiting to be sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingAlert {
    /// The stable id: the Event's name (deterministic from object uid, type, reason and
    /// message), prefixed `resolved-` for a resolution.
    pub id: String,
    /// The involved object's kind.
    pub kind: String,
    /// The involved object's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The involved object's name.
    pub name: String,
    /// The involved object's uid.
    pub uid: String,
    /// The event reason (for a resolution: the problem's reason).
    pub reason: String,
    /// The event message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How many times it happened.
    pub count: i64,
    /// When it last happened.
    pub last_timestamp: DateTime<Utc>,
    /// Whether this says the problem is over.
    #[serde(default)]
    pub resolved: bool,
}

/// A group of alerts sent as one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingGroup {
    /// The stable message id (kept across retries and restarts).
    pub id: String,
    /// The group key: reason, severity and whether resolved.
    pub key: String,
    /// The severity, lowercase.
    pub severity: String,
    /// The alerts.
    pub alerts: Vec<PendingAlert>,
    /// Alerts dropped from this group because the queue was full.
    #[serde(default)]
    pub dropped: u64,
    /// When the group was opened.
    pub opened_at: DateTime<Utc>,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Attempts made.
    #[serde(default)]
    pub attempts: u32,
    /// The last attempt's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One delivered alert, as the notification log keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogEntry {
    /// The alert id (the Event's name).
    pub id: String,
    /// The group key it went out under.
    pub key: String,
    /// The involved object's uid.
    pub uid: String,
    /// The event reason.
    pub reason: String,
    /// The event's `lastTimestamp` when it was sent.
    pub last_timestamp: DateTime<Utc>,
    /// When it was sent (or given up).
    pub sent_at: DateTime<Utc>,
    /// Whether its resolution was recorded.
    #[serde(default)]
    pub resolved: bool,
}

impl Resource for NotifierSpec {
    type Status = NotifierStatus;
    const KIND: &'static str = "Notifier";
    const PLURAL: &'static str = "notifiers";
    const SINGULAR: &'static str = "notifier";
    const SHORT_NAMES: &'static [&'static str] = &["notif"];
    const NAMESPACED: bool = false;
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        READY_COLUMN,
        PrinterColumn {
            name: "Last Sent",
            type_: "date",
            json_path: ".status.lastSentAt",
            description: "when a message was last delivered",
        },
        PrinterColumn {
            name: "Failures",
            type_: "integer",
            json_path: ".status.failures",
            description: "failed attempts since the last delivery",
        },
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        exactly_one(
            "spec",
            &[
                ("email", self.email.is_some()),
                ("discord", self.discord.is_some()),
                ("telegram", self.telegram.is_some()),
                ("slack", self.slack.is_some()),
                ("webhook", self.webhook.is_some()),
            ],
            errors,
        );
        if let Some(e) = &self.email {
            non_empty("spec.email.smtpHost", &e.smtp_host, errors);
            if e.smtp_host
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '/' | '@' | '`'))
            {
                errors.push(FieldError::invalid(
                    "spec.email.smtpHost",
                    "must be a host name or IP address",
                ));
            }
            check(errors, "spec.email.from", rules::email(&e.from));
            for (i, to) in e.to.iter().enumerate() {
                check(errors, format!("spec.email.to[{i}]"), rules::email(to));
            }
            if let Some(r) = &e.password_secret_ref {
                r.validate("spec.email.passwordSecretRef", errors);
            }
            if e.password_secret_ref.is_some() && e.username.is_none() {
                errors.push(FieldError::required(
                    "spec.email.username",
                    "a password needs a username",
                ));
            }
            if e.password_secret_ref.is_some() && e.tls == SmtpTls::None && !is_loopback_host(&e.smtp_host) {
                errors.push(FieldError::invalid(
                    "spec.email.tls",
                    "a password is never sent unencrypted: use starttls or tls, \
                     or none only with a loopback smtpHost",
                ));
            }
        }
        if let Some(d) = &self.discord {
            d.webhook_url_secret_ref
                .validate("spec.discord.webhookUrlSecretRef", errors);
            if let Some(u) = &d.base_url {
                check(errors, "spec.discord.baseUrl", rules::url(u, &["https", "http"]));
            }
        }
        if let Some(t) = &self.telegram {
            t.bot_token_secret_ref
                .validate("spec.telegram.botTokenSecretRef", errors);
            let chat_ok = !t.chat_id.is_empty()
                && (t
                    .chat_id
                    .trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_digit())
                    || (t.chat_id.starts_with('@') && t.chat_id.len() > 1));
            if !chat_ok {
                errors.push(FieldError::invalid(
                    "spec.telegram.chatId",
                    "must be a numeric chat id or @channel",
                ));
            }
            if let Some(u) = &t.base_url {
                check(errors, "spec.telegram.baseUrl", rules::url(u, &["https", "http"]));
            }
        }
        if let Some(s) = &self.slack {
            s.webhook_url_secret_ref
                .validate("spec.slack.webhookUrlSecretRef", errors);
            if let Some(u) = &s.base_url {
                check(errors, "spec.slack.baseUrl", rules::url(u, &["https", "http"]));
            }
        }
        if let Some(w) = &self.webhook {
            check(errors, "spec.webhook.url", rules::url(&w.url, &["https", "http"]));
            if let Some(u) = &w.base_url {
                check(errors, "spec.webhook.baseUrl", rules::url(u, &["https", "http"]));
            }
            if let Some(r) = &w.secret_ref {
                r.validate("spec.webhook.secretRef", errors);
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric()) {
                errors.push(FieldError::invalid(
                    format!("spec.events[{i}]"),
                    "must be a CamelCase event reason or type",
                ));
            }
        }
        if let Some(r) = &self.route {
            r.validate(errors);
        }
    }
}

impl NotifierRoute {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        for (i, e) in self.reasons.iter().enumerate() {
            if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric()) {
                errors.push(FieldError::invalid(
                    format!("spec.route.reasons[{i}]"),
                    "must be a CamelCase event reason",
                ));
            }
        }
        for (i, t) in self.types.iter().enumerate() {
            if t != "Normal" && t != "Warning" {
                errors.push(FieldError::invalid(
                    format!("spec.route.types[{i}]"),
                    "must be Normal or Warning",
                ));
            }
        }
        for (i, ns) in self.namespaces.iter().enumerate() {
            check(
                errors,
                format!("spec.route.namespaces[{i}]"),
                rules::dns1123_label(ns),
            );
        }
        let durations = [
            ("spec.route.groupWait", &self.group_wait),
            ("spec.route.groupInterval", &self.group_interval),
            ("spec.route.repeatInterval", &self.repeat_interval),
        ];
        for (field, value) in durations {
            check(errors, field, rules::duration(value));
        }
        if rules::parse_duration(&self.group_wait).is_some_and(|d| d.as_secs() > 3600) {
            errors.push(FieldError::invalid("spec.route.groupWait", "must be at most 1h"));
        }
        if rules::parse_duration(&self.repeat_interval).is_some_and(|d| d.as_secs() < 60) {
            errors.push(FieldError::invalid(
                "spec.route.repeatInterval",
                "must be at least 1m",
            ));
        }
    }
}
