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
/// every label of `scope`.
pub fn owner_ref(event: &Event, kind: &str, scope: &Labels) -> Option<ObjectRef> {
    if event.object != ObjectType::Container {
        return None;
    }
    if scope.iter().any(|(k, v)| event.attributes.get(k) != Some(v)) {
        return None;
    }
    let owner = event.owner()?;
    (owner.kind == kind).then(|| ObjectRef::new(Some(&owner.namespace), &owner.name))
}

/// Makes (or reuses) a connection to the daemon to follow.
pub type Connect = Box<dyn Fn() -> BoxFuture<'static, Result<Docker, docker::Error>> + Send + Sync>;

/// An endless stream of the owners (of kind `kind`) of the containers Docker reports events
/// for, reconnecting as the module docs say. The follower task starts with the first poll
/// of the stream (in the controller's runtime) and ends when the stream is dropped.
pub fn owner_triggers(
    connect: Connect,
    kind: &'static str,
    scope: Labels,
) -> impl Stream<Item = ObjectRef> + Send {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let follow = async move {
        let mut since: Option<i64> = None;
        let mut backoff = Duration::from_millis(100);
        let mut seen: BTreeSet<ObjectRef> = BTreeSet::new();
        loop {
            let docker = match connect().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, kind, "cannot connect to docker for events; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let mut events = docker.events(since);
            while let Some(item) = events.next().await {
                match item {
                    Ok(event) => {
                        backoff = Duration::from_millis(100);
                        since = Some(event.time_nanos / 1_000_000_000);
                        if let Some(key) = owner_ref(&event, kind, &scope) {
                            seen.insert(key.clone());
                            if tx.send(key).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, kind, "docker event stream failed; reconnecting");
                        break;
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            for key in &seen {
                if tx.send(key.clone()).is_err() {
                    return;
                }
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
}
