//! Acting on a Proxy [`Plan`](super::decide::Plan): each step is carried out as given, in
//! order, and the report is written with the clock read here.
//!
//! # Guarantees
//! - Nothing is decided here: the only choice is mechanical, consecutive slot writes
//!   ([`Step::UploadSlot`], [`Step::EmptySlot`]) go out as one archive, their files in
//!   plan order.
//! - The first failing step fails the reconcile; later steps are not attempted.

use berth_crds::{Object, kinds::ProxySpec};

use super::{
    DYNAMIC_DIR, Error, ProxyReconciler,
    container::{self, File},
    decide::{Desired, Report, Slot, Step},
    render,
};
use crate::status;

impl ProxyReconciler {
    /// Carries out `steps` for Proxy `name` (`spec`), wanting `desired`.
    pub(super) async fn act(
        &self,
        name: &str,
        spec: &ProxySpec,
        desired: &Desired,
        steps: &[Step],
    ) -> Result<(), Error> {
        let container = desired.container.name.as_str();
        let mut slots: Vec<(Slot, Option<&str>)> = Vec::new();
        for step in steps {
            if !matches!(step, Step::UploadSlot { .. } | Step::EmptySlot(_)) && !slots.is_empty() {
                self.upload_slots(name, desired, &std::mem::take(&mut slots))
                    .await?;
            }
            match step {
                Step::CreateContainer => {
                    tracing::info!(container, "creating the proxy container");
                    self.create(spec, desired).await?;
                }
                Step::RecreateContainer { why } => {
                    tracing::info!(container, %why, "proxy spec changed: recreating its container");
                    self.docker.remove_container(container).await?;
                    self.create(spec, desired).await?;
                }
                Step::RemoveContainer => {
                    tracing::info!(
                        container,
                        "another proxy serves the server: removing this one's container"
                    );
                    if let Err(e) = self.docker.remove_container(container).await
                        && !e.is_not_found()
                    {
                        return Err(e.into());
                    }
                }
                Step::StartContainer => {
                    tracing::info!(container, "starting the proxy container");
                    self.docker.start_container(container).await?;
                }
                Step::ConnectNetwork(network) => {
                    tracing::info!(
                        proxy = name,
                        network,
                        "attaching the proxy to a destination network"
                    );
                    self.docker.connect_network(network, container, &[]).await?;
                }
                Step::DisconnectNetwork(network) => {
                    tracing::info!(
                        proxy = name,
                        network,
                        "detaching the proxy from a destination network no routed app needs"
                    );
                    self.docker.disconnect_network(network, container).await?;
                }
                Step::UploadSlot { slot, revision } => slots.push((*slot, Some(revision))),
                Step::EmptySlot(slot) => slots.push((*slot, None)),
            }
        }
        if !slots.is_empty() {
            self.upload_slots(name, desired, &slots).await?;
        }
        Ok(())
    }

    /// Creates the container and lays out its files, before it first starts.
    async fn create(&self, spec: &ProxySpec, desired: &Desired) -> Result<(), Error> {
        self.docker.create_container(&desired.container).await?;
        let tar = container::seed_archive(spec)?;
        self.docker.upload(&desired.container.name, "/", tar).await?;
        Ok(())
    }

    /// Writes `slots` (a revision, or empty) in one archive, in order.
    async fn upload_slots(
        &self,
        name: &str,
        desired: &Desired,
        slots: &[(Slot, Option<&str>)],
    ) -> Result<(), Error> {
        let mut contents = Vec::with_capacity(slots.len());
        for (slot, revision) in slots {
            contents.push(match revision {
                Some(revision) => render::to_yaml(&desired.rendered.config, slot.name(), revision)?,
                None => String::new(),
            });
        }
        let files: Vec<File<'_>> = slots
            .iter()
            .zip(&contents)
            .map(|((slot, _), content)| File {
                path: slot.file(),
                content: content.as_bytes(),
            })
            .collect();
        let tar = container::archive(&[], &files)?;
        self.docker
            .upload(&desired.container.name, DYNAMIC_DIR, tar)
            .await?;
        let written: Vec<&str> = slots
            .iter()
            .filter(|(_, r)| r.is_some())
            .map(|(s, _)| s.name())
            .collect();
        let emptied: Vec<&str> = slots
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(s, _)| s.name())
            .collect();
        tracing::info!(
            proxy = name,
            revision = desired.revision,
            slot = if written.is_empty() {
                "-".to_owned()
            } else {
                written.join(",")
            },
            emptied = emptied.join(","),
            routes = desired.rendered.routes,
            "uploaded routing configuration"
        );
        Ok(())
    }

    /// Writes `report` as the status of `obj`, stamping changed conditions with the time.
    pub(super) async fn report(&self, obj: &Object<ProxySpec>, report: Report) -> Result<(), Error> {
        let Report {
            mut status,
            conditions,
        } = report;
        let (now, generation) = (status::now(), obj.generation());
        for c in conditions {
            status::set_condition(
                &mut status.conditions,
                c.type_.as_str(),
                c.status,
                c.reason.as_str(),
                &c.message,
                generation,
                now,
            );
        }
        status::update(&self.api, obj, &status).await?;
        Ok(())
    }
}
