//! Object validation through the public API: every error names the offending field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_crds::{FieldErrorKind, KindInfo, ValidationErrors, lookup};
use serde_json::{Value, json};

fn kind(name: &str) -> &'static KindInfo {
    lookup(name).unwrap()
}

fn app() -> Value {
    json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "shop-production"},
        "spec": {
            "source": {"image": "nginx:1.27"},
            "destination": "local-default",
            "ports": [{"containerPort": 8080}],
            "domains": [{"host": "shop.example.com"}]
        }
    })
}

fn errors(kind_name: &str, obj: &Value) -> ValidationErrors {
    match kind(kind_name).validate(obj) {
        Ok(()) => panic!("{kind_name} should be invalid: {obj:#}"),
        Err(e) => e,
    }
}

/// Asserts that an error of `kind` is reported at exactly `field`, and returns its message.
fn expect(errs: &ValidationErrors, field: &str, kind: FieldErrorKind) -> String {
    match errs.at(field).find(|e| e.kind == kind) {
        Some(e) => e.message.clone(),
        None => panic!("expected {kind:?} at {field}, got: {errs}"),
    }
}

#[test]
fn valid_application_passes() {
    kind("app").validate(&app()).unwrap();
}

#[test]
fn unknown_fields_are_named() {
    let mut obj = app();
    obj["spec"]["foo"] = json!(1);
    obj["spec"]["ports"][0]["bogus"] = json!(true);
    obj["metadata"]["bogus"] = json!("x");
    obj["extra"] = json!({});
    let errs = errors("Application", &obj);
    for field in ["spec.foo", "spec.ports[0].bogus", "metadata.bogus", "extra"] {
        let msg = expect(&errs, field, FieldErrorKind::Forbidden);
        assert!(msg.contains("not declared in schema"), "{msg}");
    }
}

#[test]
fn missing_required_fields_are_reported_at_their_path() {
    let mut obj = app();
    obj["spec"].as_object_mut().unwrap().remove("destination");
    obj["spec"]["ports"][0] = json!({"protocol": "udp"});
    let errs = errors("Application", &obj);
    expect(&errs, "spec.destination", FieldErrorKind::Required);
    expect(&errs, "spec.ports[0].containerPort", FieldErrorKind::Required);

    let mut obj = app();
    obj.as_object_mut().unwrap().remove("spec");
    obj.as_object_mut().unwrap().remove("apiVersion");
    let errs = errors("Application", &obj);
    expect(&errs, "spec", FieldErrorKind::Required);
    expect(&errs, "apiVersion", FieldErrorKind::Required);
}

#[test]
fn wrong_types_name_the_expected_type() {
    let mut obj = app();
    obj["spec"]["replicas"] = json!("two");
    obj["spec"]["ports"][0]["containerPort"] = json!(70000);
    let errs = errors("Application", &obj);
    let msg = expect(&errs, "spec.replicas", FieldErrorKind::Invalid);
    assert!(msg.contains("integer") && msg.contains("string"), "{msg}");
    let msg = expect(&errs, "spec.ports[0].containerPort", FieldErrorKind::Invalid);
    assert!(msg.contains("65535"), "{msg}");
}

#[test]
fn unsupported_enum_values_list_the_supported_ones() {
    let mut obj = app();
    obj["spec"]["restartPolicy"] = json!("sometimes");
    let msg = expect(
        &errors("Application", &obj),
        "spec.restartPolicy",
        FieldErrorKind::NotSupported,
    );
    assert!(msg.contains("unless-stopped"), "{msg}");
}

#[test]
fn bad_names_are_rejected() {
    for name in ["Web_App", "-web", "web.app", &"a".repeat(64)] {
        let mut obj = app();
        obj["metadata"]["name"] = json!(name);
        let errs = errors("Application", &obj);
        assert!(errs.at("metadata.name").next().is_some(), "{name}: {errs}");
    }
    let mut obj = app();
    obj["metadata"]["labels"] = json!({"tier": "front end"});
    expect(
        &errors("Application", &obj),
        "metadata.labels.tier",
        FieldErrorKind::Invalid,
    );
}

