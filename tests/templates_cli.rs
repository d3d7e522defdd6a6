//! `berth templates list|show`: the built binary against the compiled-in catalogue (no
//! server, no Docker).

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        // Never reach a real server or client config: these verbs must not need either.
        .env("BERTH_SERVER", "http://127.0.0.1:9")
        .env_remove("BERTH_TOKEN")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn list_is_a_sorted_table_of_every_template() {
    let o = berth(&["templates", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "CATEGORY", "SLOGAN"]);
    let names: Vec<&str> = lines.map(|l| l.split_whitespace().next().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    for expected in [
        "wordpress",
        "ghost",
        "umami",
        "n8n",
        "uptime-kuma",
        "gitea",
        "vaultwarden",
        "nextcloud",
        "minio",
        "grafana",
        "metabase",
        "plausible",
    ] {
        assert!(names.contains(&expected), "{expected} missing from\n{out}");
    }
    let wordpress = out.lines().find(|l| l.starts_with("wordpress ")).unwrap();
    assert!(wordpress.contains(" cms "), "{wordpress}");
    assert!(wordpress.contains("MariaDB"), "{wordpress}");
}

#[test]
fn show_prints_metadata_parameters_and_the_compose_text() {
    let o = berth(&["templates", "show", "wordpress"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("wordpress: "), "{out}");
    assert!(out.contains("Documentation: https://"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("WORDPRESS_VERSION")
                && l.contains("(default: \"6.6-php8.3-apache\")")),
        "{out}"
    );
    let (_, compose) = out.split_once("\n---\n").unwrap();
    assert!(compose.starts_with("# documentation: "), "{compose}");
    assert!(compose.contains("\nservices:\n"), "{compose}");
    assert!(compose.contains("image: mariadb:11.4"), "{compose}");
}

#[test]
fn an_unknown_name_fails_naming_close_ones() {
    let o = berth(&["templates", "show", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.starts_with("error: no template named \"nope\""), "{err}");
    assert!(err.contains("berth templates list"), "{err}");

    let o = berth(&["templates", "show", "wordpres"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("did you mean: wordpress?"), "{}", stderr(&o));
}
