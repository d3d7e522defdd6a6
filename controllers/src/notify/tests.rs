//! Table tests of the channels' pure parts: payloads, signatures, retry classification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::http::{self, Answer};
use super::*;

fn message() -> Message {
    let object = ObjectRef {
        kind: "Application".into(),
        namespace: Some("shop".into()),
        name: "web".into(),
    };
    Message {
        id: "msg_1".into(),
        title: "Deployment failed".into(),
        body: "build <failed> & stopped".into(),
        severity: Severity::Critical,
        describe: object.describe_command(),
        object,
        reason: "BuildFailed".into(),
        resolved: false,
    }
}

#[test]
fn signature_matches_the_standard_webhooks_test_vector() {
    // The vector of the Standard Webhooks reference libraries' tests.
    let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let sig = webhook::sign_with_secret(
        &secret,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        br#"{"test": 2432232314}"#,
    )
    .unwrap();
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    // The prefix is optional, padding too; garbage and empty secrets are refused.
    let bare = Secret::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    assert_eq!(
        webhook::sign_with_secret(
            &bare,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#
        )
        .unwrap(),
        sig
    );
    for bad in ["whsec_!!!", "whsec_"] {
        let e = webhook::WebhookChannel::new("https://h.example.com".into(), None, Some(Secret::new(bad)))
            .unwrap_err();
        assert!(matches!(e, NotifyError::Config { .. }), "{e:?}");
        assert!(!e.to_string().contains(bad.trim_start_matches("whsec_")) || bad == "whsec_");
    }
}

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    Answer {
        status: StatusCode::from_u16(status).unwrap(),
        headers: map,
        body: body.into(),
    }
}

/// What [`http::check`] should decide.
#[derive(Debug, PartialEq)]
enum Want {
    Ok,
    Retry(Option<Duration>),
    Permanent,
}

/// Status, headers, the body's delay, and the decision.
type Case = (
    u16,
    &'static [(&'static str, &'static str)],
    Option<Duration>,
    Want,
);

#[test]
fn statuses_are_classified_like_alertmanager() {
    use Want::*;
    let ms = Duration::from_millis;
    let cases: &[Case] = &[
        (200, &[], None, Ok),
        (204, &[], None, Ok),
        // A body's delay (Discord, Telegram) wins over the header.
        (
            429,
            &[("retry-after", "9")],
            Some(ms(1500)),
            Retry(Some(ms(1500))),
        ),
        (
            429,
            &[("retry-after", "3")],
            None,
            Retry(Some(Duration::from_secs(3))),
        ),
        (429, &[("retry-after", "0.25")], None, Retry(Some(ms(250)))),
        (429, &[("retry-after", "soon")], None, Retry(None)),
        (429, &[("retry-after", "-1")], None, Retry(None)),
        (500, &[], None, Retry(None)),
        (
            503,
            &[("retry-after", "99999999")],
            None,
            Retry(Some(Duration::from_secs(3600))),
        ),
        (400, &[], None, Permanent),
        (404, &[], None, Permanent),
        (301, &[("location", "https://elsewhere")], None, Permanent),
    ];
    for (status, headers, body_delay, want) in cases {
        let got = match http::check("x", &answer(*status, headers, "nope"), *body_delay) {
            Result::Ok(()) => Ok,
            Err(NotifyError::Retry { after, .. }) => Retry(after),
            Err(NotifyError::Permanent { reason }) => {
                assert!(
                    reason.contains(&status.to_string()) && reason.contains("nope"),
                    "{reason}"
                );
                Permanent
            }
            Err(e) => panic!("{status}: {e:?}"),
        };
        assert_eq!(&got, want, "{status} {headers:?}");
    }
}

#[test]
fn base_urls_replace_scheme_host_and_port_and_keep_the_path() {
    let cases = [
        (
            "https://discord.com/api/webhooks/1/tok?x=1",
            None,
            "https://discord.com/api/webhooks/1/tok?x=1",
        ),
        (
            "https://discord.com/api/webhooks/1/tok",
            Some("http://127.0.0.1:9"),
            "http://127.0.0.1:9/api/webhooks/1/tok",
        ),
        (
            "https://hooks.slack.com/services/T/B/X",
            Some("http://proxy:8/slack/"),
            "http://proxy:8/slack/services/T/B/X",
        ),
    ];
    for (url, base, want) in cases {
        assert_eq!(http::rebase(url, base, "u").unwrap().as_str(), want);
    }
    for (url, base) in [
        ("not a url", None),
        ("ftp://h/x", None),
        ("https://h/x", Some("nope")),
    ] {
        let e = http::rebase(url, base, "the secret URL").unwrap_err();
        assert!(matches!(e, NotifyError::Config { .. }));
        assert!(!e.to_string().contains(url), "{e}");
    }
}