#[test]
fn hosts_that_could_break_a_traefik_rule_are_rejected() {
    for host in [
        "shop.example.com`) || Host(`evil.example.com",
        "shop.example.com)",
        "(shop.example.com",
        "shop example.com",
        "shop.example.com||evil.com",
        "shop.example.com`",
    ] {
        let mut obj = app();
        obj["spec"]["domains"][0]["host"] = json!(host);
        expect(
            &errors("Application", &obj),
            "spec.domains[0].host",
            FieldErrorKind::Invalid,
        );
    }
    let mut obj = app();
    obj["spec"]["domains"][0]["path"] = json!("/api`)");
    expect(
        &errors("Application", &obj),
        "spec.domains[0].path",
        FieldErrorKind::Invalid,
    );
}

#[test]
fn namespace_must_match_the_kind_scope() {
    let project = json!({
        "apiVersion": "berth.dev/v1", "kind": "Project",
        "metadata": {"name": "shop", "namespace": "default"}, "spec": {}
    });
    expect(
        &errors("Project", &project),
        "metadata.namespace",
        FieldErrorKind::Forbidden,
    );
    let mut obj = app();
    obj["metadata"].as_object_mut().unwrap().remove("namespace");
    expect(
        &errors("Application", &obj),
        "metadata.namespace",
        FieldErrorKind::Required,
    );
    let mut obj = app();
    obj["metadata"]["namespace"] = json!("Shop Production");
    expect(
        &errors("Application", &obj),
        "metadata.namespace",
        FieldErrorKind::Invalid,
    );
}

#[test]
fn exactly_one_of_is_enforced() {
    let mut obj = app();
    obj["spec"]["source"]["git"] = json!({"url": "https://github.com/org/repo.git"});
    expect(
        &errors("Application", &obj),
        "spec.source.git",
        FieldErrorKind::Forbidden,
    );
    let mut obj = app();
    obj["spec"]["source"] = json!({});
    expect(
        &errors("Application", &obj),
        "spec.source",
        FieldErrorKind::Required,
    );
    let mut obj = app();
    obj["spec"]["env"] = json!([{"name": "A", "value": "1", "secretKeyRef": {"name": "s", "key": "k"}}]);
    expect(
        &errors("Application", &obj),
        "spec.env[0].secretKeyRef",
        FieldErrorKind::Forbidden,
    );

    let storage =
        json!({"apiVersion": "berth.dev/v1", "kind": "BackupStorage", "metadata": {"name": "b"}, "spec": {}});
    expect(
        &errors("BackupStorage", &storage),
        "spec",
        FieldErrorKind::Required,
    );
    let notifier = json!({
        "apiVersion": "berth.dev/v1", "kind": "Notifier", "metadata": {"name": "n"},
        "spec": {"webhook": {"url": "https://hooks.example.com/x"},
                 "telegram": {"botTokenSecretRef": {"namespace": "ops", "name": "tg", "key": "token"}, "chatId": "42"}}
    });
    expect(
        &errors("Notifier", &notifier),
        "spec.webhook",
        FieldErrorKind::Forbidden,
    );
    let service = json!({
        "apiVersion": "berth.dev/v1", "kind": "Service", "metadata": {"name": "s", "namespace": "p-production"},
        "spec": {"destination": "d", "compose": "services: {}"}
    });
    expect(
        &errors("Service", &service),
        "spec.compose",
        FieldErrorKind::Invalid,
    );
}

