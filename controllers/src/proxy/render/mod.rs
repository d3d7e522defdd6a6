//! Rendering Traefik's dynamic configuration (file provider) from Applications' domains.
//!
//! A pure function: [`render`] takes what the reconciler read (apps, their domains, ready
//! containers, resolved basic-auth users) and returns the configuration, the number of
//! routes, the backends it routes to and the problems it skipped.
//!
//! # Guarantees
//! - Deterministic: the same input gives byte-identical YAML (maps are ordered), so
//!   [`revision`] is a stable hash and an unchanged input causes no upload.
//! - Defensive: hosts, paths and htpasswd lines that could break out of a Traefik rule or
//!   the YAML are refused per domain (listed in [`Rendered::issues`]) instead of rendered;
//!   values are quoted by the YAML serializer and rule arguments are backtick-quoted only
//!   after the check.
//! - A domain whose basic-auth users cannot be read is not routed at all (never served
//!   unprotected).
//! - Object names are `<namespace>_<app>_<index>`: `_` cannot occur in namespace or app
//!   names, so two apps never share a name.
//!
//! # Caveats
//! - An app with no ready container keeps its routers, with an empty server list (Traefik
//!   answers 503), so certificates keep renewing.

use std::collections::BTreeMap;

use berth_crds::kinds::application::{Domain, WwwRedirect};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The ACME certificate resolver's name in the static configuration.
pub const CERT_RESOLVER: &str = "acme";
/// The plain HTTP entrypoint.
pub const WEB: &str = "web";
/// The HTTPS entrypoint.
pub const WEBSECURE: &str = "websecure";
/// Name prefix of the revision marker middleware (see [`to_yaml`]).
pub const REVISION_MARKER: &str = "zz-berth-revision-";

/// How a domain's basic auth was resolved by the reconciler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No basic auth.
    None,
    /// htpasswd content (`user:hash` lines).
    Users(String),
    /// The Secret could not be read; the domain is not routed.
    Unavailable(String),
}

/// One Application as the renderer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Domains, in spec order.
    pub domains: Vec<Domain>,
    /// Basic auth per domain (same order as `domains`).
    pub auth: Vec<Auth>,
    /// The first TCP port of the spec, used when a domain names none.
    pub default_port: Option<u16>,
    /// Names of the ready containers (Docker DNS names on the destination network).
    pub containers: Vec<String>,
}

/// Proxy-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Whether the ACME resolver is configured (else HTTPS uses Traefik's default cert).
    pub acme: bool,
    /// The public HTTPS port (for http→https redirects when it is not 443).
    pub https_port: u16,
}

/// A problem that kept one domain or app out of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Issue {
    /// `<namespace>/<app>`.
    pub app: String,
    /// What is wrong, naming the field.
    pub message: String,
}

/// The renderer's output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// The dynamic configuration.
    pub config: Dynamic,
    /// Number of routed domains.
    pub routes: u32,
    /// `<namespace>/<app>` → container names routed to.
    pub backends: BTreeMap<String, Vec<String>>,
    /// Domains or apps left out, and why.
    pub issues: Vec<Issue>,
}

/// Traefik's dynamic configuration (the subset berth writes).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dynamic {
    /// The HTTP section.
    pub http: Http,
}

/// The `http` section. Field order is the YAML order: the revision marker (a middleware)
/// comes last, so a reader that sees it has seen the whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Http {
    /// Routers by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub routers: BTreeMap<String, Router>,
    /// Services by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, Service>,
    /// Middlewares by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub middlewares: BTreeMap<String, serde_json::Value>,
}

/// A router.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Router {
    /// Entrypoints it listens on.
    pub entry_points: Vec<String>,
    /// The matching rule.
    pub rule: String,
    /// The service it forwards to.
    pub service: String,
    /// Middlewares, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<String>,
    /// TLS settings (HTTPS routers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// A router's TLS settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// The ACME resolver, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_resolver: Option<String>,
}

/// A load-balanced service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The load balancer.
    pub load_balancer: LoadBalancer,
}

