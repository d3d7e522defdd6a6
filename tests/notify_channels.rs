//! The notification channels against real receivers on loopback: aiosmtpd for e-mail, a
//! recording HTTP server speaking Discord's, Telegram's, Slack's and a webhook's answers,
//! and the PyPI Standard Webhooks reference library verifying webhook signatures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use berth_controllers::notify::{
    Channel, Message, NotifyError, ObjectRef, Secret, Severity, discord::DiscordChannel, email::EmailChannel,
    http_client, slack::SlackChannel, telegram::TelegramChannel, webhook::WebhookChannel,
};
use berth_crds::kinds::NotifierSpec;
use berth_crds::kinds::notifier::{EmailNotifier, SmtpTls};
use common::receivers::{HttpReceiver, Reply, SmtpSink, verify_standard_webhook};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN: &str = "123456:SECRET-bot-token";

fn message() -> Message {
    let object = ObjectRef {
        kind: "Application".into(),
        namespace: Some("shop-production".into()),
        name: "web".into(),
    };
    Message {
        id: "msg_2f1c0ffee".into(),
        title: "Deployment of web failed".into(),
        body: "the build failed: exit status 2 <stderr> & more".into(),
        severity: Severity::Critical,
        describe: object.describe_command(),
        object,
        reason: "BuildFailed".into(),
        resolved: false,
    }
}

fn email(port: u16, tls: SmtpTls, username: Option<&str>) -> EmailNotifier {
    EmailNotifier {
        smtp_host: "127.0.0.1".into(),
        port,
        username: username.map(str::to_owned),
        password_secret_ref: None,
        from: "berth <berth@example.com>".into(),
        to: vec!["ops@example.com".into(), "oncall@example.com".into()],
        tls,
    }
}

/// A `Retry` with exactly `after`, else a panic showing what came.
fn assert_retry(result: Result<(), NotifyError>, after: Option<Duration>) {
    match result {
        Err(NotifyError::Retry { after: got, .. }) if got == after => {}
        other => panic!("expected Retry after {after:?}, got {other:?}"),
    }
}

fn assert_permanent(result: Result<(), NotifyError>) -> String {
    match result {
        Err(e @ NotifyError::Permanent { .. }) => e.to_string(),
        other => panic!("expected Permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn email_without_tls_reaches_the_smtp_server_with_the_whole_message() {
    let sink = SmtpSink::start(None).await;
    let channel = EmailChannel::new(&email(sink.port(), SmtpTls::None, None), None).unwrap();
    channel.send(&message()).await.unwrap();

    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail["mail_from"], "berth@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@example.com", "oncall@example.com"])
    );
    assert_eq!(mail["authenticated"], false);
    let data = mail["data"].as_str().unwrap();
    for want in [
        "Subject: [berth] Deployment of web failed",
        "From: berth <berth@example.com>",
        "Object: Application shop-production/web",
        "Reason: BuildFailed",
        "Look closer: berth describe application/web -n shop-production",
        "exit status 2 <stderr> & more",
    ] {
        assert!(data.contains(want), "{want:?} missing from:\n{data}");
    }
}

#[tokio::test]
async fn email_authenticates_over_plain_smtp_to_a_loopback_relay() {
    let sink = SmtpSink::start(Some(("berth", "s3cret-pw"))).await;
    let spec = email(sink.port(), SmtpTls::None, Some("berth"));
    let channel = EmailChannel::new(&spec, Some(Secret::new("s3cret-pw"))).unwrap();
    channel.send(&message()).await.unwrap();
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["authenticated"], true);
    assert_eq!(mails[0]["login"], "berth");
    assert!(
        sink.commands().iter().any(|c| c.starts_with("b'AUTH")),
        "{:?}",
        sink.commands()
    );

    // A wrong password is the server's 535: permanent, and the password is not in the error.
    let wrong = EmailChannel::new(&spec, Some(Secret::new("wrong-pw"))).unwrap();
    let msg = assert_permanent(wrong.send(&message()).await);
    assert!(!msg.contains("wrong-pw"), "{msg}");
    assert_eq!(sink.mails().len(), 1);
}