#[test]
fn bad_cron_and_time_zone_are_rejected() {
    let schedule = |cron: &str, tz: &str| {
        json!({
            "apiVersion": "berth.dev/v1", "kind": "BackupSchedule",
            "metadata": {"name": "nightly", "namespace": "shop-production"},
            "spec": {"database": "main", "schedule": cron, "timeZone": tz, "storages": [{"name": "s3"}]}
        })
    };
    kind("BackupSchedule")
        .validate(&schedule("0 3 * * *", "Europe/Berlin"))
        .unwrap();
    for cron in ["0 3 * *", "61 3 * * *", "0 0 3 * * *", "nightly"] {
        expect(
            &errors("BackupSchedule", &schedule(cron, "UTC")),
            "spec.schedule",
            FieldErrorKind::Invalid,
        );
    }
    expect(
        &errors("BackupSchedule", &schedule("@daily", "Berlin")),
        "spec.timeZone",
        FieldErrorKind::Invalid,
    );
    let mut empty = schedule("@daily", "UTC");
    empty["spec"]["storages"] = json!([]);
    expect(
        &errors("BackupSchedule", &empty),
        "spec.storages",
        FieldErrorKind::Required,
    );
}

#[test]
fn all_errors_are_collected() {
    let mut obj = app();
    obj["apiVersion"] = json!("berth.dev/v2");
    obj["kind"] = json!("Database");
    obj["metadata"]["name"] = json!("Bad");
    obj["spec"]["bogus"] = json!(1);
    let errs = errors("Application", &obj);
    assert_eq!(errs.0.len(), 4, "{errs}");
    let fields: Vec<_> = errs.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["apiVersion", "kind", "metadata.name", "spec.bogus"]);
}

#[test]
fn semantic_errors_are_collected_together() {
    let mut obj = app();
    obj["spec"]["env"] =
        json!([{"name": "1BAD", "value": "x"}, {"name": "OK", "value": "1"}, {"name": "OK", "value": "2"}]);
    obj["spec"]["resources"] = json!({"cpus": "lots", "memory": "512m"});
    obj["spec"]["destination"] = json!("Local");
    let errs = errors("Application", &obj);
    expect(&errs, "spec.env[0].name", FieldErrorKind::Invalid);
    expect(&errs, "spec.env[2].name", FieldErrorKind::Duplicate);
    expect(&errs, "spec.resources.cpus", FieldErrorKind::Invalid);
    expect(&errs, "spec.resources.memory", FieldErrorKind::Invalid);
    expect(&errs, "spec.destination", FieldErrorKind::Invalid);
}

#[test]
fn nulls_mean_absent_and_normalize_fills_defaults() {
    let mut obj = app();
    obj["spec"]["healthCheck"] = Value::Null;
    obj["spec"]["ports"][0]["hostPort"] = Value::Null;
    obj["status"] = Value::Null;
    let app_kind = kind("Application");
    app_kind.validate(&obj).unwrap();
    let n = app_kind.normalize(&obj).unwrap();
    assert_eq!(n["spec"]["replicas"], 1);
    assert_eq!(n["spec"]["restartPolicy"], "unless-stopped");
    assert_eq!(n["spec"]["ports"][0]["protocol"], "tcp");
    assert_eq!(n["spec"]["domains"][0]["https"], true);
    assert!(n["spec"].get("healthCheck").is_none());
    assert!(n.get("status").is_none());

    let server = json!({"apiVersion": "berth.dev/v1", "kind": "Server", "metadata": {"name": "local"}, "spec": {"localhost": {}}});
    let n = kind("server").normalize(&server).unwrap();
    assert_eq!(
        n["spec"]["localhost"]["dockerHost"],
        "unix:///var/run/docker.sock"
    );
    assert_eq!(n["spec"]["automation"]["dockerCleanupThresholdPercent"], 80);
    let proxy = json!({"apiVersion": "berth.dev/v1", "kind": "Proxy", "metadata": {"name": "p"}, "spec": {"server": "local", "acme": {"email": "ops@example.com"}}});
    let n = kind("proxy").normalize(&proxy).unwrap();
    assert_eq!(n["spec"]["image"], "traefik:v3.6");
    assert_eq!(n["spec"]["httpsPort"], 443);
    assert_eq!(
        n["spec"]["acme"]["caServer"],
        "https://acme-v02.api.letsencrypt.org/directory"
    );
}

