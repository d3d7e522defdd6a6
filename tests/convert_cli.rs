//! `berth convert compose`: the built binary on compose files, offline (no server, no
//! Docker); what it prints is what the server would store.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn berth(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        // Never reach a real server or client config: this verb must not need either.
        .env("BERTH_SERVER", "http://127.0.0.1:9")
        .env("BERTH_CONFIG", "/nonexistent/berth-test/config.yaml")
        .env_remove("BERTH_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const WORDPRESS: &str = "# a blog\nservices:\n  wordpress:\n    image: wordpress:6\n    container_name: blog\n    environment:\n      - SERVICE_URL_WORDPRESS_80\n      - WORDPRESS_DB_HOST=mariadb\n      - WORDPRESS_DB_PASSWORD=$SERVICE_PASSWORD_WORDPRESS\n    volumes:\n      - wp-files:/var/www/html\n    depends_on:\n      - mariadb\n  mariadb:\n    image: mariadb:11\n    environment:\n      - MYSQL_ROOT_PASSWORD=$SERVICE_PASSWORD_ROOT\n      - MYSQL_PASSWORD=$SERVICE_PASSWORD_WORDPRESS\n      - MYSQL_DATABASE=wordpress\n    volumes:\n      - db:/var/lib/mysql\n";

#[test]
fn a_compose_file_becomes_a_service_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("My_Blog");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("docker-compose.yml");
    std::fs::write(&file, WORDPRESS).unwrap();

    let o = berth(&["convert", "compose", file.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(doc["apiVersion"], "berth.dev/v1", "{out}");
    assert_eq!(doc["kind"], "Service", "{out}");
    assert_eq!(
        doc["metadata"]["name"], "my-blog",
        "named after the folder: {out}"
    );
    assert!(doc["metadata"].get("namespace").is_none(), "{out}");
    assert_eq!(doc["spec"]["destination"], "default", "{out}");
    assert_eq!(
        doc["spec"]["compose"].as_str(),
        Some(WORDPRESS),
        "byte for byte: {out}"
    );
    let err = stderr(&o);
    assert!(
        err.contains("member: wordpress -> Application my-blog-wordpress"),
        "{err}"
    );
    assert!(
        err.contains("member: mariadb -> Database my-blog-mariadb"),
        "{err}"
    );
    assert!(err.contains("SERVICE_PASSWORD_ROOT"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("notice: services.wordpress.container_name: ")),
        "{err}"
    );
    assert!(!err.contains("refused"), "{err}");

    // The manifest is one berth's schemas accept.
    let docs = berth_crds::apply::manifest::documents([("convert", out.as_str())], Some("p-production"));
    assert!(docs.is_ok(), "{:?}", docs.err());
}

#[test]
fn flags_and_stdin() {
    let o = berth(
        &[
            "convert",
            "compose",
            "-",
            "--name",
            "shop",
            "-n",
            "p-production",
            "--destination",
            "edge",
        ],
        Some("services:\n  web:\n    image: nginx\n"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["metadata"]["name"], "shop");
    assert_eq!(doc["metadata"]["namespace"], "p-production");
    assert_eq!(doc["spec"]["destination"], "edge");
    assert_eq!(doc["spec"]["compose"], "services:\n  web:\n    image: nginx\n");

    let o = berth(
        &["convert", "compose", "-", "--name", "Not_A_Name"],
        Some("services: {}\n"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: --name \"Not_A_Name\""),
        "{}",
        stderr(&o)
    );
    let o = berth(
        &["convert", "compose", "/nonexistent/berth-test/compose.yaml"],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn refusals_are_listed_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.yaml");
    let text = "services:\n  agent:\n    image: portainer/agent\n    privileged: true\n    network_mode: host\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n";
    std::fs::write(&file, text).unwrap();
    let o = berth(&["convert", "compose", file.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for key in [
        "services.agent.privileged",
        "services.agent.network_mode",
        "services.agent.volumes[0]",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with("refused: ") && l.contains(key)),
            "{key} not listed:\n{err}"
        );
    }
    // The manifest is still printed, to be edited.
    let doc: serde_yaml::Value = serde_yaml::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["metadata"]["name"], "agent");
    assert_eq!(doc["spec"]["compose"].as_str(), Some(text));
}
