//! `Proxy`: the Traefik instance that routes domains to workloads on one Server.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::Condition;
use crate::resource::{AGE_COLUMN, PrinterColumn, READY_COLUMN, Resource};
use crate::rules;
use crate::validation::{FieldError, check};

/// The default Traefik image.
pub const DEFAULT_PROXY_IMAGE: &str = "traefik:v3.6";
/// Let's Encrypt's production ACME directory.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// A Traefik proxy on a server (one per server: of several, the oldest serves it and the
/// others stand by, `Ready=False` with reason `ServerHasProxy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxySpec {
    /// The Server's name; immutable.
    pub server: String,
    /// The Traefik image.
    #[serde(default = "default_image")]
    pub image: String,
    /// Host port for HTTP.
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1))]
    pub http_port: u16,
    /// Host port for HTTPS.
    #[serde(default = "default_https_port")]
    #[schemars(range(min = 1))]
    pub https_port: u16,
    /// Automatic certificates; without it HTTPS routes use Traefik's default certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<Acme>,
    /// Whether Traefik's dashboard is enabled (on the internal API entrypoint only).
    #[serde(default)]
    pub dashboard: bool,
    /// Host address the HTTP/HTTPS ports are published on; all addresses when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
}

impl ProxySpec {
    /// The spec of a proxy on `server` with every other field at its default: what a
    /// manifest naming only `spec.server` becomes.
    pub fn for_server(server: &str) -> Self {
        Self {
            server: server.to_owned(),
            image: default_image(),
            http_port: default_http_port(),
            https_port: default_https_port(),
            acme: None,
            dashboard: false,
            listen_address: None,
        }
    }
}

fn default_image() -> String {
    DEFAULT_PROXY_IMAGE.to_string()
}

fn default_http_port() -> u16 {
    80
}

fn default_https_port() -> u16 {
    443
}

/// ACME (Let's Encrypt) settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Acme {
    /// The account e-mail address.
    pub email: String,
    /// The ACME directory URL.
    #[serde(default = "default_ca_server")]
    pub ca_server: String,
    /// PEM certificates Traefik trusts when talking to `caServer` (a private CA such as
    /// Pebble); the system roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
}

fn default_ca_server() -> String {
    LETS_ENCRYPT_PRODUCTION.to_string()
}

/// Observed state of a Proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyStatus {
    /// The `metadata.generation` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The proxy container's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Number of routes currently configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<u32>,
    /// Revision (hash) of the dynamic configuration Traefik has live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Problems with the routing: domains left out, and Traefik's own configuration errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// `<namespace>/<application>` → container names Traefik routes to, written only after
    /// the configuration holding them was verified live in Traefik.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, Vec<String>>,
}

crate::api_words! {
    /// The condition types a Proxy's status carries (`status.conditions[].type`).
    #[derive(Serialize, Deserialize)]
    pub enum ProxyCondition {
        /// The Traefik container runs.
        Running,
        /// The wanted routing configuration is the only one live in Traefik.
        Ready,
    }
}

crate::api_words! {
    /// Why a Proxy condition has its status (`status.conditions[].reason`, a string in the API).
    #[derive(Serialize, Deserialize)]
    pub enum ProxyReason {
        /// `Running`: the state of the Traefik container.
        Container,
        /// `Ready=True`: the wanted revision is the only one live and Traefik reports no error.
        ConfigLive,
        /// `Ready=False`: the wanted revision is live but Traefik reports configuration errors.
        ConfigErrors,
        /// `Ready=False`: the wanted revision is not (the only one) live yet.
        ConfigPending,
        /// `Running=False`, `Ready=False`: another Proxy (older, the message names it)
        /// serves the same server; this one runs no container and binds no port.
        ServerHasProxy,
    }
}

impl Resource for ProxySpec {
    type Status = ProxyStatus;
    const KIND: &'static str = "Proxy";
    const PLURAL: &'static str = "proxies";
    const SINGULAR: &'static str = "proxy";
    const SHORT_NAMES: &'static [&'static str] = &["px"];
    const NAMESPACED: bool = false;
    const IMMUTABLE_FIELDS: &'static [&'static str] = &["spec.server"];
    const PRINTER_COLUMNS: &'static [PrinterColumn] = &[
        PrinterColumn {
            name: "Server",
            type_: "string",
            json_path: ".spec.server",
            description: "the server",
        },
        PrinterColumn {
            name: "Image",
            type_: "string",
            json_path: ".spec.image",
            description: "the Traefik image",
        },
        READY_COLUMN,
        AGE_COLUMN,
    ];

    fn validate(&self, errors: &mut Vec<FieldError>) {
        check(errors, "spec.server", rules::dns1123_label(&self.server));
        check(errors, "spec.image", rules::image_reference(&self.image));
        if self.http_port == self.https_port {
            errors.push(FieldError::invalid(
                "spec.httpsPort",
                "must differ from spec.httpPort",
            ));
        }
        if let Some(address) = &self.listen_address
            && address.parse::<std::net::IpAddr>().is_err()
        {
            errors.push(FieldError::invalid("spec.listenAddress", "must be an IP address"));
        }
        if let Some(acme) = &self.acme {
            check(errors, "spec.acme.email", rules::email(&acme.email));
            check(
                errors,
                "spec.acme.caServer",
                rules::url(&acme.ca_server, &["https", "http"]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_server_is_a_manifest_naming_only_the_server() {
        let parsed: ProxySpec =
            serde_json::from_value(serde_json::json!({"server": "s1"})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ProxySpec::for_server("s1"), parsed);
    }

    #[test]
    fn condition_names_serialize_as_their_status_strings() {
        for c in [ProxyCondition::Running, ProxyCondition::Ready] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        for r in [
            ProxyReason::Container,
            ProxyReason::ConfigLive,
            ProxyReason::ConfigErrors,
            ProxyReason::ConfigPending,
            ProxyReason::ServerHasProxy,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(r.to_string(), r.as_str());
        }
    }
}