#[test]
fn status_is_validated_when_present() {
    let mut obj = app();
    obj["status"] = json!({"readyReplicas": 1, "bogus": 1});
    expect(
        &errors("Application", &obj),
        "status.bogus",
        FieldErrorKind::Forbidden,
    );
    let condition = json!({"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"});
    obj["status"] = json!({"conditions": [condition.clone(), condition]});
    expect(
        &errors("Application", &obj),
        "status.conditions[1].type",
        FieldErrorKind::Duplicate,
    );
    obj["status"] = json!({"conditions": [{"type": "Ready", "status": "Maybe", "lastTransitionTime": "2025-01-01T00:00:00Z"}]});
    expect(
        &errors("Application", &obj),
        "status.conditions[0].status",
        FieldErrorKind::NotSupported,
    );
}

#[test]
fn immutable_fields_cannot_change() {
    let env = |project: &str| {
        json!({"apiVersion": "berth.dev/v1", "kind": "Environment", "metadata": {"name": "shop-staging"},
               "spec": {"project": project, "displayName": "staging"}})
    };
    let environment = kind("env");
    environment.validate_update(&env("shop"), &env("shop")).unwrap();
    let errs = environment
        .validate_update(&env("shop"), &env("other"))
        .unwrap_err();
    assert_eq!(
        expect(&errs, "spec.project", FieldErrorKind::Forbidden),
        "field is immutable"
    );

    let db = |engine: &str, version: &str| {
        json!({"apiVersion": "berth.dev/v1", "kind": "Database", "metadata": {"name": "main", "namespace": "shop-production"},
               "spec": {"engine": engine, "version": version, "destination": "local-default"}})
    };
    kind("db")
        .validate_update(&db("postgresql", "16"), &db("postgresql", "17"))
        .unwrap();
    let errs = kind("db")
        .validate_update(&db("postgresql", "16"), &db("mysql", "16"))
        .unwrap_err();
    expect(&errs, "spec.engine", FieldErrorKind::Forbidden);

    let backup = |storages: Value| {
        json!({"apiVersion": "berth.dev/v1", "kind": "Backup", "metadata": {"name": "b1", "namespace": "shop-production"},
               "spec": {"database": "main", "storages": storages}})
    };
    let errs = kind("backup")
        .validate_update(&backup(json!(["local"])), &backup(json!(["s3"])))
        .unwrap_err();
    expect(&errs, "spec", FieldErrorKind::Forbidden);

    let mut moved = app();
    moved["metadata"]["namespace"] = json!("shop-staging");
    moved["spec"]["replicas"] = json!(3);
    let errs = kind("app").validate_update(&app(), &moved).unwrap_err();
    expect(&errs, "metadata.namespace", FieldErrorKind::Forbidden);
    assert_eq!(errs.0.len(), 1, "{errs}");
}

#[test]
fn display_shows_every_error() {
    let mut obj = app();
    obj["spec"]["replicas"] = json!("two");
    obj["spec"]["ports"][0]["bogus"] = json!(1);
    let text = errors("Application", &obj).to_string();
    assert_eq!(
        text,
        "spec.ports[0].bogus: Forbidden: field not declared in schema; \
         spec.replicas: Invalid value: must be of type integer, got string"
    );
}

