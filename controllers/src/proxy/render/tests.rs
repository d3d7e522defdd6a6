//! Unit tests of the renderer.

use super::*;
use berth_crds::kinds::common::SecretKeyRef;

fn domain(host: &str) -> Domain {
    Domain {
        host: host.into(),
        https: false,
        ..Domain::default()
    }
}

fn app(name: &str, domains: Vec<Domain>) -> App {
    App {
        namespace: "default".into(),
        name: name.into(),
        auth: domains.iter().map(|_| Auth::None).collect(),
        domains,
        default_port: Some(8080),
        containers: vec!["web-2".into(), "web-1".into()],
    }
}

fn settings() -> Settings {
    Settings {
        acme: true,
        https_port: 443,
    }
}

fn yaml(r: &Rendered) -> serde_yaml::Value {
    serde_yaml::to_value(&r.config).unwrap()
}

#[test]
fn plain_domain_routes_to_ready_containers_on_the_app_port() {
    let r = render(&[app("web", vec![domain("app.example.com")])], &settings());
    let y = yaml(&r);
    assert_eq!(r.routes, 1);
    assert!(r.issues.is_empty());
    let router = &y["http"]["routers"]["default_web_0_http"];
    assert_eq!(router["rule"], "Host(`app.example.com`)");
    assert_eq!(router["entryPoints"][0], "web");
    assert_eq!(router["service"], "default_web_8080");
    let servers = &y["http"]["services"]["default_web_8080"]["loadBalancer"]["servers"];
    assert_eq!(servers[0]["url"], "http://web-1:8080");
    assert_eq!(servers[1]["url"], "http://web-2:8080");
    assert_eq!(r.backends["default/web"], vec!["web-1", "web-2"]);
}

#[test]
fn path_prefix_with_strip_and_gzip() {
    let mut d = domain("app.example.com");
    d.path = Some("/api".into());
    d.strip_prefix = true;
    d.gzip = true;
    d.port = Some(9000);
    let r = render(&[app("web", vec![d])], &settings());
    let y = yaml(&r);
    let router = &y["http"]["routers"]["default_web_0_http"];
    assert_eq!(router["rule"], "Host(`app.example.com`) && PathPrefix(`/api`)");
    assert_eq!(router["service"], "default_web_9000");
    assert_eq!(router["middlewares"][0], "default_web_0_strip");
    assert_eq!(router["middlewares"][1], "default_web_0_gzip");
    let mws = &y["http"]["middlewares"];
    assert_eq!(mws["default_web_0_strip"]["stripPrefix"]["prefixes"][0], "/api");
    assert!(mws["default_web_0_gzip"]["compress"].is_mapping());
}

#[test]
fn path_without_strip_has_no_strip_middleware() {
    let mut d = domain("app.example.com");
    d.path = Some("/api".into());
    let r = render(&[app("web", vec![d])], &settings());
    let y = yaml(&r);
    assert!(y["http"]["middlewares"].is_null());
    assert!(y["http"]["routers"]["default_web_0_http"]["middlewares"].is_null());
}

#[test]
fn basic_auth_from_htpasswd_lines() {
    let mut a = app("web", vec![domain("app.example.com")]);
    a.domains[0].basic_auth_secret_ref = Some(SecretKeyRef {
        name: "auth".into(),
        key: "htpasswd".into(),
    });
    a.auth = vec![Auth::Users(
        "# admins\nalice:$2y$05$abc\n\nbob:$2y$05$def\n".into(),
    )];
    let r = render(&[a], &settings());
    let y = yaml(&r);
    let users = &y["http"]["middlewares"]["default_web_0_auth"]["basicAuth"]["users"];
    assert_eq!(users[0], "alice:$2y$05$abc");
    assert_eq!(users[1], "bob:$2y$05$def");
    assert_eq!(
        y["http"]["routers"]["default_web_0_http"]["middlewares"][0],
        "default_web_0_auth"
    );
}

#[test]
fn unreadable_or_malformed_basic_auth_is_never_served_open() {
    let mut a = app("web", vec![domain("a.example.com"), domain("b.example.com")]);
    a.auth = vec![
        Auth::Unavailable("secret \"auth\" not found".into()),
        Auth::Users("no colon here".into()),
    ];
    let r = render(&[a], &settings());
    assert_eq!(r.routes, 0);
    assert!(r.config.http.routers.is_empty());
    assert_eq!(r.issues.len(), 2);
    assert!(r.issues[0].message.contains("spec.domains[0].basicAuthSecretRef"));
    assert!(r.issues[1].message.contains("not `user:hash`"));
    assert!(r.backends.is_empty());
}

#[test]
fn www_and_apex_redirects() {
    let mut www = domain("example.com");
    www.redirect = WwwRedirect::Www;
    let mut apex = domain("www.example.org");
    apex.redirect = WwwRedirect::Apex;
    let r = render(&[app("web", vec![www, apex])], &settings());
    let y = yaml(&r);
    assert_eq!(
        y["http"]["routers"]["default_web_0_http"]["rule"],
        "Host(`example.com`) || Host(`www.example.com`)"
    );
    let m0 = &y["http"]["middlewares"]["default_web_0_redirect"]["redirectRegex"];
    assert_eq!(m0["regex"], "^(https?)://example\\.com(:[0-9]+)?(/.*)?$");
    assert_eq!(m0["replacement"], "${1}://www.example.com${2}${3}");
    let m1 = &y["http"]["middlewares"]["default_web_1_redirect"]["redirectRegex"];
    assert_eq!(m1["regex"], "^(https?)://www\\.example\\.org(:[0-9]+)?(/.*)?$");
    assert_eq!(m1["replacement"], "${1}://example.org${2}${3}");
}

