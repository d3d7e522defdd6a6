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

mod checks;
mod dynamic;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use berth_crds::kinds::application::{Domain, WwwRedirect};
use sha2::{Digest, Sha256};

use checks::{htpasswd_users, regex_escape, safe_container, safe_host, safe_path};
pub use dynamic::{Dynamic, Http, LoadBalancer, Router, Server, Service, Tls};

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

/// `<namespace>/<app>`.
pub fn app_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
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