#[test]
fn container_settings_are_checked_field_by_field() {
    let mut obj = app();
    obj["spec"].as_object_mut().unwrap().extend(
        json!({
            "user": "1000:1000", "workingDir": "/srv", "hostname": "web",
            "capAdd": ["NET_ADMIN", "CAP_SYS_PTRACE"], "capDrop": ["ALL"],
            "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "memlock": {"soft": -1, "hard": -1}},
            "sysctls": {"net.core.somaxconn": "1024"}, "shmSize": "64m", "stopSignal": "SIGQUIT",
            "stopGracePeriod": "1m30s", "tty": true, "stdinOpen": true,
            "labels": {"com.example.team": "shop", "traefik.enable": "false"},
            "networkAliases": ["db", "my_service.internal"],
            "healthCheck": {"shell": "wget -q -O- http://127.0.0.1:8080/ || exit 1"},
            "volumes": [{"name": "shared", "mountPath": "/shared", "external": true}],
            "files": [{"mountPath": "/etc/app.conf", "content": "a=1", "readOnly": true}]
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    kind("Application").validate(&obj).unwrap();

    let mut bad = app();
    bad["spec"].as_object_mut().unwrap().extend(
        json!({
            "user": "bad user", "workingDir": "srv", "hostname": "Web_1",
            "capAdd": ["net_admin"], "capDrop": ["CAP_"],
            "ulimits": {"nofile": {"soft": 4096, "hard": 1024}, "No-File": {"soft": 1, "hard": 1}},
            "sysctls": {"net core": "1"}, "shmSize": "lots", "stopSignal": "sigterm",
            "stopGracePeriod": "soon",
            "labels": {"dev.berth.owner": "me", "bad key": "x"},
            "networkAliases": ["-db", "db2", "db2"],
            "healthCheck": {"shell": "true", "command": ["true"]},
            "volumes": [{"hostPath": "/srv/x", "mountPath": "/x", "external": true}],
            "files": [{"mountPath": "relative"}, {"mountPath": "/etc/dir/"}, {"mountPath": "/x"}]
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    let errs = errors("Application", &bad);
    for field in [
        "spec.user",
        "spec.workingDir",
        "spec.hostname",
        "spec.capAdd[0]",
        "spec.capDrop[0]",
        "spec.ulimits.nofile.soft",
        "spec.ulimits[No-File]",
        "spec.sysctls[net core]",
        "spec.shmSize",
        "spec.stopSignal",
        "spec.stopGracePeriod",
        "spec.labels[bad key]",
        "spec.networkAliases[0]",
        "spec.files[0].mountPath",
        "spec.files[1].mountPath",
    ] {
        expect(&errs, field, FieldErrorKind::Invalid);
    }
    let reserved = expect(&errs, "spec.labels[dev.berth.owner]", FieldErrorKind::Forbidden);
    assert!(reserved.contains("berth's own"), "{reserved}");
    expect(&errs, "spec.networkAliases[2]", FieldErrorKind::Duplicate);
    expect(&errs, "spec.files[2].mountPath", FieldErrorKind::Duplicate);
    expect(&errs, "spec.healthCheck.shell", FieldErrorKind::Forbidden);
    expect(&errs, "spec.volumes[0].external", FieldErrorKind::Forbidden);
}

#[test]
fn a_database_without_injected_credentials_needs_its_secret() {
    let db = |extra: Value| {
        let mut spec = json!({"engine": "postgresql", "destination": "d"});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"apiVersion": "berth.dev/v1", "kind": "Database",
               "metadata": {"name": "main", "namespace": "shop-production"}, "spec": spec})
    };
    let message = expect(
        &errors("Database", &db(json!({"injectCredentials": false}))),
        "spec.credentialsSecretRef",
        FieldErrorKind::Required,
    );
    assert!(message.contains("injectCredentials"), "{message}");
    kind("Database")
        .validate(&db(
            json!({"injectCredentials": false, "credentialsSecretRef": "login",
                             "env": [{"name": "POSTGRES_PASSWORD", "value": "x"}],
                             "networkAliases": ["db"]}),
        ))
        .unwrap();
    let errs = errors(
        "Database",
        &db(json!({"networkAliases": ["db", "db", "bad alias"]})),
    );
    expect(&errs, "spec.networkAliases[1]", FieldErrorKind::Duplicate);
    expect(&errs, "spec.networkAliases[2]", FieldErrorKind::Invalid);
}

fn notifier(spec: Value) -> Value {
    json!({"apiVersion": "berth.dev/v1", "kind": "Notifier", "metadata": {"name": "n"}, "spec": spec})
}

#[test]
fn slack_and_signed_webhook_notifiers_validate_their_fields() {
    let secret = json!({"namespace": "ops", "name": "hooks", "key": "slack"});
    kind("Notifier")
        .validate(&notifier(json!({"slack": {"webhookUrlSecretRef": secret}})))
        .unwrap();
    kind("Notifier")
        .validate(&notifier(json!({"webhook": {
            "url": "https://hooks.example.com/berth", "baseUrl": "http://127.0.0.1:8080",
            "secretRef": {"namespace": "ops", "name": "hooks", "key": "whsec"}}})))
        .unwrap();
    let errs = errors(
        "Notifier",
        &notifier(json!({"slack": {
            "webhookUrlSecretRef": {"namespace": "Ops", "name": "hooks", "key": "slack"},
            "baseUrl": "ftp://x"}})),
    );
    expect(
        &errs,
        "spec.slack.webhookUrlSecretRef.namespace",
        FieldErrorKind::Invalid,
    );
    expect(&errs, "spec.slack.baseUrl", FieldErrorKind::Invalid);
    let errs = errors(
        "Notifier",
        &notifier(json!({"webhook": {"url": "https://h.example.com", "baseUrl": "nope"}})),
    );
    expect(&errs, "spec.webhook.baseUrl", FieldErrorKind::Invalid);
    // Slack counts as a channel: with a webhook, the second one named is refused.
    let errs = errors(
        "Notifier",
        &notifier(json!({"slack": {"webhookUrlSecretRef": secret},
                         "webhook": {"url": "https://h.example.com"}})),
    );
    expect(&errs, "spec.webhook", FieldErrorKind::Forbidden);
    let msg = expect(
        &errors("Notifier", &notifier(json!({}))),
        "spec",
        FieldErrorKind::Required,
    );
    assert!(msg.contains("slack"), "{msg}");
}

#[test]
fn smtp_passwords_are_never_sent_unencrypted_off_this_machine() {
    let email = |host: &str, tls: &str| {
        notifier(json!({"email": {
            "smtpHost": host, "tls": tls, "username": "berth",
            "passwordSecretRef": {"namespace": "ops", "name": "smtp", "key": "password"},
            "from": "berth@example.com", "to": ["ops@example.com"]}}))
    };
    let msg = expect(
        &errors("Notifier", &email("smtp.example.com", "none")),
        "spec.email.tls",
        FieldErrorKind::Invalid,
    );
    assert!(msg.contains("unencrypted"), "{msg}");
    for host in ["127.0.0.1", "localhost", "::1"] {
        kind("Notifier").validate(&email(host, "none")).unwrap();
    }
    for tls in ["starttls", "tls"] {
        kind("Notifier")
            .validate(&email("smtp.example.com", tls))
            .unwrap();
    }
}

#[test]
fn notifier_routes_name_their_bad_fields() {
    let hook = json!({"url": "https://h.example.com/hook"});
    let with_route = |route: Value| notifier(json!({"webhook": hook, "route": route}));
    kind("Notifier")
        .validate(&with_route(json!({
            "reasons": ["BackupFailed"], "types": ["Warning"], "namespaces": ["shop"],
            "minSeverity": "warning", "groupWait": "1s", "groupInterval": "1m",
            "repeatInterval": "4h", "sendResolved": false})))
        .unwrap();
    kind("Notifier").validate(&with_route(json!({}))).unwrap();
    let errs = errors(
        "Notifier",
        &with_route(json!({
            "reasons": ["Backup Failed"], "types": ["Error"], "namespaces": ["Shop_1"],
            "groupWait": "soon", "groupInterval": "5 minutes", "repeatInterval": "10s"})),
    );
    expect(&errs, "spec.route.reasons[0]", FieldErrorKind::Invalid);
    let msg = expect(&errs, "spec.route.types[0]", FieldErrorKind::Invalid);
    assert!(msg.contains("Normal or Warning"), "{msg}");
    expect(&errs, "spec.route.namespaces[0]", FieldErrorKind::Invalid);
    expect(&errs, "spec.route.groupWait", FieldErrorKind::Invalid);
    expect(&errs, "spec.route.groupInterval", FieldErrorKind::Invalid);
    expect(&errs, "spec.route.repeatInterval", FieldErrorKind::Invalid);
    let errs = errors("Notifier", &with_route(json!({"groupWait": "2h"})));
    expect(&errs, "spec.route.groupWait", FieldErrorKind::Invalid);
    let errs = errors("Notifier", &with_route(json!({"minSeverity": "fatal"})));
    assert!(errs.to_string().contains("spec.route.minSeverity"), "{errs}");
}
