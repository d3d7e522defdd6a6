//! Table tests of the cleanup decision.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::application::plan::APP_HASH;
use crate::docker::label;

fn app_labels(name: &str, uid: &str) -> Labels {
    Owner {
        kind: "Application".into(),
        namespace: "default".into(),
        name: name.into(),
        uid: uid.into(),
    }
    .labels()
}

fn container(id: &str, status: &str, mut labels: Labels, hash: Option<&str>) -> ContainerView {
    if let Some(h) = hash {
        labels.insert(APP_HASH.into(), h.into());
    }
    ContainerView {
        id: id.into(),
        name: format!("c-{id}"),
        status: status.into(),
        labels,
        image_id: format!("sha256:img-{id}"),
    }
}

fn web(settled: bool, hashes: &[&str]) -> BTreeMap<(String, String), AppView> {
    BTreeMap::from([(
        ("default".to_string(), "web".to_string()),
        AppView {
            uid: "u1".into(),
            settled,
            hashes: hashes.iter().map(|h| h.to_string()).collect(),
            images: BTreeSet::from(["web:current".to_string()]),
        },
    )])
}

fn observed(containers: Vec<ContainerView>, apps: BTreeMap<(String, String), AppView>) -> Observed {
    Observed {
        used_percent: 90,
        threshold_percent: 80,
        keep_images: 2,
        apps_synced: true,
        apps,
        containers,
        ..Observed::default()
    }
}

fn removed_containers(plan: &Plan) -> Vec<String> {
    match plan {
        Plan::Below => vec!["<below>".into()],
        Plan::Clean { containers, .. } => containers.iter().map(|c| c.id.clone()).collect(),
    }
}

#[test]
fn which_containers_go() {
    let db = {
        let mut l = app_labels("pg", "u9");
        l.insert(label::KIND.into(), "Database".into());
        l
    };
    let proxy = {
        let mut l = app_labels("proxy", "u8");
        l.insert(label::KIND.into(), "Proxy".into());
        l
    };
    let foreign = Labels::from([("com.example".to_string(), "x".to_string())]);
    // (case, container, apps, synced, removed?)
    type Apps = BTreeMap<(String, String), AppView>;
    let cases: Vec<(&str, ContainerView, Apps, bool, bool)> = vec![
        (
            "stopped past revision",
            container("a", "exited", app_labels("web", "u1"), Some("old")),
            web(true, &["cur"]),
            true,
            true,
        ),
        (
            "dead past revision",
            container("a", "dead", app_labels("web", "u1"), Some("old")),
            web(true, &["cur"]),
            true,
            true,
        ),
        (
            "running past revision",
            container("a", "running", app_labels("web", "u1"), Some("old")),
            web(true, &["cur"]),
            true,
            false,
        ),
        (
            "restarting past revision",
            container("a", "restarting", app_labels("web", "u1"), Some("old")),
            web(true, &["cur"]),
            true,
            false,
        ),
        (
            "created, about to start",
            container("a", "created", app_labels("web", "u1"), Some("old")),
            web(true, &["cur"]),
            true,
            false,
        ),
        (
            "paused",
            container("a", "paused", app_labels("web", "u1"), Some("old")),
            web(true, &["cur"]),
            true,
            false,
        ),
        (
            "stopped current revision (crashed)",
            container("a", "exited", app_labels("web", "u1"), Some("cur")),
            web(true, &["cur"]),
            true,
            false,
        ),
        (
            "stopped old the status still lists",
            container("a", "exited", app_labels("web", "u1"), Some("old")),
            web(true, &["cur", "old"]),
            true,
            false,
        ),
        (
            "app not settled",
            container("a", "exited", app_labels("web", "u1"), Some("old")),
            web(false, &["cur"]),
            true,
            false,
        ),
        (
            "app gone",
            container("a", "exited", app_labels("web", "u1"), Some("cur")),
            BTreeMap::new(),
            true,
            true,
        ),
        (
            "app recreated under another uid",
            container("a", "exited", app_labels("web", "u0"), Some("cur")),
            web(true, &["cur"]),
            true,
            true,
        ),
        (
            "cache not synced",
            container("a", "exited", app_labels("web", "u1"), Some("old")),
            BTreeMap::new(),
            false,
            false,
        ),
        (
            "no app hash",
            container("a", "exited", app_labels("web", "u1"), None),
            web(true, &["cur"]),
            true,
            false,
        ),
        (
            "stopped database",
            container("a", "exited", db, Some("old")),
            BTreeMap::new(),
            true,
            false,
        ),
        (
            "stopped proxy",
            container("a", "exited", proxy, Some("old")),
            BTreeMap::new(),
            true,
            false,
        ),
        (
            "foreign",
            container("a", "exited", foreign, Some("old")),
            BTreeMap::new(),
            true,
            false,
        ),
    ];
    for (case, c, apps, synced, removed) in cases {
        let mut o = observed(vec![c], apps);
        o.apps_synced = synced;
        let want: Vec<String> = if removed { vec!["a".into()] } else { vec![] };
        assert_eq!(removed_containers(&decide(&o)), want, "{case}");
    }
}