#[test]
fn https_gets_a_tls_router_and_an_http_redirect() {
    let mut d = domain("app.example.com");
    d.https = true;
    d.gzip = true;
    let r = render(&[app("web", vec![d.clone()])], &settings());
    let y = yaml(&r);
    let https = &y["http"]["routers"]["default_web_0_https"];
    assert_eq!(https["entryPoints"][0], "websecure");
    assert_eq!(https["tls"]["certResolver"], "acme");
    assert_eq!(https["middlewares"][0], "default_web_0_gzip");
    let http = &y["http"]["routers"]["default_web_0_http"];
    assert_eq!(http["middlewares"][0], "default_web_0_to_https");
    let redirect = &y["http"]["middlewares"]["default_web_0_to_https"]["redirectScheme"];
    assert_eq!(redirect["scheme"], "https");
    assert!(redirect["port"].is_null());
    assert_eq!(r.routes, 1);

    let r = render(
        &[app("web", vec![d])],
        &Settings {
            acme: false,
            https_port: 8443,
        },
    );
    let y = yaml(&r);
    assert!(y["http"]["routers"]["default_web_0_https"]["tls"]["certResolver"].is_null());
    assert_eq!(
        y["http"]["middlewares"]["default_web_0_to_https"]["redirectScheme"]["port"],
        "8443"
    );
}

#[test]
fn several_apps_do_not_collide_and_render_deterministically() {
    let mut a = app("a-b", vec![domain("one.example.com")]);
    a.namespace = "x".into();
    let mut b = app("b", vec![domain("two.example.com")]);
    b.namespace = "x-a".into();
    b.containers = vec!["b-1".into()];
    let r1 = render(&[a.clone(), b.clone()], &settings());
    let r2 = render(&[b, a], &settings());
    assert_eq!(r1, r2);
    assert_eq!(revision(&r1.config).unwrap(), revision(&r2.config).unwrap());
    assert_eq!(r1.routes, 2);
    assert!(r1.config.http.routers.contains_key("x_a-b_0_http"));
    assert!(r1.config.http.routers.contains_key("x-a_b_0_http"));
    assert_eq!(r1.backends["x-a/b"], vec!["b-1"]);
    assert_eq!(r1.backends.len(), 2);
}

#[test]
fn rule_and_yaml_metacharacters_are_refused() {
    let mut evil_path = domain("ok.example.com");
    evil_path.path = Some("/x`) || Host(`evil".into());
    let domains = vec![
        domain("a`) || PathPrefix(`/"),
        domain("B.example.com"),
        domain("x.example.com\nhttp: {}"),
        evil_path,
    ];
    let mut a = app("web", domains);
    a.containers = vec!["ok-1".into(), "bad:1/x".into()];
    let r = render(&[a], &settings());
    assert_eq!(r.routes, 0);
    assert!(r.config.http.routers.is_empty());
    assert_eq!(r.issues.len(), 5, "{:?}", r.issues);
    let text = serde_yaml::to_string(&r.config).unwrap();
    assert!(!text.contains("evil"));
}

#[test]
fn missing_port_is_an_issue_naming_the_field() {
    let mut a = app("web", vec![domain("app.example.com")]);
    a.default_port = None;
    let r = render(&[a], &settings());
    assert_eq!(r.routes, 0);
    assert_eq!(
        r.issues[0].message,
        "spec.domains[0].port: no port given and the app has no TCP port"
    );
}

#[test]
fn no_ready_container_keeps_the_route_with_no_servers() {
    let mut a = app("web", vec![domain("app.example.com")]);
    a.containers.clear();
    let r = render(&[a], &settings());
    assert_eq!(r.routes, 1);
    assert!(
        r.config.http.services["default_web_8080"]
            .load_balancer
            .servers
            .is_empty()
    );
    assert_eq!(r.backends["default/web"], Vec::<String>::new());
}

#[test]
fn the_marker_comes_last_and_names_slot_and_revision() {
    let r = render(&[app("web", vec![domain("app.example.com")])], &settings());
    let rev = revision(&r.config).unwrap();
    let text = to_yaml(&r.config, "a", &rev).unwrap();
    let marker_at = text.find(&marker("a", &rev)).unwrap();
    assert!(text.find("routers:").unwrap() < marker_at);
    assert!(text.find("services:").unwrap() < marker_at);
    assert_eq!(
        revision(&r.config).unwrap(),
        rev,
        "the marker does not change the revision"
    );
    // An empty configuration is still a valid file.
    let empty = to_yaml(&Dynamic::default(), "b", "0").unwrap();
    assert!(empty.contains("zz-berth-revision-b-0"));
}