#[test]
fn payloads_carry_the_message_escaped() {
    let m = message();
    let d = discord::payload(&m);
    let embed = &d["embeds"][0];
    assert_eq!(embed["title"], "Deployment failed");
    assert_eq!(embed["color"], 0xE7_4C3C);
    assert_eq!(embed["fields"][0]["value"], "Application shop/web");
    assert_eq!(embed["fields"][1]["value"], "BuildFailed");
    assert_eq!(
        embed["fields"][2]["value"],
        "`berth describe application/web -n shop`"
    );

    let t = telegram::text(&m);
    assert!(t.contains("build &lt;failed&gt; &amp; stopped"), "{t}");
    assert!(
        t.contains("<code>berth describe application/web -n shop</code>"),
        "{t}"
    );

    let s = slack::payload(&m);
    assert_eq!(s["blocks"][0]["text"]["text"], "Deployment failed");
    assert_eq!(
        s["blocks"][1]["text"]["text"],
        "build &lt;failed&gt; &amp; stopped"
    );

    let resolved = Message { resolved: true, ..m };
    assert_eq!(
        discord::payload(&resolved)["embeds"][0]["color"],
        Severity::Success.color()
    );
    assert!(email::text(&resolved).contains("Look closer: berth describe"));
    assert_eq!(resolved.headline(), "[RESOLVED] Deployment failed");
}

#[test]
fn long_texts_are_cut_within_the_receivers_limits() {
    let m = Message {
        title: "t".repeat(1000),
        body: "é".repeat(10_000),
        ..message()
    };
    let embed = &discord::payload(&m)["embeds"][0];
    assert_eq!(embed["title"].as_str().unwrap().chars().count(), 256);
    assert_eq!(embed["description"].as_str().unwrap().chars().count(), 4096);
    assert!(embed["description"].as_str().unwrap().ends_with('…'));
    assert!(telegram::text(&m).chars().count() <= 4096);
}

#[test]
fn secrets_do_not_show_in_debug_or_errors() {
    let secret = Secret::new("hunter2-token");
    let channels = [
        Channel::Telegram(telegram::TelegramChannel::new(secret.clone(), "42".into(), None)),
        Channel::Discord(discord::DiscordChannel::new(secret.clone(), None)),
        Channel::Slack(slack::SlackChannel::new(secret.clone(), None)),
    ];
    for c in &channels {
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
    let e = NotifyError::Permanent {
        reason: "echoed hunter2-token back".into(),
    }
    .redact(&[&secret]);
    assert_eq!(e.to_string(), "echoed <redacted> back");
}

#[test]
fn smtp_passwords_go_unencrypted_only_to_loopback() {
    let spec =
        |host: &str, tls: berth_crds::kinds::notifier::SmtpTls| berth_crds::kinds::notifier::EmailNotifier {
            smtp_host: host.into(),
            port: 25,
            username: Some("u".into()),
            password_secret_ref: None,
            from: "berth@example.com".into(),
            to: vec!["ops@example.com".into()],
            tls,
        };
    use berth_crds::kinds::notifier::SmtpTls;
    let pw = || Some(Secret::new("pw"));
    assert!(email::EmailChannel::new(&spec("127.0.0.1", SmtpTls::None), pw()).is_ok());
    assert!(email::EmailChannel::new(&spec("smtp.example.com", SmtpTls::Starttls), pw()).is_ok());
    let e = email::EmailChannel::new(&spec("smtp.example.com", SmtpTls::None), pw()).unwrap_err();
    assert!(matches!(e, NotifyError::Config { .. }), "{e:?}");
    assert!(email::EmailChannel::new(&spec("smtp.example.com", SmtpTls::None), None).is_ok());
}

#[test]
fn ready_reflects_the_last_delivery_without_secrets() {
    use berth_crds::kinds::notifier::NotifierStatus;
    use berth_crds::meta::ConditionStatus;
    let t0 = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).unwrap();
    let t1 = t0 + chrono::Duration::seconds(60);
    let mut s = NotifierStatus::default();
    let ready = |s: &NotifierStatus| {
        let c = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        (
            c.status,
            c.reason.clone(),
            c.message.clone(),
            c.last_transition_time,
        )
    };
    assert!(status::record_delivery(&mut s, &Ok(()), 3, t0));
    assert_eq!(ready(&s).0, ConditionStatus::True);
    assert_eq!((s.sent, s.failed, s.observed_generation), (1, 0, Some(3)));

    let retry = Err(NotifyError::Retry {
        after: None,
        reason: "discord: receiver answered 502".into(),
    });
    assert!(status::record_delivery(&mut s, &retry, 3, t1));
    let (st, reason, message, since) = ready(&s);
    assert_eq!(
        (st, reason.as_str(), since),
        (ConditionStatus::False, "DeliveryRetrying", t1)
    );
    assert!(message.contains("502"), "{message}");
    assert_eq!(
        (s.sent, s.failed),
        (1, 0),
        "a pending retry is neither sent nor failed"
    );
    // The same outcome again changes nothing, not even the transition time.
    assert!(!status::record_delivery(
        &mut s,
        &retry,
        3,
        t1 + chrono::Duration::seconds(5)
    ));

    let permanent = Err(NotifyError::Permanent {
        reason: "telegram: receiver answered 400".into(),
    });
    status::record_delivery(&mut s, &permanent, 3, t1);
    assert_eq!(ready(&s).1, "DeliveryFailed");
    assert_eq!((s.sent, s.failed), (1, 1));

    let m = status::test_message("ops", "1");
    assert_eq!(m.describe, "berth describe notifier/ops");
    assert_ne!(m.id, status::test_message("ops", "2").id);
}
