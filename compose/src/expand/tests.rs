use std::collections::BTreeMap;
use std::path::Path;

use berth_crds::kinds::service::ServiceDomain;
use berth_crds::kinds::{DeletionPolicy, ServiceSpec};

use super::*;

const WORDPRESS: &str = r#"
services:
  wordpress:
    image: wordpress:6
    environment:
      - SERVICE_URL_WORDPRESS_80
      - WORDPRESS_DB_HOST=mariadb
      - WORDPRESS_DB_USER=$SERVICE_USER_WORDPRESS
      - WORDPRESS_DB_PASSWORD=$SERVICE_PASSWORD_WORDPRESS
      - WORDPRESS_DB_NAME=wordpress
    volumes:
      - wordpress-files:/var/www/html
    depends_on:
      mariadb:
        condition: service_healthy
  mariadb:
    image: mariadb:11
    environment:
      - MYSQL_ROOT_PASSWORD=$SERVICE_PASSWORD_ROOT
      - MYSQL_DATABASE=wordpress
      - MYSQL_USER=$SERVICE_USER_WORDPRESS
      - MYSQL_PASSWORD=$SERVICE_PASSWORD_WORDPRESS
    volumes:
      - mariadb-data:/var/lib/mysql
    healthcheck:
      test: ["CMD", "healthcheck.sh", "--connect"]
      interval: 5s
"#;

fn spec(compose: &str) -> ServiceSpec {
    ServiceSpec {
        compose: Some(compose.to_owned()),
        destination: "local".into(),
        ..ServiceSpec::default()
    }
}

fn generated(spec: &ServiceSpec) -> BTreeMap<String, String> {
    needed(spec)
        .unwrap()
        .into_iter()
        .map(|(name, m)| (name, magic::generate(&m).unwrap()))
        .collect()
}

fn run(spec: &ServiceSpec, generated: &BTreeMap<String, String>) -> Result<Expansion, Error> {
    expand(Input {
        namespace: "default",
        name: "blog",
        spec,
        generated,
        host_root: Some(Path::new("/srv/berth")),
    })
}

fn app(e: &Expansion, service: &str) -> ApplicationSpec {
    match &e.members.iter().find(|m| m.service == service).unwrap().child {
        Child::Application(a) => (**a).clone(),
        other => panic!("{service} is a {}", other.kind()),
    }
}

fn env<'a>(
    vars: &'a [berth_crds::kinds::application::EnvVar],
    name: &str,
) -> &'a berth_crds::kinds::application::EnvVar {
    vars.iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn needed_lists_each_generated_variable_once_and_skips_given_and_url_ones() {
    let mut s = spec(WORDPRESS);
    let names: Vec<String> = needed(&s).unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "SERVICE_USER_WORDPRESS",
            "SERVICE_PASSWORD_WORDPRESS",
            "SERVICE_PASSWORD_ROOT"
        ]
    );
    s.variables.insert("SERVICE_PASSWORD_ROOT".into(), "given".into());
    let names: Vec<String> = needed(&s).unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["SERVICE_USER_WORDPRESS", "SERVICE_PASSWORD_WORDPRESS"]);
}

