//! Traefik's dynamic configuration, the subset berth writes, as serializable types.
//!
//! # Guarantees
//! - Maps are ordered and field order is YAML order, so serializing is deterministic.

use std::collections::BTreeMap;

use serde::Serialize;

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