#[tokio::test]
async fn starttls_refused_by_the_server_sends_no_credentials() {
    // aiosmtpd offers AUTH over plain text here, but no STARTTLS.
    let sink = SmtpSink::start(Some(("berth", "s3cret-pw"))).await;
    let spec = email(sink.port(), SmtpTls::Starttls, Some("berth"));
    let channel = EmailChannel::new(&spec, Some(Secret::new("s3cret-pw"))).unwrap();
    let msg = assert_permanent(channel.send(&message()).await);
    assert!(msg.to_lowercase().contains("starttls"), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "{msg}");

    let commands = sink.commands();
    assert!(
        commands.iter().any(|c| c.to_lowercase().starts_with("b'ehlo")),
        "the client spoke: {commands:?}"
    );
    assert!(
        !commands.iter().any(|c| {
            let c = c.to_lowercase();
            c.starts_with("b'auth") || c.starts_with("b'mail")
        }),
        "no AUTH nor MAIL may follow a failed upgrade: {commands:?}"
    );
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn email_to_a_closed_port_is_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let channel = EmailChannel::new(&email(port, SmtpTls::None, None), None).unwrap();
    assert_retry(channel.send(&message()).await, None);
}

#[tokio::test]
async fn discord_gets_an_embed_and_its_429_delay_is_honoured() {
    let rx = HttpReceiver::start().await;
    let http = http_client().unwrap();
    let secret = Secret::new("https://discord.com/api/webhooks/42/SECRET-hook-token");
    let channel = DiscordChannel::new(secret, Some(rx.url()));
    rx.reply(Reply::new(204, ""));
    channel.send(&http, &message()).await.unwrap();

    let req = rx.single();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/api/webhooks/42/SECRET-hook-token");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let embed = &req.json()["embeds"][0];
    assert_eq!(embed["title"], "Deployment of web failed");
    assert_eq!(
        embed["description"],
        "the build failed: exit status 2 <stderr> & more"
    );
    assert_eq!(embed["color"], Severity::Critical.color());
    assert_eq!(embed["fields"][0]["name"], "Object");
    assert_eq!(embed["fields"][0]["value"], "Application shop-production/web");
    assert_eq!(embed["fields"][1]["value"], "BuildFailed");
    assert!(
        embed["fields"][2]["value"]
            .as_str()
            .unwrap()
            .contains("berth describe application/web")
    );

    // 429: the JSON body's retry_after (float seconds) wins over the rounded header.
    rx.reply(
        Reply::new(
            429,
            r#"{"message": "You are being rate limited.", "retry_after": 1.25, "global": false}"#,
        )
        .header("retry-after", "2"),
    );
    assert_retry(
        channel.send(&http, &message()).await,
        Some(Duration::from_millis(1250)),
    );
    // Only the header: it is used.
    rx.reply(Reply::new(429, "").header("retry-after", "3"));
    assert_retry(
        channel.send(&http, &message()).await,
        Some(Duration::from_secs(3)),
    );
    rx.reply(Reply::new(502, "bad gateway"));
    assert_retry(channel.send(&http, &message()).await, None);
    // A deleted webhook: never retried, and the token is not in the error.
    rx.reply(Reply::new(
        404,
        r#"{"message": "Unknown Webhook SECRET-hook-token", "code": 10015}"#,
    ));
    let msg = assert_permanent(channel.send(&http, &message()).await);
    assert!(msg.contains("404") && !msg.contains("SECRET-hook-token"), "{msg}");
    assert_eq!(rx.requests().len(), 5);
}

