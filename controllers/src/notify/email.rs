//! E-mail over SMTP with lettre: `starttls` (STARTTLS required, port 587), `tls` (implicit
//! TLS, port 465) or `none` (plain, for local relays); AUTH PLAIN/LOGIN when a username and
//! password are given.
//!
//! # Guarantees
//! - With `starttls` the upgrade is required (`Tls::Required`): when the server does not
//!   offer STARTTLS, or the handshake fails, the attempt stops before AUTH — no credentials
//!   are sent. That is a [`NotifyError::Permanent`]: it needs a configuration change.
//! - With `none`, credentials are sent only to a loopback host (`localhost`, `127.0.0.0/8`,
//!   `::1`), where they never cross a network; elsewhere the channel refuses to be built
//!   ([`NotifyError::Config`]), as the Notifier's validation refuses the spec.
//! - SMTP 4xx replies, timeouts and connection failures retry; 5xx replies (a refused
//!   recipient, failed authentication) are permanent.
//! - The password is never in an error or `Debug` output.
//!
//! # Caveats
//! - One connection per message (no pool): notifications are rare and grouped upstream.
//! - The EHLO name is `localhost` (no host-name lookup).

use berth_crds::kinds::notifier::{EmailNotifier, SmtpTls, is_loopback_host};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Message, NotifyError, SMTP_TIMEOUT, Secret};

/// An SMTP server, sender and recipients with the password resolved.
#[derive(Debug, Clone)]
pub struct EmailChannel {
    host: String,
    port: u16,
    tls: SmtpTls,
    login: Option<(String, Secret)>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailChannel {
    /// The channel of `spec`, authenticating with `password` (and `spec.username`) when given.
    pub fn new(spec: &EmailNotifier, password: Option<Secret>) -> Result<Self, NotifyError> {
        let mailbox = |s: &str, field: &str| {
            s.parse::<Mailbox>()
                .map_err(|e| NotifyError::config(format!("{field}: {e}")))
        };
        let login = match (&spec.username, password) {
            (Some(user), Some(password)) => Some((user.clone(), password)),
            (None, Some(_)) => {
                return Err(NotifyError::config(
                    "spec.email.username: a password needs a username",
                ));
            }
            _ => None,
        };
        if login.is_some() && spec.tls == SmtpTls::None && !is_loopback_host(&spec.smtp_host) {
            return Err(NotifyError::config(
                "spec.email.tls: a password is never sent unencrypted to a host other than loopback",
            ));
        }
        Ok(Self {
            host: spec.smtp_host.clone(),
            port: spec.port,
            tls: spec.tls,
            login,
            from: mailbox(&spec.from, "spec.email.from")?,
            to: spec
                .to
                .iter()
                .enumerate()
                .map(|(i, to)| mailbox(to, &format!("spec.email.to[{i}]")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Sends `message` as a plain-text e-mail to every recipient.
    pub async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        let email = self.build(message)?;
        let transport = self.transport()?;
        let result = transport.send(email).await.map(|_| ()).map_err(classify);
        match &self.login {
            Some((_, password)) => result.map_err(|e| e.redact(&[password])),
            None => result,
        }
    }

    fn build(&self, message: &Message) -> Result<lettre::Message, NotifyError> {
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(format!("[berth] {}", message.headline()))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(text(message))
            .map_err(|e| NotifyError::config(format!("email: {e}")))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
        let params = || {
            TlsParameters::new(self.host.clone())
                .map_err(|e| NotifyError::config(format!("email: tls parameters: {e}")))
        };
        let tls = match self.tls {
            SmtpTls::Starttls => Tls::Required(params()?),
            SmtpTls::Tls => Tls::Wrapper(params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = &self.login {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }
}

/// The plain-text body: the message, the object, the reason and how to look closer.
pub fn text(message: &Message) -> String {
    let mut out = format!("{}\n\nObject: {}\n", message.body, message.object.display());
    if !message.reason.is_empty() {
        out.push_str(&format!("Reason: {}\n", message.reason));
    }
    out.push_str(&format!("Severity: {}\n", message.severity.as_str()));
    if !message.describe.is_empty() {
        out.push_str(&format!("\nLook closer: {}\n", message.describe));
    }
    out
}

/// SMTP 4xx, timeouts and connection failures retry; 5xx, TLS and client-side refusals (no
/// STARTTLS offered, no common AUTH mechanism) are permanent.
fn classify(e: lettre::transport::smtp::Error) -> NotifyError {
    let reason = format!("email: {e}");
    if e.is_permanent() || e.is_tls() || e.is_client() {
        NotifyError::Permanent { reason }
    } else {
        NotifyError::Retry { after: None, reason }
    }
}