#[test]
fn wordpress_expands_to_an_application_and_a_database_sharing_one_password() {
    let s = spec(WORDPRESS);
    let g = generated(&s);
    let e = run(&s, &g).unwrap();
    assert_eq!(
        e.members
            .iter()
            .map(|m| (m.service.as_str(), m.object.as_str(), m.child.kind()))
            .collect::<Vec<_>>(),
        [
            ("wordpress", "blog-wordpress", "Application"),
            ("mariadb", "blog-mariadb", "Database")
        ]
    );
    let wp = app(&e, "wordpress");
    assert_eq!(wp.destination, "svc-default-blog");
    assert_eq!(wp.network_aliases, ["wordpress"]);
    assert_eq!(
        wp.volumes[0].name.as_deref(),
        Some("default-blog_wordpress-files")
    );
    assert_eq!(wp.domains.len(), 1);
    assert_eq!(wp.domains[0].host, "wordpress-blog-default.127.0.0.1.sslip.io");
    assert_eq!(wp.domains[0].port, Some(80));
    assert!(!wp.domains[0].https, "the default wildcard is http://");
    assert_eq!(
        env(&wp.env, "SERVICE_URL_WORDPRESS_80").value.as_deref(),
        Some("http://wordpress-blog-default.127.0.0.1.sslip.io:80")
    );
    assert_eq!(
        env(&wp.env, "WORDPRESS_DB_HOST").value.as_deref(),
        Some("mariadb")
    );
    // A generated value is never in a spec: it is a reference to the generated Secret.
    let pw = env(&wp.env, "WORDPRESS_DB_PASSWORD");
    assert_eq!(pw.value, None);
    let r = pw.secret_key_ref.as_ref().unwrap();
    assert_eq!(
        (r.name.as_str(), r.key.as_str()),
        ("blog-generated", "wordpress.WORDPRESS_DB_PASSWORD")
    );
    assert_eq!(e.secret_env[&r.key], g["SERVICE_PASSWORD_WORDPRESS"]);
    assert_eq!(
        e.members[0].urls,
        ["http://wordpress-blog-default.127.0.0.1.sslip.io"]
    );
    assert_eq!(e.members[0].depends_on.len(), 1);

    let Child::Database {
        spec: db,
        login_secret,
        login,
    } = &e.members[1].child
    else {
        panic!("mariadb is not a Database");
    };
    assert!(!db.inject_credentials, "the compose environment is kept verbatim");
    assert_eq!(
        db.storage.as_ref().unwrap().volume_name.as_deref(),
        Some("default-blog_mariadb-data")
    );
    assert_eq!(login_secret, "blog-mariadb-login");
    assert_eq!(login["password"], g["SERVICE_PASSWORD_ROOT"]);
    assert_eq!(
        login["username"], "root",
        "the password is root's, so is the login"
    );
    assert_eq!(login["database"], "wordpress");
    assert_eq!(
        e.secret_env["mariadb.MYSQL_PASSWORD"],
        g["SERVICE_PASSWORD_WORDPRESS"]
    );
    let serialized = serde_json::to_string(&(wp, db)).unwrap();
    for value in g.values() {
        assert!(
            !serialized.contains(value.as_str()),
            "a generated value leaked into a spec"
        );
    }
    assert!(
        e.notices
            .iter()
            .any(|n| n.service == "mariadb" && n.key == "healthcheck")
    );
}

#[test]
fn the_same_inputs_give_the_same_expansion() {
    let s = spec(WORDPRESS);
    let g = generated(&s);
    assert_eq!(run(&s, &g).unwrap(), run(&s, &g).unwrap());
}

#[test]
fn domains_and_the_wildcard_set_hosts_and_tls() {
    let mut s = spec(WORDPRESS);
    s.domains.push(ServiceDomain {
        service: "wordpress".into(),
        host: "blog.example.com".into(),
        https: true,
    });
    let g = generated(&s);
    let e = run(&s, &g).unwrap();
    let wp = app(&e, "wordpress");
    assert_eq!(
        (wp.domains[0].host.as_str(), wp.domains[0].https),
        ("blog.example.com", true)
    );
    assert_eq!(e.members[0].urls, ["https://blog.example.com"]);

    let mut s = spec(WORDPRESS);
    s.wildcard_domain = Some("https://apps.example.org".into());
    let e = run(&s, &g).unwrap();
    assert_eq!(
        app(&e, "wordpress").domains[0].host,
        "wordpress-blog-default.apps.example.org"
    );

    s.domains.push(ServiceDomain {
        service: "nope".into(),
        host: "x.example.com".into(),
        https: true,
    });
    let err = run(&s, &g).unwrap_err().to_string();
    assert!(
        err.contains("spec.domains[0].service") && err.contains("nope"),
        "{err}"
    );
}