#[tokio::test]
async fn telegram_gets_send_message_in_escaped_html_and_its_retry_after_is_honoured() {
    let rx = HttpReceiver::start().await;
    let http = http_client().unwrap();
    let channel = TelegramChannel::new(Secret::new(TOKEN), "-1001234".into(), Some(rx.url()));
    rx.reply(Reply::new(200, r#"{"ok": true, "result": {"message_id": 1}}"#));
    channel.send(&http, &message()).await.unwrap();

    let req = rx.single();
    assert_eq!(req.path, format!("/bot{TOKEN}/sendMessage"));
    let body = req.json();
    assert_eq!(body["chat_id"], "-1001234");
    assert_eq!(body["parse_mode"], "HTML");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("<b>Deployment of web failed</b>\n"), "{text}");
    assert!(text.contains("exit status 2 &lt;stderr&gt; &amp; more"), "{text}");
    assert!(text.contains("<b>Reason:</b> BuildFailed"), "{text}");
    assert!(
        text.contains("<code>berth describe application/web -n shop-production</code>"),
        "{text}"
    );

    rx.reply(Reply::new(
        429,
        r#"{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}}"#,
    ));
    assert_retry(
        channel.send(&http, &message()).await,
        Some(Duration::from_secs(7)),
    );
    rx.reply(Reply::new(500, r#"{"ok": false, "error_code": 500}"#));
    assert_retry(channel.send(&http, &message()).await, None);
    rx.reply(Reply::new(
        400,
        r#"{"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}"#,
    ));
    let msg = assert_permanent(channel.send(&http, &message()).await);
    assert!(msg.contains("chat not found") && !msg.contains(TOKEN), "{msg}");
    // A refused connection is retried, and its error does not show the URL (token in path).
    drop(rx);
    let closed = TelegramChannel::new(Secret::new(TOKEN), "1".into(), Some("http://127.0.0.1:9".into()));
    let e = closed.send(&http, &message()).await.unwrap_err();
    assert!(e.is_retryable() && !e.to_string().contains(TOKEN), "{e}");
}

#[tokio::test]
async fn slack_gets_text_and_blocks_and_its_errors_are_classified() {
    let rx = HttpReceiver::start().await;
    let http = http_client().unwrap();
    let url = Secret::new("https://hooks.slack.com/services/T000/B000/SECRETxyz");
    let channel = SlackChannel::new(url, Some(rx.url()));
    channel.send(&http, &message()).await.unwrap();

    let req = rx.single();
    assert_eq!(req.path, "/services/T000/B000/SECRETxyz");
    let body = req.json();
    assert_eq!(
        body["text"],
        "Deployment of web failed: Application shop-production/web"
    );
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "Deployment of web failed");
    assert_eq!(
        blocks[1]["text"]["text"],
        "the build failed: exit status 2 &lt;stderr&gt; &amp; more"
    );
    assert_eq!(blocks[2]["fields"][1]["text"], "*Reason*\nBuildFailed");
    assert!(
        blocks[3]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("berth describe")
    );

    rx.reply(Reply::new(400, "invalid_payload"));
    let msg = assert_permanent(channel.send(&http, &message()).await);
    assert!(
        msg.contains("invalid_payload") && !msg.contains("SECRETxyz"),
        "{msg}"
    );
    rx.reply(Reply::new(429, "rate_limited").header("retry-after", "1"));
    assert_retry(
        channel.send(&http, &message()).await,
        Some(Duration::from_secs(1)),
    );
    rx.reply(Reply::new(503, ""));
    assert_retry(channel.send(&http, &message()).await, None);
}

#[tokio::test]
async fn webhook_signature_verifies_with_the_standard_webhooks_reference_library() {
    let rx = HttpReceiver::start().await;
    let http = http_client().unwrap();
    // Built from the kind, as the controller will: the secret comes through a Secret key.
    let spec: NotifierSpec = serde_json::from_value(serde_json::json!({"webhook": {
        "url": "https://hooks.example.com/berth/events",
        "baseUrl": rx.url(),
        "secretRef": {"namespace": "ops", "name": "hooks", "key": "whsec"}}}))
    .unwrap();
    let channel = Channel::from_spec(&spec, |r| (r.key == "whsec").then(|| Secret::new(WHSEC))).unwrap();
    assert!(!format!("{channel:?}").contains("MfKQ9r8"), "{channel:?}");
    channel.send(&http, &message()).await.unwrap();

    let req = rx.single();
    assert_eq!(req.path, "/berth/events");
    assert_eq!(req.header("webhook-id"), Some("msg_2f1c0ffee"));
    let ts: u64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(ts) < 60, "timestamp {ts} vs now {now}");
    assert!(req.header("webhook-signature").unwrap().starts_with("v1,"));

    let payload = verify_standard_webhook(WHSEC, &req).await.unwrap();
    assert_eq!(payload["event"], "BuildFailed");
    assert_eq!(payload["object"]["namespace"], "shop-production");
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["resolved"], false);

    // The verifier really checks: a changed body, or another secret, fails.
    let mut tampered = req.clone();
    tampered.body = String::from_utf8(req.body.clone())
        .unwrap()
        .replace("BuildFailed", "BuildOk")
        .into_bytes();
    let err = verify_standard_webhook(WHSEC, &tampered).await.unwrap_err();
    assert!(err.contains("No matching signature"), "{err}");
    let other = "whsec_c2VjcmV0LW9mLWFub3RoZXItcmVjZWl2ZXI=";
    verify_standard_webhook(other, &req).await.unwrap_err();

    // Classification is the same as every HTTP channel's.
    rx.reply(Reply::new(429, "").header("retry-after", "5"));
    assert_retry(
        channel.send(&http, &message()).await,
        Some(Duration::from_secs(5)),
    );
    rx.reply(Reply::new(500, ""));
    assert_retry(channel.send(&http, &message()).await, None);
    rx.reply(Reply::new(400, "bad"));
    assert_permanent(channel.send(&http, &message()).await);
    // A redirect is not followed.
    rx.reply(Reply::new(302, "").header("location", "http://127.0.0.1:9/elsewhere"));
    assert_permanent(channel.send(&http, &message()).await);
    assert_eq!(rx.requests().len(), 5);
}

