//! What the HTTP channels share: URL rebasing, one POST, and turning the answer into
//! success or a classified [`NotifyError`].
//!
//! # Guarantees
//! - No error message carries a URL: reqwest errors are stripped of theirs
//!   (`without_url`), and callers redact their secrets from receivers' bodies.
//! - 2xx is success; 429 and 5xx retry, with `Retry-After` (seconds, integer or float) or
//!   the delay the caller finds in the body; other statuses are permanent.
//!
//! # Caveats
//! - `Retry-After` as an HTTP date is not parsed (no channel's receiver sends one).

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::{NotifyError, Secret};

/// The longest delay a receiver may ask for; more is clamped (a bogus value must not park
/// a notification for days).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How much of a receiver's error body goes into an error message.
const BODY_EXCERPT: usize = 200;

/// A receiver's answer.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// `url` with its scheme, host and port replaced by `base`'s, `base`'s path prefixed to its
/// own. `what` names the URL in errors; the URL itself is never shown.
pub(crate) fn rebase(url: &str, base: Option<&str>, what: &str) -> Result<Url, NotifyError> {
    let bad = || NotifyError::config(format!("{what} is not a valid http(s) URL"));
    let url = Url::parse(url).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad());
    }
    let Some(base) = base else {
        return Ok(url);
    };
    let bad_base = || NotifyError::config("baseUrl is not a valid http(s) URL");
    let mut out = Url::parse(base).map_err(|_| bad_base())?;
    if !matches!(out.scheme(), "http" | "https") || out.host().is_none() {
        return Err(bad_base());
    }
    let path = format!("{}{}", out.path().trim_end_matches('/'), url.path());
    out.set_path(&path);
    out.set_query(url.query());
    Ok(out)
}

/// POSTs `body` as JSON with `headers` and reads the answer. `channel` prefixes errors.
pub(crate) async fn post(
    http: &reqwest::Client,
    channel: &str,
    url: Url,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<Answer, NotifyError> {
    let response = http
        .post(url)
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| transport(channel, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(|e| transport(channel, e))?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// POSTs `payload` to a webhook whose whole URL is a secret (Discord, Slack), rebased onto
/// `base`, and classifies the answer (`body_retry_after` reads a delay from the receiver's
/// body). The URL is redacted from any error. `what` names the URL in errors.
pub(crate) async fn post_to_secret_url(
    http: &reqwest::Client,
    channel: &str,
    url: &Secret,
    base: Option<&str>,
    what: &str,
    payload: &serde_json::Value,
    body_retry_after: fn(&Answer) -> Option<Duration>,
) -> Result<(), NotifyError> {
    let result = async {
        let target = rebase(url.expose(), base, what)?;
        let body = serde_json::to_vec(payload)
            .map_err(|e| NotifyError::config(format!("{channel}: encode: {e}")))?;
        let answer = post(http, channel, target, HeaderMap::new(), body).await?;
        check(channel, &answer, body_retry_after(&answer))
    }
    .await;
    result.map_err(|e| e.redact_url(url))
}

/// A transport failure: retryable unless the request could not even be built.
fn transport(channel: &str, e: reqwest::Error) -> NotifyError {
    let e = e.without_url();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_builder() {
        return NotifyError::config(format!("{channel}: cannot build the request: {e}"));
    } else {
        "request failed"
    };
    let detail = std::error::Error::source(&e)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    NotifyError::Retry {
        after: None,
        reason: format!("{channel}: {what}{detail}"),
    }
}

/// Success on 2xx; otherwise the classified error. `body_retry_after` is the delay the
/// receiver's body names (Discord, Telegram), preferred over the header.
pub(crate) fn check(
    channel: &str,
    answer: &Answer,
    body_retry_after: Option<Duration>,
) -> Result<(), NotifyError> {
    let status = answer.status;
    if status.is_success() {
        return Ok(());
    }
    let reason = format!(
        "{channel}: receiver answered {}{}",
        status.as_u16(),
        excerpt(&answer.body)
    );
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let after = body_retry_after
            .or_else(|| header_retry_after(&answer.headers))
            .map(|d| d.min(MAX_RETRY_AFTER));
        return Err(NotifyError::Retry { after, reason });
    }
    Err(NotifyError::Permanent { reason })
}

/// `: <first line of the body>`, cut short, or nothing for an empty body.
fn excerpt(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or_default();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {}", super::truncate(line, BODY_EXCERPT))
    }
}

/// The `Retry-After` header as seconds (integer or float).
pub(crate) fn header_retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()
        .and_then(|v| seconds(v.trim().parse::<f64>().ok()?))
}

/// A non-negative finite number of seconds as a duration.
pub(crate) fn seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())))
}
