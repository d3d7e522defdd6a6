//! Coolify's `SERVICE_URL_*` / `SERVICE_FQDN_*` values, and the routes they declare.
//!
//! # Guarantees
//! - A declaration (an environment key `SERVICE_URL_<IDENT>[_<PORT>]` or
//!   `SERVICE_FQDN_…` of a compose service) routes the declaring member: its host is the
//!   member's first `spec.domains` entry, else `<ident>-<service>-<namespace>.<wildcard>`.
//! - All four values of an identifier (`SERVICE_URL_X`, `SERVICE_FQDN_X`, and with a port
//!   `SERVICE_URL_X_P`, `SERVICE_FQDN_X_P`) come from one host, so they never drift apart
//!   (Coolify issues #8912, #9877).
//! - `SERVICE_FQDN_*` carries no scheme; `SERVICE_URL_*` does (Coolify ≥ 4.0.0-beta.420.7).
//!
//! # Caveats
//! - As in Coolify, the `_<PORT>` values carry the container port (`http://host:3000`);
//!   the public URL is the portless one.
//! - A reference to an identifier that no member declares gets a value but no route.

use std::collections::BTreeMap;

use berth_crds::kinds::application::Domain;

use super::{Error, Input};
use crate::magic::{self, Declaration, Magic};

/// The wildcard domain when `spec.wildcardDomain` is not set.
pub const DEFAULT_WILDCARD: &str = "http://127.0.0.1.sslip.io";

/// One identifier's host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    scheme: &'static str,
    host: String,
    path: String,
}

/// One route of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    member: String,
    site: Site,
    port: Option<u16>,
}

/// The URL values and routes of one Service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Urls {
    /// By identifier (upper-case, as in the variable name).
    sites: BTreeMap<String, Site>,
    routes: Vec<Route>,
    wildcard_scheme: &'static str,
    wildcard_host: String,
    suffix: String,
}

impl Urls {
    /// Reads the declarations and `spec.domains`.
    pub(crate) fn new(
        input: &Input<'_>,
        declarations: &[Declaration],
        services: &[String],
        default_port: Option<u16>,
    ) -> Result<Urls, Error> {
        let spec = input.spec;
        for (index, d) in spec.domains.iter().enumerate() {
            if !services.contains(&d.service) {
                return Err(Error::UnknownDomainService {
                    index,
                    service: d.service.clone(),
                });
            }
        }
        let wildcard = spec.wildcard_domain.as_deref().unwrap_or(DEFAULT_WILDCARD);
        let (wildcard_scheme, wildcard_host) = split_scheme(wildcard);
        let mut urls = Urls {
            wildcard_scheme,
            wildcard_host: wildcard_host.to_owned(),
            suffix: format!("{}-{}", input.name, input.namespace),
            ..Urls::default()
        };
        for d in declarations {
            let (ident, port) = match magic::classify(&d.name) {
                Some(Magic::Url { ident, port } | Magic::Fqdn { ident, port }) => (ident, port),
                _ => continue,
            };
            let path = d
                .value
                .as_deref()
                .filter(|v| v.starts_with('/'))
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned();
            let site = match spec.domains.iter().find(|x| x.service == d.service) {
                Some(domain) => Site {
                    scheme: if domain.https { "https" } else { "http" },
                    host: domain.host.clone(),
                    path,
                },
                None => Site {
                    path,
                    ..urls.generated(&ident)
                },
            };
            urls.sites.entry(ident.clone()).or_insert_with(|| site.clone());
            let route = Route {
                member: d.service.clone(),
                site,
                port: port.or(default_port),
            };
            if !urls
                .routes
                .iter()
                .any(|r| r.member == route.member && r.site == route.site)
            {
                urls.routes.push(route);
            } else if let Some(r) = urls
                .routes
                .iter_mut()
                .find(|r| r.member == route.member && r.site == route.site && r.port.is_none())
            {
                r.port = route.port;
            }
        }
        for d in &spec.domains {
            if !urls.routes.iter().any(|r| r.member == d.service) {
                urls.routes.push(Route {
                    member: d.service.clone(),
                    site: Site {
                        scheme: if d.https { "https" } else { "http" },
                        host: d.host.clone(),
                        path: String::new(),
                    },
                    port: default_port,
                });
            }
        }
        Ok(urls)
    }

    fn generated(&self, ident: &str) -> Site {
        Site {
            scheme: self.wildcard_scheme,
            host: format!(
                "{}.{}",
                host_label(&format!(
                    "{}-{}",
                    ident.to_ascii_lowercase().replace('_', "-"),
                    self.suffix
                )),
                self.wildcard_host
            ),
            path: String::new(),
        }
    }

    /// The value of `name` if it is a URL or FQDN variable.
    pub(crate) fn value(&self, name: &str) -> Option<String> {
        let (ident, port, with_scheme) = match magic::classify(name)? {
            Magic::Url { ident, port } => (ident, port, true),
            Magic::Fqdn { ident, port } => (ident, port, false),
            _ => return None,
        };
        let site = self
            .sites
            .get(&ident)
            .cloned()
            .unwrap_or_else(|| self.generated(&ident));
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        Some(if with_scheme {
            format!("{}://{}{port}{}", site.scheme, site.host, site.path)
        } else {
            format!("{}{port}{}", site.host, site.path)
        })
    }

    /// The routes of `member`: domains for its Application, given the ports it listens on
    /// (a route without a declared port goes to the first).
    pub(crate) fn domains(&self, member: &str, first_port: Option<u16>) -> Vec<Domain> {
        self.routes
            .iter()
            .filter(|r| r.member == member)
            .map(|r| Domain {
                host: r.site.host.clone(),
                path: (!r.site.path.is_empty()).then(|| r.site.path.clone()),
                port: r.port.or(first_port),
                https: r.site.scheme == "https",
                ..Domain::default()
            })
            .collect()
    }

    /// The container ports `member`'s routes need.
    pub(crate) fn ports(&self, member: &str) -> Vec<u16> {
        self.routes
            .iter()
            .filter(|r| r.member == member)
            .filter_map(|r| r.port)
            .collect()
    }

    /// The public URLs of `member`.
    pub(crate) fn urls(&self, member: &str) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| r.member == member)
            .map(|r| format!("{}://{}{}", r.site.scheme, r.site.host, r.site.path))
            .collect()
    }
}

/// `label` if it is a DNS label (at most 63 characters), else its first 54 characters and
/// 8 hex digits of its FNV-1a hash, so that distinct long names stay distinct and stable.
pub(crate) fn host_label(label: &str) -> String {
    const MAX: usize = 63;
    if label.len() <= MAX {
        return label.to_owned();
    }
    let hash = label.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let head: String = label.chars().take(MAX - 9).collect();
    format!("{}-{hash:08x}", head.trim_end_matches('-'))
}

fn split_scheme(w: &str) -> (&'static str, &str) {
    if let Some(h) = w.strip_prefix("https://") {
        ("https", h.trim_end_matches('/'))
    } else if let Some(h) = w.strip_prefix("http://") {
        ("http", h.trim_end_matches('/'))
    } else {
        ("https", w.trim_end_matches('/'))
    }
}
