//! The controllers' [`Client`] over the in-process [`Api`]: same admission, validation and
//! status rules as HTTP users, without the network.
//!
//! # Guarantees
//! - Errors keep their meaning: NotFound, AlreadyExists, Conflict and Gone map to the
//!   client's variants of the same name; refusals (invalid, forbidden, bad request) to
//!   `Rejected`; timeouts and an unreachable store to `Unavailable`.

use berth_crds::registry::KindInfo;
use berth_runtime::client::{self, Client, ObjectList, WatchEvent, WatchStream};
use futures::StreamExt;
use serde_json::Value;

use super::{
    error::Error,
    objects::{Api, DeleteOptions, WriteOptions},
    selector::{FieldSelector, LabelSelector},
    watch::WatchParams,
};

/// How long an in-process watch may leave events untaken before it is dropped (and resumed).
const SLOW_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn map_err(e: Error) -> client::Error {
    match e {
        Error::NotFound { kind, name } => client::Error::NotFound { kind, name },
        Error::AlreadyExists { kind, name } => client::Error::AlreadyExists { kind, name },
        Error::Conflict(m) => client::Error::Conflict(m),
        Error::Gone { current, .. } => client::Error::Gone { current },
        e @ (Error::Invalid { .. } | Error::BadRequest(_) | Error::Forbidden(_) | Error::TooLarge { .. }) => {
            client::Error::Rejected(e.to_string())
        }
        e @ (Error::Unavailable(_) | Error::Timeout(_)) => client::Error::Unavailable(e.to_string()),
        e => client::Error::Other(e.to_string()),
    }
}

#[async_trait::async_trait]
impl Client for Api {
    async fn get(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, client::Error> {
        Api::get(self, kind, ns, name).await.map_err(map_err)
    }

    async fn list(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        label_selector: &str,
    ) -> Result<ObjectList, client::Error> {
        let labels =
            LabelSelector::parse(label_selector).map_err(|e| client::Error::Rejected(e.to_string()))?;
        let list = Api::list(self, kind, ns, &labels, &FieldSelector::default())
            .await
            .map_err(map_err)?;
        Ok(ObjectList {
            items: list.items,
            resource_version: list.revision,
        })
    }

    async fn watch(
        &self,
        kind: &'static KindInfo,
        resource_version: i64,
    ) -> Result<WatchStream, client::Error> {
        let params = WatchParams {
            resource_version: Some(resource_version),
            slow_timeout: SLOW_TIMEOUT,
            ..WatchParams::default()
        };
        let events = Api::watch(self, kind, None, params).await.map_err(map_err)?;
        Ok(events
            .filter_map(|ev| async move {
                match ev {
                    Ok(ev) => match ev.kind {
                        "ADDED" => Some(Ok(WatchEvent::Added(ev.object))),
                        "MODIFIED" => Some(Ok(WatchEvent::Modified(ev.object))),
                        "DELETED" => Some(Ok(WatchEvent::Deleted(ev.object))),
                        "BOOKMARK" => ev.revision().map(|rv| Ok(WatchEvent::Bookmark(rv))),
                        other => {
                            tracing::warn!(kind = other, "unexpected watch event type; ignored");
                            None
                        }
                    },
                    Err(e) => Some(Err(map_err(e))),
                }
            })
            .boxed())
    }

    async fn create(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, client::Error> {
        Api::create(self, kind, ns, obj, WriteOptions::default())
            .await
            .map_err(map_err)
    }

    async fn patch(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, client::Error> {
        Api::patch(self, kind, ns, name, patch, WriteOptions::default())
            .await
            .map_err(map_err)
    }

    async fn patch_status(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, client::Error> {
        Api::patch_status(self, kind, ns, name, patch, WriteOptions::default())
            .await
            .map_err(map_err)
    }

    async fn delete(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), client::Error> {
        Api::delete(self, kind, ns, name, &DeleteOptions::default())
            .await
            .map(|_| ())
            .map_err(map_err)
    }

    async fn create_dry_run(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, client::Error> {
        Api::create(self, kind, ns, obj, WriteOptions { dry_run: true })
            .await
            .map_err(map_err)
    }

    async fn patch_dry_run(
        &self,
        kind: &'static KindInfo,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, client::Error> {
        Api::patch(self, kind, ns, name, patch, WriteOptions { dry_run: true })
            .await
            .map_err(map_err)
    }
}