#[test]
fn refusals_name_the_compose_service_and_key() {
    let s = spec("services:\n  web:\n    image: nginx\n    privileged: true\n");
    let err = run(&s, &BTreeMap::new()).unwrap_err().to_string();
    assert!(err.contains("web") && err.contains("privileged"), "{err}");
    let s = spec("services:\n  web:\n    image: nginx\n    environment:\n      A: ${NEEDED:?set NEEDED}\n");
    let err = run(&s, &BTreeMap::new()).unwrap_err().to_string();
    assert!(err.contains("set NEEDED"), "{err}");
}

#[test]
fn binds_go_under_the_host_root_and_content_binds_become_files() {
    let s = spec(
        "services:\n  web:\n    image: nginx\n    volumes:\n      - ./conf:/etc/nginx/conf.d\n      - /var/log/x:/logs:ro\n      - type: bind\n        source: ./index.html\n        target: /usr/share/nginx/html/index.html\n        content: |\n          <h1>hi</h1>\n",
    );
    let e = run(&s, &BTreeMap::new()).unwrap();
    let web = app(&e, "web");
    let paths: Vec<_> = web
        .volumes
        .iter()
        .map(|v| v.host_path.as_deref().unwrap())
        .collect();
    assert_eq!(paths, ["/srv/berth/services/default/blog/conf", "/var/log/x"]);
    assert!(web.volumes[1].read_only);
    assert_eq!(web.files.len(), 1);
    assert_eq!(web.files[0].mount_path, "/usr/share/nginx/html/index.html");
    assert_eq!(web.files[0].content, "<h1>hi</h1>\n");

    let escape = spec("services:\n  web:\n    image: nginx\n    volumes:\n      - ../../etc:/x\n");
    let err = run(&escape, &BTreeMap::new()).unwrap_err().to_string();
    assert!(
        err.contains("services.web") && err.contains("volumes[0]"),
        "{err}"
    );
    let no_root = expand(Input {
        namespace: "default",
        name: "blog",
        spec: &s,
        generated: &BTreeMap::new(),
        host_root: None,
    })
    .unwrap_err()
    .to_string();
    assert!(no_root.contains("--host-root"), "{no_root}");
}

#[test]
fn volume_names_keep_the_compose_intent() {
    let s = spec(
        "services:\n  a:\n    image: busybox\n    volumes:\n      - data:/data\n      - shared:/shared\n      - old:/old\n      - /anon\nvolumes:\n  data: {}\n  shared:\n    name: my-shared\n  old:\n    external: true\n",
    );
    let mut s = s;
    s.deletion_policy = DeletionPolicy::Delete;
    let e = run(&s, &BTreeMap::new()).unwrap();
    let a = app(&e, "a");
    let names: Vec<_> = a
        .volumes
        .iter()
        .map(|v| (v.name.as_deref().unwrap(), v.external))
        .collect();
    assert_eq!(
        names,
        [
            ("default-blog_data", false),
            ("my-shared", false),
            ("old", true),
            ("default-blog_a-anon1", false)
        ]
    );
    assert!(a.delete_volumes);
}

#[test]
fn exclude_from_hc_and_restart_no_leave_readiness() {
    let s = spec(
        "services:\n  a:\n    image: busybox\n    exclude_from_hc: true\n  b:\n    image: busybox\n    restart: \"no\"\n  c:\n    image: busybox\n",
    );
    let e = run(&s, &BTreeMap::new()).unwrap();
    let excluded: Vec<_> = e.members.iter().map(|m| m.excluded).collect();
    assert_eq!(excluded, [true, true, false]);
}

#[test]
fn a_child_name_that_does_not_fit_is_refused_naming_the_member() {
    let long = "x".repeat(60);
    let s = spec(&format!("services:\n  {long}:\n    image: busybox\n"));
    let err = run(&s, &BTreeMap::new()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("services.{long}")) && err.contains("DNS-1123"),
        "{err}"
    );
    assert_eq!(object_name("blog", "My_App"), Some("blog-my-app".into()));
}

