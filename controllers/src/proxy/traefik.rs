//! Reading what a running Traefik has live, through its API (`/api/rawdata`).
//!
//! # Guarantees
//! - [`Live`] reports only objects of the file provider (`@file`), the ones berth writes.
//! - A request fails after [`TIMEOUT`] rather than hanging a reconcile.
//!
//! # Caveats
//! - The API listens on Traefik's internal entrypoint, which is not published: berth
//!   reaches it on the container's bridge address, so berth must run on the Docker host.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use super::render::REVISION_MARKER;

/// Per-request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// A failed API read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request failed (connection refused while Traefik starts, timeout...).
    #[error("traefik api at {url}: {source}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
}

/// One router as Traefik has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RouterState {
    /// `enabled`, `disabled` or `warning`.
    #[serde(default)]
    pub status: String,
    /// Configuration errors.
    #[serde(default)]
    pub error: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Named {
    #[serde(default)]
    error: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Raw {
    #[serde(default)]
    routers: BTreeMap<String, RouterState>,
    #[serde(default)]
    middlewares: BTreeMap<String, Named>,
    #[serde(default)]
    services: BTreeMap<String, Named>,
}

/// The live state of berth's file-provider configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// Revision markers live, as `(slot, revision)`.
    pub markers: Vec<(String, String)>,
    /// Routers by name (without `@file`).
    pub routers: BTreeMap<String, RouterState>,
    /// Every configuration error Traefik reports, prefixed with the object's name.
    pub errors: Vec<String>,
}

/// Reads the live configuration from the API at `base` (e.g. `http://172.17.0.2:8080`).
pub async fn live(http: &reqwest::Client, base: &str) -> Result<Live, Error> {
    let url = format!("{base}/api/rawdata");
    let request = |source| Error::Request {
        url: url.clone(),
        source,
    };
    let raw: Raw = http
        .get(&url)
        .timeout(TIMEOUT)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(request)?
        .json()
        .await
        .map_err(request)?;
    let mut out = Live::default();
    for (name, router) in raw.routers {
        if let Some(name) = name.strip_suffix("@file") {
            for e in &router.error {
                out.errors.push(format!("router {name}: {e}"));
            }
            out.routers.insert(name.to_owned(), router);
        }
    }
    for (name, mw) in raw.middlewares {
        let Some(name) = name.strip_suffix("@file") else {
            continue;
        };
        if let Some((slot, revision)) = name
            .strip_prefix(REVISION_MARKER)
            .and_then(|rest| rest.split_once('-'))
        {
            out.markers.push((slot.to_owned(), revision.to_owned()));
        }
        for e in &mw.error {
            out.errors.push(format!("middleware {name}: {e}"));
        }
    }
    for (name, svc) in raw.services {
        if let Some(name) = name.strip_suffix("@file") {
            for e in &svc.error {
                out.errors.push(format!("service {name}: {e}"));
            }
        }
    }
    Ok(out)
}
