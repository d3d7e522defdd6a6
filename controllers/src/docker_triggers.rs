//! Docker container events as controller triggers: each event of a berth container maps to the
//! berth object that owns it, by the container's labels.
//!
//! # Guarantees
//! - Only containers labelled with the owner kind given (and every scope label) trigger; a
//!   foreign container (no berth labels) never does.
//! - The event stream is reconnected with exponential backoff (100 ms doubling to 10 s) when
//!   it ends or the daemon is unreachable, resuming from the last event's time; after a
//!   reconnect every owner seen so far is triggered once more, since events may have been
//!   missed in between.
//!
//! - [`reachability_triggers`] yields its key each time the stream is lost, so a daemon that
//!   goes away is noticed at once, with no polling while it is there.
//!
//! # Caveats
//! - One stream follows one daemon; owners on other servers need their own stream.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{Stream, StreamExt, future::BoxFuture};

use crate::docker::{self, Docker, Event, Labels, ObjectType};
use crate::object::ObjectRef;

/// Longest pause between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The owner (of kind `kind`) an event is about, if it is a container event of one, carrying
/// every label of `scope`. An owner labelled with an empty namespace is cluster-scoped (a
/// Proxy's, say).
pub fn owner_ref(event: &Event, kind: &str, scope: &Labels) -> Option<ObjectRef> {
    if event.object != ObjectType::Container {
        return None;
    }
    if scope.iter().any(|(k, v)| event.attributes.get(k) != Some(v)) {
        return None;
    }
    let owner = event.owner()?;
    let namespace = Some(owner.namespace.as_str()).filter(|ns| !ns.is_empty());
    (owner.kind == kind).then(|| ObjectRef::new(namespace, &owner.name))
}

/// Makes (or reuses) a connection to the daemon to follow.
pub type Connect = Box<dyn Fn() -> BoxFuture<'static, Result<Docker, docker::Error>> + Send + Sync>;

/// What a follower of the event stream saw.
enum Seen<'a> {
    /// An event.
    Event(&'a Event),
    /// The stream failed or the daemon could not be reached: the follower will reconnect.
    Lost,
    /// A pause after a loss is over and the stream is followed again; events may have been
    /// missed in between.
    Resumed,
}

/// An endless stream of the owners (of kind `kind`) of the containers Docker reports events
/// for, reconnecting as the module docs say. The follower task starts with the first poll
/// of the stream (in the controller's runtime) and ends when the stream is dropped.
pub fn owner_triggers(
    connect: Connect,
    kind: &'static str,
    scope: Labels,
) -> impl Stream<Item = ObjectRef> + Send {
    let mut owners: BTreeSet<ObjectRef> = BTreeSet::new();
    follow(connect, kind, move |seen| match seen {
        Seen::Event(event) => match owner_ref(event, kind, &scope) {
            Some(key) => {
                owners.insert(key.clone());
                vec![key]
            }
            None => Vec::new(),
        },
        Seen::Lost => Vec::new(),
        Seen::Resumed => owners.iter().cloned().collect(),
    })
}

/// An endless stream that yields `key` whenever the daemon's event stream is lost (the daemon
/// stopped or became unreachable): the owner of `key` learns of it at once instead of by
/// polling. The stream itself costs no Docker call while it is connected.
pub fn reachability_triggers(connect: Connect, key: ObjectRef) -> impl Stream<Item = ObjectRef> + Send {
    follow(connect, "reachability", move |seen| match seen {
        Seen::Lost => vec![key.clone()],
        Seen::Event(_) | Seen::Resumed => Vec::new(),
    })
}

/// Follows the daemon's event stream for ever, reconnecting with backoff, and sends what
/// `on` makes of each thing seen.
fn follow(
    connect: Connect,
    what: &'static str,
    mut on: impl FnMut(Seen<'_>) -> Vec<ObjectRef> + Send + 'static,
) -> impl Stream<Item = ObjectRef> + Send {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let send = move |tx: &tokio::sync::mpsc::UnboundedSender<ObjectRef>, keys: Vec<ObjectRef>| {
        keys.into_iter().all(|k| tx.send(k).is_ok())
    };
    let follow = async move {
        let mut since: Option<i64> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            match connect().await {
                Ok(docker) => {
                    let mut events = docker.events(since);
                    while let Some(item) = events.next().await {
                        match item {
                            Ok(event) => {
                                backoff = Duration::from_millis(100);
                                since = Some(event.time_nanos / 1_000_000_000);
                                if !send(&tx, on(Seen::Event(&event))) {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, what, "docker event stream failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, what, "cannot connect to docker for events; retrying");
                }
            }
            if tx.is_closed() || !send(&tx, on(Seen::Lost)) {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if !send(&tx, on(Seen::Resumed)) {
                return;
            }
        }
    };
    let rx = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
    futures::stream::once(async move {
        tokio::spawn(follow);
    })
    .filter_map(|()| futures::future::ready(None::<ObjectRef>))
    .chain(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{Action, Owner, label};

    fn event(labels: Labels) -> Event {
        Event {
            object: ObjectType::Container,
            action: Action::Stop,
            id: "x".into(),
            name: Some("c".into()),
            attributes: labels,
            time_nanos: 1,
        }
    }

    #[test]
    fn maps_owned_containers_in_scope_only() {
        let owner = Owner {
            kind: "Application".into(),
            namespace: "ns".into(),
            name: "web".into(),
            uid: "u".into(),
        };
        let mut labels = owner.labels();
        labels.insert(label::RUN.into(), "r1".into());
        let scope = Labels::from([(label::RUN.to_string(), "r1".to_string())]);
        assert_eq!(
            owner_ref(&event(labels.clone()), "Application", &scope),
            Some(ObjectRef::new(Some("ns"), "web"))
        );
        assert_eq!(owner_ref(&event(labels.clone()), "Database", &scope), None);
        let other = Labels::from([(label::RUN.to_string(), "r2".to_string())]);
        assert_eq!(owner_ref(&event(labels), "Application", &other), None);
        assert_eq!(
            owner_ref(&event(Labels::new()), "Application", &Labels::new()),
            None
        );
    }

    #[test]
    fn an_owner_without_namespace_is_cluster_scoped() {
        let owner = Owner {
            kind: "Proxy".into(),
            namespace: String::new(),
            name: "localhost".into(),
            uid: "u".into(),
        };
        assert_eq!(
            owner_ref(&event(owner.labels()), "Proxy", &Labels::new()),
            Some(ObjectRef::cluster("localhost"))
        );
    }
}