#[tokio::test]
async fn an_unsigned_webhook_has_no_signature_headers_and_missing_secrets_are_named() {
    let rx = HttpReceiver::start().await;
    let channel = WebhookChannel::new(format!("{}/hook", rx.url()), None, None).unwrap();
    channel.send(&http_client().unwrap(), &message()).await.unwrap();
    let req = rx.single();
    assert_eq!(req.header("webhook-signature"), None);
    assert_eq!(req.json()["id"], "msg_2f1c0ffee");

    let spec: NotifierSpec = serde_json::from_value(serde_json::json!({"telegram": {
        "botTokenSecretRef": {"namespace": "ops", "name": "tg", "key": "token"}, "chatId": "42"}}))
    .unwrap();
    let e = Channel::from_spec(&spec, |_| None).unwrap_err();
    assert!(
        matches!(&e, NotifyError::Config { reason } if reason.contains("spec.telegram.botTokenSecretRef") && reason.contains("ops/tg")),
        "{e:?}"
    );
}

// The CLI runs as a blocking child process: the receiver needs a second worker meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_notify_test_sends_through_the_notifier_with_its_secret() {
    use common::server::{Backend, BerthServer, OutputExt};
    let rx = HttpReceiver::start().await;
    let s = BerthServer::start(Backend::Embedded, &["--disable-controllers", "application"]);
    let manifest = format!(
        "apiVersion: berth.dev/v1\nkind: Project\nmetadata: {{name: ops}}\nspec: {{}}\n---\n\
         apiVersion: berth.dev/v1\nkind: Environment\nmetadata: {{name: ops-prod}}\nspec: {{project: ops}}\n---\n\
         apiVersion: berth.dev/v1\nkind: Secret\nmetadata: {{name: hooks, namespace: ops-prod}}\n\
         spec: {{data: {{whsec: {WHSEC}}}}}\n---\n\
         apiVersion: berth.dev/v1\nkind: Notifier\nmetadata: {{name: alerts}}\nspec:\n  webhook:\n\
         \x20   url: {url}/berth\n    secretRef: {{namespace: ops-prod, name: hooks, key: whsec}}\n",
        url = rx.url()
    );
    s.run_stdin(&["apply", "-f", "-"], &manifest).ok();
    let out = s.run(&["notify", "test", "notifier/alerts"]);
    let stdout = out.ok();
    assert!(stdout.contains("test message delivered (webhook)"), "{stdout}");
    let req = rx.single();
    let payload = verify_standard_webhook(WHSEC, &req).await.unwrap();
    assert_eq!(payload["event"], "Test");
    assert_eq!(payload["describe"], "berth describe notifier/alerts");
    let ready = |s: &BerthServer| {
        let out = s.run(&["get", "notifier/alerts", "-o", "json"]).ok();
        let obj: serde_json::Value = serde_json::from_str(&out).unwrap();
        let cond = obj["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .cloned()
            .unwrap();
        (
            cond,
            obj["status"]["sent"].clone(),
            obj["status"]["failed"].clone(),
        )
    };
    let (cond, sent, failed) = ready(&s);
    assert_eq!(
        (cond["status"].as_str(), cond["reason"].as_str()),
        (Some("True"), Some("Delivered"))
    );
    assert_eq!((sent, failed), (serde_json::json!(1), serde_json::json!(0)));

    // A refusal exits 1 with the receiver's answer, and shows no secret.
    rx.reply(Reply::new(400, "nope"));
    let out = s.run(&["notify", "test", "alerts"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.err());
    assert!(
        out.err().contains("400") && !out.err().contains("MfKQ9r8"),
        "{}",
        out.err()
    );
    let out = s.run(&["notify", "test", "app/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.err());
}
