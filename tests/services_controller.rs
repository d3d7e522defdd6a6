//! End-to-end test of the Service controller's ownership rules against the real daemon:
//! children carry the Service's ownerReference and label, a name taken by an object the
//! Service does not own is a member `Conflict` and is never touched, relative binds get
//! their directory under `--host-root`, and deleting the Service removes its children and
//! its Destination, leaving the foreign object alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{images, server::OutputExt, world::World};
use serde_json::Value;

/// How long the small Service may take to converge.
const CONVERGE: Duration = Duration::from_secs(90);

fn idle(image: &str) -> String {
    format!(
        "    image: {image}\n    entrypoint: [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; \
         while true; do sleep 1 & wait $$!; done\"]\n"
    )
}

fn member<'a>(svc: &'a Value, name: &str) -> Option<&'a Value> {
    svc.pointer("/status/services")?
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

#[test]
fn a_service_owns_its_children_and_leaves_foreign_objects_alone() {
    let root = tempfile::tempdir().unwrap();
    let w = World::start(
        "svcctl",
        &[
            "--app-min-ready",
            "1s",
            "--host-root",
            root.path().to_str().unwrap(),
        ],
    );
    let image = w.rt.block_on(images::busybox_httpd(&w.run.docker));
    let ns = w.ns.clone();
    // Someone else's Application, named like the Service's member `taken`.
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: tiny-taken\n  namespace: {ns}\n\
         spec:\n  destination: default\n  source:\n    image: {image}\n  env:\n    - name: OWNER\n      value: me\n"
    ));
    let compose = format!(
        "services:\n  web:\n{}    volumes:\n      - ./data:/data\n  taken:\n{}",
        idle(&image),
        idle(&image)
    );
    let compose: String = compose.lines().map(|l| format!("    {l}\n")).collect();
    w.apply(&format!(
        "apiVersion: berth.dev/v1\nkind: Service\nmetadata:\n  name: tiny\n  namespace: {ns}\n\
         spec:\n  destination: default\n  compose: |\n{compose}"
    ));

    let svc = w.until("web ready, taken in conflict", CONVERGE, || {
        let svc = w.try_get("service", "tiny")?;
        let web = member(&svc, "web")?;
        let taken = member(&svc, "taken")?;
        let conflict = taken["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Conflict"));
        (web["ready"] == true && conflict).then_some(svc)
    });
    assert_eq!(svc["status"]["members"], "1/2", "{svc:#}");
    let ready = svc["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("MembersNotReady"))
    );

    let web = w.get("application", "tiny-web");
    let owner = &web["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str()),
        (Some("Service"), Some("tiny"))
    );
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["uid"], svc["metadata"]["uid"]);
    assert_eq!(web["metadata"]["labels"]["berth.dev/service"], "tiny");
    assert_eq!(web["spec"]["destination"], format!("svc-{ns}-tiny"));
    let data = root.path().join("services").join(&ns).join("tiny").join("data");
    assert!(data.is_dir(), "{} was not created", data.display());

    let foreign = w.get("application", "tiny-taken");
    assert!(
        foreign["metadata"].get("ownerReferences").is_none(),
        "{foreign:#}"
    );
    assert_eq!(
        foreign["spec"]["env"][0]["value"], "me",
        "the foreign spec is untouched"
    );

    let out = w.s.run(&[
        "delete",
        "service",
        "tiny",
        "-n",
        &ns,
        "--wait",
        "--timeout",
        "120s",
    ]);
    assert!(out.status.success(), "{}", out.err());
    assert!(
        w.try_get("application", "tiny-web").is_none(),
        "the child went first"
    );
    let dest = format!("svc-{ns}-tiny");
    w.until("the Service's Destination gone", CONVERGE, || {
        (!w.s.run(&["get", "destination", &dest]).status.success()).then_some(())
    });
    let foreign_after = w.get("application", "tiny-taken");
    assert_eq!(
        foreign_after["metadata"]["uid"], foreign["metadata"]["uid"],
        "the foreign app stays"
    );
    assert!(data.is_dir(), "bind data is the user's: kept");
}