#[test]
fn a_database_image_berth_cannot_express_runs_as_an_application_with_a_notice() {
    let s = spec(
        "services:\n  db:\n    image: postgres:16\n    entrypoint: [\"/bin/sh\"]\n    environment:\n      POSTGRES_PASSWORD: x\n",
    );
    let e = run(&s, &BTreeMap::new()).unwrap();
    assert_eq!(e.members[0].child.kind(), "Application");
    assert!(
        e.notices
            .iter()
            .any(|n| n.service == "db" && n.message.contains("entrypoint"))
    );
}

#[test]
fn templates_expand_with_their_parameters() {
    for t in catalogue::all() {
        let s = ServiceSpec {
            template: Some(berth_crds::kinds::service::ServiceTemplate {
                name: t.name.into(),
                parameters: BTreeMap::new(),
            }),
            destination: "local".into(),
            ..ServiceSpec::default()
        };
        let g = generated(&s);
        let e = run(&s, &g).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert!(!e.members.is_empty(), "{}", t.name);
    }
    let s = ServiceSpec {
        template: Some(berth_crds::kinds::service::ServiceTemplate {
            name: "no-such-app".into(),
            parameters: BTreeMap::new(),
        }),
        destination: "local".into(),
        ..ServiceSpec::default()
    };
    assert!(matches!(
        run(&s, &BTreeMap::new()),
        Err(Error::UnknownTemplate(_))
    ));
}

#[test]
fn a_url_without_any_port_routes_to_80_and_says_so() {
    let s = spec("services:\n  web:\n    image: nginx\n    environment:\n      - SERVICE_URL_WEB\n");
    let e = run(&s, &BTreeMap::new()).unwrap();
    let web = app(&e, "web");
    assert_eq!(web.domains[0].port, Some(80));
    assert_eq!(
        web.ports.iter().map(|p| p.container_port).collect::<Vec<_>>(),
        [80]
    );
    assert!(
        e.notices
            .iter()
            .any(|n| n.service == "web" && n.message.contains("port 80"))
    );
    // A port the file names wins.
    let s = spec(
        "services:\n  web:\n    image: nginx\n    expose: [\"8080\"]\n    environment:\n      - SERVICE_URL_WEB\n",
    );
    let e = run(&s, &BTreeMap::new()).unwrap();
    assert_eq!(app(&e, "web").domains[0].port, Some(8080));
    assert!(e.notices.is_empty(), "{:?}", e.notices);
}

#[test]
fn volume_keys_docker_cannot_name_are_renamed_with_a_notice() {
    let s = spec(
        "services:\n  a:\n    image: busybox\n    volumes:\n      - memos/:/m\n      - data/config:/c\n      - plain:/p\n",
    );
    let e = run(&s, &BTreeMap::new()).unwrap();
    let names: Vec<_> = app(&e, "a")
        .volumes
        .iter()
        .map(|v| v.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "default-blog_memos",
            "default-blog_data-config",
            "default-blog_plain"
        ]
    );
    let keys: Vec<_> = e.notices.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(keys, ["volumes[0]", "volumes[1]"]);
}

#[test]
fn a_generated_host_label_over_63_characters_is_shortened_stably() {
    let svc = "calibre-web-automated-book-downloader";
    let s = spec(
        "services:\n  downloader:\n    image: x\n    environment:\n      - SERVICE_URL_DOWNLOADER_8084\n",
    );
    let e = expand(Input {
        namespace: "corpus-production",
        name: svc,
        spec: &s,
        generated: &BTreeMap::new(),
        host_root: None,
    })
    .unwrap();
    let host = app(&e, "downloader").domains[0].host.clone();
    let label = host.split('.').next().unwrap();
    assert_eq!(label.len(), 63, "{host}");
    assert!(
        label.starts_with("downloader-calibre-web-automated-book-downloader"),
        "{host}"
    );
    assert_eq!(urls::host_label(label), label, "a short label is kept");
}