#[test]
fn below_the_threshold_nothing_goes() {
    let mut o = observed(
        vec![container("a", "exited", app_labels("web", "u1"), Some("old"))],
        web(true, &["cur"]),
    );
    o.used_percent = 79;
    assert_eq!(decide(&o), Plan::Below);
    o.used_percent = 80;
    assert_eq!(removed_containers(&decide(&o)), vec!["a".to_string()]);
}

fn image(id: &str, created: i64, tags: &[&str], labels: Labels) -> ImageView {
    ImageView {
        id: id.into(),
        repo_tags: tags.iter().map(|t| t.to_string()).collect(),
        labels,
        created,
    }
}

fn removed_images(plan: &Plan) -> Vec<Vec<String>> {
    match plan {
        Plan::Below => vec![],
        Plan::Clean { images, .. } => images.iter().map(|i| i.refs.clone()).collect(),
    }
}

#[test]
fn which_images_go() {
    let l = || app_labels("web", "u1");
    let i1 = image("i1", 1, &["web:c1"], l());
    let i2 = image("i2", 2, &[], l());
    let i3 = image("i3", 3, &["web:c3"], l());
    let i4 = image("i4", 4, &["web:c4", "web:x"], l());
    let foreign = image("f", 0, &["busybox:old"], Labels::new());
    let other_app = image("o1", 0, &["api:c0"], app_labels("api", "u2"));
    let mut db_labels = app_labels("pg", "u9");
    db_labels.insert(label::KIND.into(), "Database".into());
    let db = image("d", 0, &["pg:old"], db_labels);
    type Case<'a> = (
        &'a str,
        usize,
        Vec<ImageView>,
        Vec<ContainerView>,
        Vec<&'a str>,
        Vec<Vec<&'a str>>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "beyond the window of two, oldest first out",
            2,
            vec![i1.clone(), i2.clone(), i3.clone(), i4.clone()],
            vec![],
            vec![],
            vec![vec!["i2"], vec!["web:c1"]],
        ),
        (
            "a window of one keeps only the newest",
            1,
            vec![i4.clone(), i3.clone()],
            vec![],
            vec![],
            vec![vec!["web:c3"]],
        ),
        (
            "an image a remaining container uses stays",
            1,
            vec![i4.clone(), i3.clone()],
            vec![ContainerView {
                image_id: "i3".into(),
                status: "running".into(),
                ..ContainerView::default()
            }],
            vec![],
            vec![],
        ),
        (
            "an image only a removed container used goes with it",
            1,
            vec![i4.clone(), i3.clone()],
            vec![ContainerView {
                id: "a".into(),
                image_id: "i3".into(),
                status: "exited".into(),
                labels: {
                    let mut x = l();
                    x.insert(APP_HASH.into(), "old".into());
                    x
                },
                ..ContainerView::default()
            }],
            vec![],
            vec![vec!["web:c3"]],
        ),
        (
            "an image a foreign container uses stays",
            1,
            vec![i4.clone(), i3.clone()],
            vec![],
            vec!["i3"],
            vec![],
        ),
        (
            "the image the status names stays",
            1,
            vec![i4.clone(), image("i3", 3, &["web:current"], l())],
            vec![],
            vec![],
            vec![],
        ),
        (
            "every tag of an old image goes",
            1,
            vec![image("i5", 5, &[], l()), i4.clone()],
            vec![],
            vec![],
            vec![vec!["web:c4", "web:x"]],
        ),
        (
            "windows are per application; foreign and database images never go",
            1,
            vec![i4.clone(), other_app.clone(), foreign.clone(), db.clone()],
            vec![],
            vec![],
            vec![],
        ),
    ];
    for (case, keep, images, containers, foreign_ids, want) in cases {
        let mut o = observed(containers, web(true, &["cur"]));
        o.keep_images = keep;
        o.images = images;
        o.foreign_image_ids = foreign_ids.into_iter().map(String::from).collect();
        let want: Vec<Vec<String>> = want
            .into_iter()
            .map(|r| r.into_iter().map(String::from).collect())
            .collect();
        assert_eq!(removed_images(&decide(&o)), want, "{case}");
    }
}

#[test]
fn disk_events_fire_once_per_crossing() {
    // (was_high, used, warning, event)
    let cases = [
        (None, 50, 90, None),
        (None, 95, 90, Some(DiskEvent::High)),
        (Some(false), 90, 90, Some(DiskEvent::High)),
        (Some(true), 99, 90, None),
        (Some(true), 89, 90, Some(DiskEvent::Normal)),
        (Some(false), 10, 90, None),
    ];
    for (was, used, warn, want) in cases {
        assert_eq!(disk_event(was, used, warn), want, "{was:?} {used} {warn}");
    }
}
