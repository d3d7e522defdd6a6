//! The Proxy controller end to end: `berth serve`, the real Docker daemon and the real
//! Traefik v3 (local image), requests through the published loopback ports.
//!
//! Each test opens its own [`TestRun`] (unique names, a run label that `berth serve` also
//! puts on the proxy container through `--docker-label`); the server is declared after
//! the run so it is killed first, then everything with the run label is removed, also
//! when the test panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use berth_controllers::docker::{ContainerSpec, Docker, NetworkAttachment, label};
use common::{
    docker_run::TestRun,
    http::{Client, collection, object},
    images,
    server::{Backend, BerthServer, OutputExt},
    traffic::{Proxied, free_port, plain_client},
};
use serde_json::{Value, json};

/// Upper bound for anything these tests wait on.
const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `probe` until it returns `Some`, failing after [`DEADLINE`] with `what`.
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One test's world: a run, a berth server labelling its containers with the run label,
/// a network, a Destination and a Project namespace.
struct World {
    client: Client,
    ns: String,
    network: String,
    destination: String,
    server_name: String,
    // Dropped in this order: the server first (no more reconciles), then the run cleanup.
    /// The berth server (its log tail helps failure messages).
    server: BerthServer,
    run: TestRun,
}

impl World {
    async fn start() -> World {
        let run = TestRun::start().await;
        let server = BerthServer::start(
            Backend::Embedded,
            &["--docker-label", &format!("{}={}", label::RUN, run.id)],
        );
        let client = Client::new(&server.url, Some(&server.token));
        let network = run.name("net");
        run.docker.ensure_network(&network, &run.labels()).await.unwrap();
        let server_name = format!("srv-{}", run.id);
        let destination = format!("dst-{}", run.id);
        client
            .create(
                &collection(None, "destinations"),
                &json!({"apiVersion": "berth.dev/v1", "kind": "Destination",
                        "metadata": {"name": destination},
                        "spec": {"server": server_name, "network": network}}),
            )
            .await;
        let project = format!("p{}", run.id);
        client
            .create(
                &collection(None, "projects"),
                &json!({"apiVersion": "berth.dev/v1", "kind": "Project",
                        "metadata": {"name": project}, "spec": {}}),
            )
            .await;
        World {
            client,
            ns: format!("{project}-production"),
            network,
            destination,
            server_name,
            server,
            run,
        }
    }

    fn docker(&self) -> &Docker {
        &self.run.docker
    }

    /// Runs a busybox httpd serving `message` on 8080, on the test network.
    async fn httpd(&self, prefix: &str, message: &str) -> String {
        let image = images::busybox_httpd(self.docker()).await;
        let name = self.run.name(prefix);
        let spec = ContainerSpec {
            name: name.clone(),
            image,
            env: [("MESSAGE".to_string(), message.to_string())].into(),
            labels: self.run.labels(),
            network: Some(NetworkAttachment {
                name: self.network.clone(),
                aliases: vec![],
                ..Default::default()
            }),
            stop_timeout_secs: Some(1),
            ..Default::default()
        };
        self.docker().create_container(&spec).await.unwrap();
        self.docker().start_container(&name).await.unwrap();
        name
    }

    /// Declares the server's Proxy with the local Traefik image on loopback ports.
    async fn proxy(&self, http_port: u16, https_port: u16, acme: Option<Value>) -> String {
        let image = images::traefik(self.docker()).await;
        let mut spec = json!({
            "server": self.server_name, "image": image,
            "httpPort": http_port, "httpsPort": https_port, "listenAddress": "127.0.0.1",
        });
        if let Some(acme) = acme {
            spec["acme"] = acme;
        }
        self.client
            .create(
                &collection(None, "proxies"),
                &json!({"apiVersion": "berth.dev/v1", "kind": "Proxy",
                        "metadata": {"name": self.server_name}, "spec": spec}),
            )
            .await;
        self.server_name.clone()
    }

    async fn app(&self, name: &str, domains: Value) {
        self.client
            .create(
                &collection(Some(&self.ns), "applications"),
                &json!({"apiVersion": "berth.dev/v1", "kind": "Application",
                        "metadata": {"name": name, "namespace": self.ns},
                        "spec": {"source": {"image": "web:1"}, "destination": self.destination,
                                 "ports": [{"containerPort": 8080}], "domains": domains}}),
            )
            .await;
    }