/// A service's servers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadBalancer {
    /// Backend servers.
    pub servers: Vec<Server>,
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    /// `http://<container>:<port>`.
    pub url: String,
}

/// `<namespace>/<app>`.
pub fn app_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Whether `host` is a plain lowercase DNS name (what admission allows), safe in a rule.
fn safe_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// Whether `path` is an absolute URL path without rule or YAML metacharacters.
fn safe_path(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~' | b'%'))
}

/// Whether `name` is a Docker container name safe in a URL host.
fn safe_container(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Escapes regex metacharacters (hosts are checked, this is belt and braces).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Parses htpasswd content into `user:hash` lines; refuses lines that are not.
fn htpasswd_users(content: &str) -> Result<Vec<String>, String> {
    let users: Vec<String> = content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if users.is_empty() {
        return Err("holds no htpasswd line".to_owned());
    }
    for line in &users {
        match line.split_once(':') {
            Some((user, hash)) if !user.is_empty() && !hash.is_empty() && !user.contains(' ') => {}
            _ => return Err("holds a line that is not `user:hash`".to_owned()),
        }
    }
    Ok(users)
}

/// Renders the dynamic configuration for `apps`.
pub fn render(apps: &[App], settings: &Settings) -> Rendered {
    let mut out = Rendered::default();
    let mut apps: Vec<&App> = apps.iter().collect();
    apps.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for app in apps {
        render_app(app, settings, &mut out);
    }
    out
}

fn render_app(app: &App, settings: &Settings, out: &mut Rendered) {
    let key = app_key(&app.namespace, &app.name);
    let base = format!("{}_{}", app.namespace, app.name);
    let issue = |out: &mut Rendered, message: String| {
        out.issues.push(Issue {
            app: key.clone(),
            message,
        })
    };
    let mut containers: Vec<String> = Vec::new();
    for c in &app.containers {
        if safe_container(c) {
            containers.push(c.clone());
        } else {
            issue(out, format!("status.containers: {c:?} is not a container name"));
        }
    }
    containers.sort();
    containers.dedup();
    let mut routed_any = false;
    for (i, domain) in app.domains.iter().enumerate() {
        let field = format!("spec.domains[{i}]");
        let Some(port) = domain.port.or(app.default_port) else {
            issue(
                out,
                format!("{field}.port: no port given and the app has no TCP port"),
            );
            continue;
        };
        if !safe_host(&domain.host) {
            issue(
                out,
                format!("{field}.host: {:?} is not a plain DNS name", domain.host),
            );
            continue;
        }
        if let Some(path) = &domain.path
            && !safe_path(path)
        {
            issue(out, format!("{field}.path: {path:?} is not a plain URL path"));
            continue;
        }
        let users = match app.auth.get(i).unwrap_or(&Auth::None) {
            Auth::None => None,
            Auth::Users(content) => match htpasswd_users(content) {
                Ok(users) => Some(users),
                Err(why) => {
                    issue(out, format!("{field}.basicAuthSecretRef: the secret key {why}"));
                    continue;
                }
            },
            Auth::Unavailable(why) => {
                issue(out, format!("{field}.basicAuthSecretRef: {why}"));
                continue;
            }
        };
        let name = format!("{base}_{i}");
        let service = format!("{base}_{port}");
        out.config.http.services.insert(
            service.clone(),
            Service {
                load_balancer: LoadBalancer {
                    servers: containers
                        .iter()
                        .map(|c| Server {
                            url: format!("http://{c}:{port}"),
                        })
                        .collect(),
                },
            },
        );
        let middlewares = &mut out.config.http.middlewares;
        let mut chain = Vec::new();
        // Host matching and the www/apex redirect.
        let apex = domain.host.strip_prefix("www.").unwrap_or(&domain.host);
        let hosts = match domain.redirect {
            WwwRedirect::None => vec![domain.host.clone()],
            WwwRedirect::Www | WwwRedirect::Apex => vec![apex.to_owned(), format!("www.{apex}")],
        };
        let redirect = match domain.redirect {
            WwwRedirect::None => None,
            WwwRedirect::Www => Some((apex.to_owned(), format!("www.{apex}"))),
            WwwRedirect::Apex => Some((format!("www.{apex}"), apex.to_owned())),
        };
        if let Some((from, to)) = redirect {
            let mw = format!("{name}_redirect");
            middlewares.insert(
                mw.clone(),
                serde_json::json!({"redirectRegex": {
                    "regex": format!("^(https?)://{}(:[0-9]+)?(/.*)?$", regex_escape(&from)),
                    "replacement": format!("${{1}}://{to}${{2}}${{3}}"),
                    "permanent": true,
                }}),
            );
            chain.push(mw);
        }
        if let Some(users) = users {
            let mw = format!("{name}_auth");
            middlewares.insert(mw.clone(), serde_json::json!({"basicAuth": {"users": users}}));
            chain.push(mw);
        }
        if let Some(path) = domain.path.as_ref().filter(|_| domain.strip_prefix) {
            let mw = format!("{name}_strip");
            middlewares.insert(
                mw.clone(),
                serde_json::json!({"stripPrefix": {"prefixes": [path]}}),
            );
            chain.push(mw);
        }
        if domain.gzip {
            let mw = format!("{name}_gzip");
            middlewares.insert(mw.clone(), serde_json::json!({"compress": {}}));
            chain.push(mw);
        }
        let host_rule = hosts
            .iter()
            .map(|h| format!("Host(`{h}`)"))
            .collect::<Vec<_>>()
            .join(" || ");
        let rule = match &domain.path {
            Some(path) if hosts.len() > 1 => format!("({host_rule}) && PathPrefix(`{path}`)"),
            Some(path) => format!("{host_rule} && PathPrefix(`{path}`)"),
            None => host_rule,
        };
        let routers = &mut out.config.http.routers;
        if domain.https {
            let mw = format!("{name}_to_https");
            let mut redirect = serde_json::json!({"scheme": "https", "permanent": true});
            if settings.https_port != 443 {
                redirect["port"] = serde_json::json!(settings.https_port.to_string());
            }
            middlewares.insert(mw.clone(), serde_json::json!({ "redirectScheme": redirect }));
            routers.insert(
                format!("{name}_http"),
                Router {
                    entry_points: vec![WEB.to_owned()],
                    rule: rule.clone(),
                    service: service.clone(),
                    middlewares: vec![mw],
                    tls: None,
                },
            );
            routers.insert(
                format!("{name}_https"),
                Router {
                    entry_points: vec![WEBSECURE.to_owned()],
                    rule,
                    service,
                    middlewares: chain,
                    tls: Some(Tls {
                        cert_resolver: settings.acme.then(|| CERT_RESOLVER.to_owned()),
                    }),
                },
            );
        } else {
            routers.insert(
                format!("{name}_http"),
                Router {
                    entry_points: vec![WEB.to_owned()],
                    rule,
                    service,
                    middlewares: chain,
                    tls: None,
                },
            );
        }
        out.routes += 1;
        routed_any = true;
    }
    if routed_any {
        out.backends.insert(key, containers);
    }
}

/// The revision of a configuration: a hash of its YAML without the marker.
pub fn revision(config: &Dynamic) -> Result<String, serde_yaml::Error> {
    let yaml = serde_yaml::to_string(config)?;
    let digest = Sha256::digest(yaml.as_bytes());
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The marker middleware's name for `revision` written to `slot`.
pub fn marker(slot: &str, revision: &str) -> String {
    format!("{REVISION_MARKER}{slot}-{revision}")
}

/// The file content for `slot`: the configuration plus a no-op marker middleware naming
/// the slot and revision (last in the file), which Traefik's API then shows as applied.
pub fn to_yaml(config: &Dynamic, slot: &str, revision: &str) -> Result<String, serde_yaml::Error> {
    let mut config = config.clone();
    config.http.middlewares.insert(
        marker(slot, revision),
        serde_json::json!({"headers": {"customResponseHeaders": {"X-Berth-Revision": revision}}}),
    );
    serde_yaml::to_string(&config)
}

#[cfg(test)]
mod tests {
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
}
