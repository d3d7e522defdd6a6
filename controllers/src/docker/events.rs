//! Docker events berth reacts to, typed, with the actor's labels.
//!
//! # Guarantees
//! - Container events are filtered by the daemon on `dev.berth.managed=true`.
//! - The stream never ends quietly: when the daemon closes it or goes away, the last
//!   item is an error ([`Error::Unreachable`]), and nothing follows.
//!
//! # Caveats
//! - Reconnecting (and re-listing to catch what happened meanwhile) is the caller's
//!   job; pass the last event's time as `since` to resume without a gap.
//! - Without `since`, "now" is this machine's clock: with a remote daemon whose clock
//!   is behind, events of the skew window are missed (those ahead are replayed).
//! - Engine 20.10 puts no labels on network and volume events (only name, type,
//!   driver), so those cannot be filtered by label: they come for every network and
//!   volume, and the caller maps them by name.
//! - A remote daemon that vanishes without closing the TCP connection is only
//!   noticed when the operating system gives up on the connection.

use std::collections::HashMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use futures::stream::{self, BoxStream, StreamExt};

use super::connect::Docker;
use super::container::Health;
use super::error::{Error, Result};
use super::labels::{self, Labels, Owner};

/// What kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// A container.
    Container,
    /// A network.
    Network,
    /// A volume.
    Volume,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A container started.
    Start,
    /// A container's main process exited.
    Die {
        /// Its exit code, if reported.
        exit_code: Option<i64>,
    },
    /// A container was stopped.
    Stop,
    /// A container was sent a signal.
    Kill,
    /// A container's health changed.
    HealthStatus(Health),
    /// A container, network or volume was removed.
    Destroy,
    /// A container was detached from a network.
    Disconnect {
        /// The container's ID.
        container: String,
    },
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Object type.
    pub object: ObjectType,
    /// What happened.
    pub action: Action,
    /// The object's ID (for volumes, their name).
    pub id: String,
    /// The object's name, when reported.
    pub name: Option<String>,
    /// The actor's attributes: a container's labels plus Docker's own `name`,
    /// `image`, `exitCode`...; a network's `name` and `type`.
    pub attributes: Labels,
    /// When it happened, in nanoseconds since the Unix epoch.
    pub time_nanos: i64,
}

impl Event {
    /// The berth object owning the actor, from its labels.
    pub fn owner(&self) -> Option<Owner> {
        Owner::from_labels(&self.attributes)
    }
}

const CONTAINER_ACTIONS: &[&str] = &["start", "die", "stop", "kill", "destroy", "health_status"];
const OTHER_ACTIONS: &[&str] = &["destroy", "disconnect"];

impl Docker {
    /// Streams events from the moment of this call, or from `since` (Unix seconds)
    /// when given: container start/die/stop/kill/destroy/health_status of
    /// berth-managed containers, network destroy/disconnect and volume destroy.
    pub fn events(&self, since: Option<i64>) -> BoxStream<'static, Result<Event>> {
        // The request only goes out when the stream is first polled: anchor it at
        // the call so that what happens in between is not lost.
        let since = match since {
            Some(secs) => secs.to_string(),
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
            }
        };
        let containers = self.raw_events(
            &since,
            HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("event".to_string(), to_vec(CONTAINER_ACTIONS)),
                ("label".to_string(), vec![labels::MANAGED_FILTER.to_string()]),
            ]),
        );
        let others = self.raw_events(
            &since,
            HashMap::from([
                (
                    "type".to_string(),
                    vec!["network".to_string(), "volume".to_string()],
                ),
                ("event".to_string(), to_vec(OTHER_ACTIONS)),
            ]),
        );
        // Either subscription failing ends the merged stream, after its error.
        stream::select(containers, others)
            .scan(false, |failed, item| {
                let out = if *failed {
                    None
                } else {
                    *failed = item.is_err();
                    Some(item)
                };
                futures::future::ready(out)
            })
            .filter_map(|item| {
                futures::future::ready(match item {
                    Ok(message) => parse(message).map(Ok),
                    Err(e) => Some(Err(e)),
                })
            })
            .boxed()
    }

    /// One `/events` subscription whose end is turned into an error.
    fn raw_events(
        &self,
        since: &str,
        filters: HashMap<String, Vec<String>>,
    ) -> BoxStream<'static, Result<EventMessage>> {
        let options = EventsOptionsBuilder::default().filters(&filters).since(since);
        self.count("events");
        let closed = stream::once(async {
            Err(Error::Unreachable {
                message: "event stream closed by the daemon".to_string(),
            })
        });
        self.client
            .events(Some(options.build()))
            .map(|item| item.map_err(Error::from))
            .chain(closed)
            .boxed()
    }
}

fn to_vec(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Types a raw event; `None` (logged) for ones berth does not act on.
fn parse(message: EventMessage) -> Option<Event> {
    let object = match message.typ? {
        EventMessageTypeEnum::CONTAINER => ObjectType::Container,
        EventMessageTypeEnum::NETWORK => ObjectType::Network,
        EventMessageTypeEnum::VOLUME => ObjectType::Volume,
        other => {
            tracing::debug!(?other, "ignoring docker event of unexpected type");
            return None;
        }
    };
    let actor = message.actor.unwrap_or_default();
    let attributes: Labels = labels::from_docker(actor.attributes);
    let raw_action = message.action.unwrap_or_default();
    let (verb, detail) = match raw_action.split_once(':') {
        Some((verb, detail)) => (verb, detail.trim()),
        None => (raw_action.as_str(), ""),
    };
    let action = match verb {
        "start" => Action::Start,
        "die" => Action::Die {
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "stop" => Action::Stop,
        "kill" => Action::Kill,
        "destroy" => Action::Destroy,
        "health_status" => Action::HealthStatus(Health::parse(detail)?),
        "disconnect" => Action::Disconnect {
            container: attributes.get("container").cloned().unwrap_or_default(),
        },
        other => {
            tracing::debug!(action = other, "ignoring docker event");
            return None;
        }
    };
    Some(Event {
        object,
        action,
        id: actor.id.unwrap_or_default(),
        name: attributes.get("name").cloned(),
        attributes,
        time_nanos: message.time_nano.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn message(typ: EventMessageTypeEnum, action: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some("abc".to_string()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            time_nano: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn die_carries_exit_code_and_labels() {
        let e = parse(message(
            EventMessageTypeEnum::CONTAINER,
            "die",
            &[("exitCode", "137"), ("name", "web-0"), ("dev.berth.run", "r1")],
        ))
        .unwrap();
        assert_eq!(e.action, Action::Die { exit_code: Some(137) });
        assert_eq!(e.name.as_deref(), Some("web-0"));
        assert_eq!(e.attributes.get("dev.berth.run").map(String::as_str), Some("r1"));
    }

    #[test]
    fn health_status_detail_is_parsed_and_exec_events_ignored() {
        let e = parse(message(
            EventMessageTypeEnum::CONTAINER,
            "health_status: unhealthy",
            &[],
        ))
        .unwrap();
        assert_eq!(e.action, Action::HealthStatus(Health::Unhealthy));
        assert!(parse(message(EventMessageTypeEnum::CONTAINER, "exec_start: sh", &[])).is_none());
    }
}