    /// Publishes the app's containers as the Application controller would.
    async fn set_containers(&self, app: &str, containers: &[(&str, bool)]) {
        let list: Vec<Value> = containers
            .iter()
            .enumerate()
            .map(|(i, (name, ready))| json!({"name": name, "replica": i, "configHash": "h", "ready": ready}))
            .collect();
        let path = format!("{}/status", object(Some(&self.ns), "applications", app));
        let (code, body) = self
            .client
            .patch(&path, &json!({"status": {"containers": list}}))
            .await;
        assert_eq!(code, 200, "status write: {body}");
    }

    async fn proxy_status(&self) -> Value {
        let (code, body) = self.client.get(&object(None, "proxies", &self.server_name)).await;
        assert_eq!(code, 200, "{body}");
        body["status"].clone()
    }

    /// Waits until the proxy's `backends` for `app` are exactly `containers`.
    async fn backends(&self, app: &str, containers: &[&str]) -> Value {
        let key = format!("{}/{app}", self.ns);
        let want = json!(containers);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let s = self.proxy_status().await;
            if s["backends"][&key] == want {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "backends of {key} never became {want}; status {s}\nserver log:\n{}",
                self.server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// GET `http://127.0.0.1:<port><path>` with `Host: <host>`: status and body.
async fn get(port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    get_with(&plain_client(), port, host, path).await
}

/// [`get`] through `http`.
async fn get_with(http: &reqwest::Client, port: u16, host: &str, path: &str) -> Option<(u16, String)> {
    let response = http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("Host", host)
        .send()
        .await
        .ok()?;
    let code = response.status().as_u16();
    Some((code, response.text().await.ok()?))
}

/// Waits until `host` on `port` answers 200 with a body containing `text`.
async fn serves(port: u16, host: &str, path: &str, text: &str) {
    until(&format!("{host}{path} serves {text:?}"), || async {
        get(port, host, path)
            .await
            .filter(|(code, body)| *code == 200 && body.contains(text))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_go_live_and_follow_the_ready_containers() {
    let w = World::start().await;
    let (http_port, https_port) = (free_port(), free_port());
    w.proxy(http_port, https_port, None).await;
    let one = w.httpd("one", "hello from one").await;
    let two = w.httpd("two", "hello from two").await;
    let host = format!("{}.test", w.run.id);
    w.app("web", json!([{"host": host, "https": false}])).await;

    let t0 = Instant::now();
    w.set_containers("web", &[(&one, true)]).await;
    let status = w.backends("web", &[&one]).await;
    serves(http_port, &host, "/", "hello from one").await;
    eprintln!(
        "first route live (container start of traefik included) in {:?}",
        t0.elapsed()
    );
    let ready = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["status"], "True", "{status}");
    assert_eq!(status["routes"], 1);
    assert!(status["revision"].is_string());
    let running = w
        .docker()
        .inspect_container(&format!("berth-proxy-{}", w.server_name))
        .await
        .unwrap();
    assert!(running.running);
    assert!(
        running.ips.contains_key(&w.network),
        "proxy attached to the app's network"
    );

    // Unknown hosts are not routed.
    let (code, _) = get(http_port, "nobody.test", "/").await.unwrap();
    assert_eq!(code, 404);

    // Switch: the new container ready, the old one not. Backends are only reported once
    // Traefik has the new config live, so traffic must already have moved by then.
    // Meanwhile a client keeps requesting: every answer must come from one or the other
    // container (Traefik never runs without the route).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (stop, host) = (stop.clone(), host.clone());
        async move {
            let (http, mut answers) = (plain_client(), Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                answers.push(get_with(&http, http_port, &host, "/").await);
            }
            answers
        }
    });
    let t1 = Instant::now();
    w.set_containers("web", &[(&one, false), (&two, true)]).await;
    w.backends("web", &[&two]).await;
    let backends_after = t1.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = traffic.await.unwrap();
    assert!(
        answers.len() > 3,
        "the client made too few requests to mean anything"
    );
    for answer in &answers {
        let (code, body) = answer.as_ref().expect("a request failed during the switch");
        assert_eq!(*code, 200, "{body}");
        assert!(body.starts_with("hello from "), "{body}");
    }
    eprintln!("{} requests during the switch, all answered 200", answers.len());
    for _ in 0..5 {
        let (code, body) = get(http_port, &host, "/").await.unwrap();
        assert_eq!((code, body.trim()), (200, "hello from two"));
    }
    eprintln!("status change → backends written (route verified live) in {backends_after:?}");

    // Drift: the Traefik container removed behind berth's back comes back with its routes.
    let t2 = Instant::now();
    let container = format!("berth-proxy-{}", w.server_name);
    w.docker().remove_container(&container).await.unwrap();
    serves(http_port, &host, "/", "hello from two").await;
    eprintln!(
        "proxy container removed → recreated and routing again in {:?}",
        t2.elapsed()
    );

    // Deleting the Proxy removes its container (finalizer).
    let (code, body) = w.client.delete(&object(None, "proxies", &w.server_name)).await;
    assert!(code == 200 || code == 202, "{code} {body}");
    until("the proxy container is gone", || async {
        w.docker()
            .inspect_container(&format!("berth-proxy-{}", w.server_name))
            .await
            .err()
            .filter(|e| e.is_not_found())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn path_prefix_strip_gzip_basic_auth_and_redirects() {
    let w = World::start().await;
    let (http_port, https_port) = (free_port(), free_port());
    w.proxy(http_port, https_port, None).await;
    let one = w.httpd("one", "guarded page").await;
    let id = &w.run.id;
    let htpasswd = format!("alice:{}", bcrypt::hash("secret", 5).unwrap());
    w.client
        .create(
            &collection(Some(&w.ns), "secrets"),
            &json!({"apiVersion": "berth.dev/v1", "kind": "Secret",
                    "metadata": {"name": "auth", "namespace": w.ns},
                    "spec": {"data": {"htpasswd": htpasswd}}}),
        )
        .await;
    w.app(
        "web",
        json!([
            {"host": format!("p.{id}.test"), "path": "/app", "stripPrefix": true, "gzip": true, "https": false},
            {"host": format!("a.{id}.test"), "https": false,
             "basicAuthSecretRef": {"name": "auth", "key": "htpasswd"}},
            {"host": format!("{id}.test"), "https": false, "redirect": "www"},
            {"host": format!("s.{id}.test")},
            {"host": format!("m.{id}.test"), "https": false,
             "basicAuthSecretRef": {"name": "missing", "key": "htpasswd"}},
        ]),
    )
    .await;
    w.set_containers("web", &[(&one, true)]).await;
    w.backends("web", &[&one]).await;

    // Path prefix, stripped before forwarding (httpd serves /index.html at /).
    serves(http_port, &format!("p.{id}.test"), "/app/", "guarded page").await;
    let (code, _) = get(http_port, &format!("p.{id}.test"), "/").await.unwrap();
    assert_eq!(code, 404, "outside the prefix");

    // Basic auth.
    let (code, _) = get(http_port, &format!("a.{id}.test"), "/").await.unwrap();
    assert_eq!(code, 401);
    let http = reqwest::Client::new();
    let response = http
        .get(format!("http://127.0.0.1:{http_port}/"))
        .header("Host", format!("a.{id}.test"))
        .basic_auth("alice", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // Apex → www redirect; www is served.
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{http_port}/x"))
        .header("Host", format!("{id}.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 301);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("http://www.{id}.test/x"));
    serves(http_port, &format!("www.{id}.test"), "/", "guarded page").await;

    // https: true → plain HTTP redirects to HTTPS on the configured port.
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{http_port}/y"))
        .header("Host", format!("s.{id}.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 301);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("https://s.{id}.test:{https_port}/y"));

    // A domain whose basic-auth Secret is missing is not served open: not routed at all,
    // and the proxy's status says why.
    let (code, _) = get(http_port, &format!("m.{id}.test"), "/").await.unwrap();
    assert_eq!(code, 404);
    let status = w.proxy_status().await;
    assert_eq!(status["routes"], 4, "{status}");
    let errors = status["errors"].to_string();
    assert!(errors.contains("spec.domains[4].basicAuthSecretRef"), "{status}");
    assert!(errors.contains("missing"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_is_created_for_the_first_app_with_a_domain() {
    let w = World::start().await;
    w.app("web", json!([{"host": format!("{}.test", w.run.id)}]))
        .await;
    let proxy = until("the server's proxy exists", || async {
        let (code, body) = w.client.get(&object(None, "proxies", &w.server_name)).await;
        (code == 200).then_some(body)
    })
    .await;
    assert_eq!(proxy["spec"]["server"], w.server_name);
    assert_eq!(proxy["spec"]["image"], "traefik:v3.6");
}

/// Makes a CA and a certificate for `pebble` signed by it (openssl), in `dir`; returns
/// the CA's PEM.
fn test_ca(dir: &std::path::Path) -> String {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (scripts/install-test-deps.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=berth test ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=pebble",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:pebble,DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    std::fs::read_to_string(dir.join("ca.pem")).unwrap()
}

/// A tar of `files` under `pebble/`.
fn pebble_tar(files: &[(&str, Vec<u8>)]) -> bytes::Bytes {
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, "pebble", std::io::empty()).unwrap();
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        tar.append_data(&mut header, format!("pebble/{name}"), content.as_slice())
            .unwrap();
    }
    bytes::Bytes::from(tar.into_inner().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_certificates_from_pebble_and_http_redirects() {
    let w = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path());

    // Pebble on the test network (Docker DNS name `pebble`), its management API on loopback.
    let image = images::pebble(w.docker()).await;
    let management = free_port();
    let pebble = w.run.name("pebble");
    let config = json!({"pebble": {
        "listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
        "certificate": "/pebble/cert.pem", "privateKey": "/pebble/key.pem",
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false,
    }});
    let spec = ContainerSpec {
        name: pebble.clone(),
        image,
        args: vec!["-config".into(), "/pebble/config.json".into()],
        env: [
            ("PEBBLE_VA_ALWAYS_VALID", "1"),
            ("PEBBLE_VA_NOSLEEP", "1"),
            ("PEBBLE_WFE_NONCEREJECT", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        labels: w.run.labels(),
        network: Some(NetworkAttachment {
            name: w.network.clone(),
            aliases: vec!["pebble".into()],
            ..Default::default()
        }),
        ports: vec![berth_controllers::docker::PortSpec {
            container_port: 15000,
            protocol: berth_controllers::docker::Protocol::Tcp,
            host_port: Some(management),
            host_ip: Some("127.0.0.1".into()),
        }],
        stop_timeout_secs: Some(1),
        ..Default::default()
    };
    w.docker().create_container(&spec).await.unwrap();
    let files = [
        ("config.json", serde_json::to_vec(&config).unwrap()),
        ("cert.pem", std::fs::read(dir.path().join("cert.pem")).unwrap()),
        ("key.pem", std::fs::read(dir.path().join("key.pem")).unwrap()),
    ];
    w.docker().upload(&pebble, "/", pebble_tar(&files)).await.unwrap();
    w.docker().start_container(&pebble).await.unwrap();

    let (http_port, https_port) = (free_port(), free_port());
    w.proxy(
        http_port,
        https_port,
        Some(
            json!({"email": "ops@example.com", "caServer": "https://pebble:14000/dir", "caCertificates": ca}),
        ),
    )
    .await;
    let web = w.httpd("web", "hello over tls").await;
    let host = format!("tls-{}.test", w.run.id);
    w.app("web", json!([{"host": host}])).await;
    w.set_containers("web", &[(&web, true)]).await;
    w.backends("web", &[&web]).await;

    // Plain HTTP redirects to HTTPS.
    let (code, _) = get(http_port, &host, "/").await.unwrap();
    assert_eq!(code, 301);

    // Pebble's issuing root, from its management API (served with our test CA's cert).
    let management_client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let root = until("pebble's management api answers", || async {
        let r = management_client
            .get(format!("https://127.0.0.1:{management}/roots/0"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    })
    .await;

    // The certificate Traefik obtained verifies against Pebble's root.
    let t0 = Instant::now();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()])
        .resolve(&host, format!("127.0.0.1:{https_port}").parse().unwrap())
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        match client.get(format!("https://{host}:{https_port}/")).send().await {
            Ok(r) if r.status().is_success() => {
                assert_eq!(r.text().await.unwrap().trim(), "hello over tls");
                break;
            }
            outcome => assert!(
                Instant::now() < deadline,
                "no verified HTTPS response: {outcome:?}\nproxy status {}\nserver log:\n{}",
                w.proxy_status().await,
                w.server.log_tail()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "certificate issued and served in {:?} after the route went live",
        t0.elapsed()
    );
}

/// The `Ready` condition of `obj`, if it has one.
fn ready_condition(obj: &Value) -> Option<Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
}

/// A second Proxy for a server that has one (as a race of the auto-creation made once)
/// stands by: no container, `Ready=False reason=ServerHasProxy` naming the serving one;
/// the server's Application stays Ready, and every status stays at rest (no reconcile loop
/// rewriting them). Once the serving Proxy is deleted, the second one takes over.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_proxy_for_a_server_stands_by_until_the_first_is_gone() {
    let run = TestRun::start().await;
    let Proxied {
        server,
        http_port,
        ns,
    } = Proxied::start(&run).await;
    let client = Client::new(&server.url, Some(&server.token));
    let (first, second) = (format!("px{}", run.id), format!("px{}-extra", run.id));
    let httpd = images::busybox_httpd(&run.docker).await;
    let traefik = images::traefik(&run.docker).await;
    let host = format!("app-{}.test", run.id);
    let yaml = format!(
        "apiVersion: berth.dev/v1\nkind: Application\nmetadata:\n  name: web\n  namespace: {ns}\n\
         spec:\n  source:\n    image: {httpd}\n  destination: default\n  ports:\n  - containerPort: 8080\n  \
         env:\n  - name: MESSAGE\n    value: hello\n  domains:\n  - host: {host}\n    https: false\n"
    );
    server.run_stdin(&["apply", "-f", "-"], &yaml).ok();
    let wait_ready = || {
        server
            .run(&[
                "wait",
                "app/web",
                "-n",
                &ns,
                "--for=condition=Ready",
                "--timeout=60s",
            ])
            .ok()
    };
    wait_ready();
    serves(http_port, &host, "/", "hello").await;

    // The second Proxy: a real image and free loopback ports, so that a container made in
    // spite of the rule would start and show.
    let (http2, https2) = (free_port(), free_port());
    let yaml = format!(
        "apiVersion: berth.dev/v1\nkind: Proxy\nmetadata:\n  name: {second}\nspec:\n  server: localhost\n  \
         image: {traefik}\n  httpPort: {http2}\n  httpsPort: {https2}\n  listenAddress: 127.0.0.1\n"
    );
    server.run_stdin(&["apply", "-f", "-"], &yaml).ok();
    let get_obj = {
        let client = &client;
        move |path: String| async move {
            let (code, body) = client.get(&path).await;
            assert_eq!(code, 200, "{path}: {body}");
            body
        }
    };
    let second_path = object(None, "proxies", &second);
    let app_path = object(Some(&ns), "applications", "web");
    let standing = until("the second proxy reports ServerHasProxy", || async {
        let p = get_obj(second_path.clone()).await;
        ready_condition(&p).filter(|c| c["reason"] == "ServerHasProxy")
    })
    .await;
    assert_eq!(standing["status"], "False", "{standing}");
    assert!(
        standing["message"].as_str().unwrap().contains(&first),
        "names the serving proxy: {standing}"
    );
    let err = run
        .docker
        .inspect_container(&format!("berth-proxy-{second}"))
        .await
        .expect_err("a standby proxy has no container");
    assert!(err.is_not_found(), "{err}");

    // At rest: the app stays Ready, and nothing rewrites a status meanwhile.
    let rv = |obj: &Value| obj["metadata"]["resourceVersion"].clone();
    let (app0, second0) = (
        get_obj(app_path.clone()).await,
        get_obj(second_path.clone()).await,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (app1, second1) = (
        get_obj(app_path.clone()).await,
        get_obj(second_path.clone()).await,
    );
    let ready = ready_condition(&app1).unwrap();
    assert_eq!(ready["status"], "True", "the app stays Ready: {ready}");
    assert_eq!(rv(&app1), rv(&app0), "the app's status is at rest: {app1}");
    assert_eq!(
        rv(&second1),
        rv(&second0),
        "the standby's status is at rest: {second1}"
    );
    serves(http_port, &host, "/", "hello").await;

    // The serving Proxy goes: the second takes over, routes and all.
    let (code, body) = client.delete(&object(None, "proxies", &first)).await;
    assert!(code == 200 || code == 202, "{code} {body}");
    let t0 = Instant::now();
    serves(http2, &host, "/", "hello").await;
    eprintln!(
        "serving proxy deleted → the second one routes in {:?}",
        t0.elapsed()
    );
    until("the second proxy is Ready", || async {
        let p = get_obj(second_path.clone()).await;
        ready_condition(&p).filter(|c| c["status"] == "True")
    })
    .await;
    wait_ready();
}
