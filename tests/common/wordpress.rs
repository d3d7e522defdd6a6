//! A WordPress test image built from Debian bookworm's packages (WordPress 6.1, Apache 2.4
//! with mod_php 8.2), and an HTTP driver that installs the site, publishes a post over
//! XML-RPC and reads it back, addressing WordPress by an explicit `Host` header.
//!
//! # Guarantees
//! - Nothing is pulled: the image is a `debootstrap` rootfs imported `FROM scratch`, made
//!   and cached like the database images (`db_images::rootfs_image`: base
//!   `berth-test/wordpress-base:<recipe hash>`, tarball
//!   `target/test-deps/wordpress-rootfs-<hash>.tar`, built under a file lock), plus a thin
//!   `berth-test/wordpress:<content hash>`; a second run builds nothing.
//! - The official `wordpress` image's environment contract: `WORDPRESS_DB_HOST`
//!   (`host[:port]`, default `mysql`), `WORDPRESS_DB_USER`, `WORDPRESS_DB_PASSWORD`,
//!   `WORDPRESS_DB_NAME` (default `wordpress`), `WORDPRESS_TABLE_PREFIX` (default `wp_`),
//!   `WORDPRESS_DEBUG`, `WORDPRESS_CONFIG_EXTRA`, the `WORDPRESS_{AUTH,SECURE_AUTH,
//!   LOGGED_IN,NONCE}_{KEY,SALT}` keys (random per container when unset) and the `_FILE`
//!   variants of all of them. Apache serves on port 80, `DocumentRoot` the WordPress tree.
//! - Any `Host` works: the config is Debian's fallback `/etc/wordpress/config-default.php`,
//!   written at every start. `X-Forwarded-Proto: https` turns `HTTPS` on (Debian's
//!   `wp-config.php`), so WordPress behaves behind a TLS-terminating proxy.
//! - The image has `/bin/sh`, `curl` (berth's HTTP health checks) and the `mariadb` client.
//! - The driver never follows a redirect to another host: a redirect is followed only by
//!   re-sending its path and query to `base` with the same `Host`.
//!
//! # Caveats
//! - The first build runs `debootstrap` (root, `deb.debian.org` reachable): a few minutes.
//! - WordPress takes its `siteurl` from the `Host` of the install request: address the site
//!   by that same host afterwards (a different host works for `/?p=<id>` and XML-RPC, but
//!   links in pages point at the install host).
//! - Post titles are run through `wptexturize` (quotes, dashes, `&` become entities): use
//!   plain alphanumeric titles when looking for them in the page.
//! - Uploads and plugins live in `/var/lib/wordpress/wp-content` (Debian's layout), not in a
//!   volume: the site's files do not survive the container, its database does.

use std::time::{Duration, Instant};

use berth_controllers::docker::Docker;
use reqwest::{Method, header};

use super::db_images::{Rootfs, rootfs_image};
use super::http::causes;
use super::images::{Entry, Source, ensure_image};

/// WordPress, its default theme, Apache with mod_php and the PHP extensions WordPress and
/// its XML-RPC server need (`php-xml`: IXR parses with ext/xml), and `curl`.
const WORDPRESS_ROOTFS: Rootfs = Rootfs {
    name: "wordpress",
    packages: "wordpress,wordpress-theme-twentytwentythree,apache2,libapache2-mod-php,\
               php-mysql,php-xml,php-mbstring,curl",
    prune: &[
        "var/cache/apt/archives",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/locale",
    ],
};

/// Debian's `wp-config.php` includes `config-<host>.php`, else `config-default.php`: the
/// entrypoint writes the latter from the environment, so every `Host` gets the same site.
const ENTRYPOINT: &str = r#"#!/bin/sh
set -eu
# VAR from $VAR, else from the file named by $VAR_FILE, else the default.
file_env() {
  var=$1; def=${2:-}
  eval "val=\${$var:-}"; eval "file=\${${var}_FILE:-}"
  if [ -n "$file" ]; then val=$(cat "$file"); fi
  [ -n "$val" ] || val=$def
  eval "$var=\$val"
}
# A PHP single-quoted string literal.
php_str() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }
if [ "${1:-}" = apache2-foreground ]; then
  file_env WORDPRESS_DB_HOST mysql
  file_env WORDPRESS_DB_USER 'example username'
  file_env WORDPRESS_DB_PASSWORD 'example password'
  file_env WORDPRESS_DB_NAME wordpress
  file_env WORDPRESS_TABLE_PREFIX wp_
  file_env WORDPRESS_DEBUG ''
  file_env WORDPRESS_CONFIG_EXTRA ''
  # Keys: from the environment, else random once per container (kept across restarts).
  keys=/etc/wordpress/keys.php
  if [ ! -s "$keys" ]; then
    {
      echo '<?php'
      for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
        file_env "WORDPRESS_$k" "$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
        eval "v=\$WORDPRESS_$k"
        echo "define('$k', $(php_str "$v"));"
      done
    } > "$keys.tmp"
    mv "$keys.tmp" "$keys"
  fi
  {
    echo '<?php'
    echo "define('DB_NAME', $(php_str "$WORDPRESS_DB_NAME"));"
    echo "define('DB_USER', $(php_str "$WORDPRESS_DB_USER"));"
    echo "define('DB_PASSWORD', $(php_str "$WORDPRESS_DB_PASSWORD"));"
    echo "define('DB_HOST', $(php_str "$WORDPRESS_DB_HOST"));"
    echo "define('DB_CHARSET', 'utf8mb4');"
    echo "define('DB_COLLATE', '');"
    echo "\$table_prefix = $(php_str "$WORDPRESS_TABLE_PREFIX");"
    echo "require '$keys';"
    [ -z "$WORDPRESS_DEBUG" ] || echo "define('WP_DEBUG', true);"
    # No translations, core updates or plugin installs from the network.
    echo "define('AUTOMATIC_UPDATER_DISABLED', true);"
    [ -z "$WORDPRESS_CONFIG_EXTRA" ] || printf '%s\n' "$WORDPRESS_CONFIG_EXTRA"
  } > /etc/wordpress/config-default.php.tmp
  chmod 640 /etc/wordpress/config-default.php.tmp
  chgrp www-data /etc/wordpress/config-default.php.tmp "$keys"
  chmod 640 "$keys"
  mv /etc/wordpress/config-default.php.tmp /etc/wordpress/config-default.php
  mkdir -p /var/lib/wordpress/wp-content/uploads
  chown www-data:www-data /var/lib/wordpress/wp-content/uploads
  set +u # envvars reads unset variables
  . /etc/apache2/envvars
  mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"
  rm -f "$APACHE_PID_FILE"
  exec apache2 -DFOREGROUND
fi
exec "$@"
"#;

/// The site: the WordPress tree at `/`, Debian's `wp-content` at `/wp-content`; logs to
/// the container's output. (The rootfs already runs mpm_prefork with mod_php 8.2; no
/// `RUN` step, so the thin image builds in seconds.)
const SITE_CONF: &str = r#"ServerName localhost
ErrorLog /proc/self/fd/2
<IfModule !rewrite_module>
    LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so
</IfModule>
<VirtualHost *:80>
    DocumentRoot /usr/share/wordpress
    Alias /wp-content /var/lib/wordpress/wp-content
    <Directory /usr/share/wordpress>
        Options FollowSymLinks
        AllowOverride Limit Options FileInfo
        DirectoryIndex index.php
        Require all granted
    </Directory>
    <Directory /var/lib/wordpress/wp-content>
        Options FollowSymLinks
        Require all granted
    </Directory>
    ErrorLog /proc/self/fd/2
    CustomLog /proc/self/fd/1 combined
</VirtualHost>
"#;

const DOCKERFILE: &str = r#"FROM {base}
COPY site.conf /etc/apache2/sites-available/000-default.conf
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /usr/share/wordpress
STOPSIGNAL SIGWINCH
EXPOSE 80
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["apache2-foreground"]
"#;

/// Tag of the WordPress image (official `wordpress` contract, port 80), building it if
/// needed.
pub async fn wordpress_image(docker: &Docker) -> String {
    let base = rootfs_image(docker, &WORDPRESS_ROOTFS).await;
    // The Dockerfile names the base by its recipe hash, so the image's hash follows it.
    let dockerfile: &'static str = Box::leak(DOCKERFILE.replace("{base}", &base).into_boxed_str());
    ensure_image(
        docker,
        "wordpress",
        vec![
            Entry {
                path: "Dockerfile",
                mode: 0o644,
                source: Source::Text(dockerfile),
            },
            Entry {
                path: "site.conf",
                mode: 0o644,
                source: Source::Text(SITE_CONF),
            },
            Entry {
                path: "entrypoint.sh",
                mode: 0o755,
                source: Source::Text(ENTRYPOINT),
            },
        ],
    )
    .await
}

/// A response: status, `Location` (if any) and body.
struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build the HTTP client")
}

/// One request to `base` + `path` with `Host: host`; no redirect is followed.
async fn send(
    http: &reqwest::Client,
    method: Method,
    base: &str,
    host: &str,
    path: &str,
    body: Option<(&str, String)>,
) -> Result<Reply, String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut req = http.request(method.clone(), &url).header(header::HOST, host);
    if let Some((content_type, body)) = body {
        req = req.header(header::CONTENT_TYPE, content_type).body(body);
    }
    let what = format!("{method} {url} (Host: {host})");
    let resp = req.send().await.map_err(|e| format!("{what}: {}", causes(&e)))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let body = resp
        .text()
        .await
        .map_err(|e| format!("{what}: body: {}", causes(&e)))?;
    Ok(Reply {
        status,
        location,
        body,
    })
}

/// GET `path`, following up to 5 redirects by their path and query only (to `base`, with
/// the same `Host`).
async fn get(base: &str, host: &str, path: &str) -> Result<Reply, String> {
    let http = client();
    let mut path = path.to_string();
    for _ in 0..5 {
        let reply = send(&http, Method::GET, base, host, &path, None).await?;
        match (reply.status, &reply.location) {
            (300..=399, Some(location)) => path = path_of(location),
            _ => return Ok(reply),
        }
    }
    Err(format!("GET {path} (Host: {host}): too many redirects"))
}

/// The path and query of a URL or of an absolute or relative reference.
fn path_of(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        },
        None if location.starts_with('/') => location.to_string(),
        None => format!("/{location}"),
    }
}

/// A short excerpt of a page, for error messages.
fn excerpt(body: &str) -> String {
    let text: String = body.chars().take(600).collect();
    text.replace('\n', " ")
}

/// Polls `GET /wp-admin/install.php` until it answers 200, which needs Apache, PHP and the
/// database connection to work (WordPress answers 500 while the database is unreachable;
/// a proxy answers 404/502 until it routes). Polls every 250 ms.
pub async fn wait_until_up(base: &str, host: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("build the HTTP client");
    loop {
        let last = match send(&http, Method::GET, base, host, "/wp-admin/install.php", None).await {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => format!("HTTP {}: {}", r.status, excerpt(&r.body)),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "WordPress at {base} (Host: {host}) not up after {timeout:?}: {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the installer (`POST /wp-admin/install.php?step=2`, language `en_US`): creates the
/// tables, the admin user and the site, whose URL becomes `http://<host>`. An already
/// installed site is an error.
pub async fn install(
    base: &str,
    host: &str,
    title: &str,
    admin_user: &str,
    admin_password: &str,
    admin_email: &str,
) -> Result<(), String> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("weblog_title", title)
        .append_pair("user_name", admin_user)
        .append_pair("admin_password", admin_password)
        .append_pair("admin_password2", admin_password)
        .append_pair("pw_weak", "on")
        .append_pair("admin_email", admin_email)
        .append_pair("blog_public", "0")
        .append_pair("language", "")
        .append_pair("Submit", "Install WordPress")
        .finish();
    let reply = send(
        &client(),
        Method::POST,
        base,
        host,
        "/wp-admin/install.php?step=2",
        Some(("application/x-www-form-urlencoded", form)),
    )
    .await?;
    if reply.status == 200 && reply.body.contains("<h1>Success!</h1>") {
        return Ok(());
    }
    let why = if reply.body.contains("Already Installed") {
        "already installed".to_string()
    } else {
        excerpt(&reply.body)
    };
    Err(format!(
        "install at {base} (Host: {host}): HTTP {}: {why}",
        reply.status
    ))
}

/// Publishes a post (`wp.newPost` over XML-RPC at `/xmlrpc.php`, status `publish`) as
/// `user`; returns its id.
pub async fn publish_post(
    base: &str,
    host: &str,
    user: &str,
    password: &str,
    title: &str,
    body: &str,
) -> Result<u64, String> {
    let call = format!(
        "<?xml version=\"1.0\"?>\n<methodCall><methodName>wp.newPost</methodName><params>\
         <param><value><int>1</int></value></param>\
         <param><value><string>{}</string></value></param>\
         <param><value><string>{}</string></value></param>\
         <param><value><struct>\
         <member><name>post_type</name><value><string>post</string></value></member>\
         <member><name>post_status</name><value><string>publish</string></value></member>\
         <member><name>post_title</name><value><string>{}</string></value></member>\
         <member><name>post_content</name><value><string>{}</string></value></member>\
         </struct></value></param></params></methodCall>\n",
        xml_escape(user),
        xml_escape(password),
        xml_escape(title),
        xml_escape(body),
    );
    let reply = send(
        &client(),
        Method::POST,
        base,
        host,
        "/xmlrpc.php",
        Some(("text/xml", call)),
    )
    .await?;
    let what = format!("wp.newPost at {base} (Host: {host})");
    if reply.status != 200 {
        return Err(format!("{what}: HTTP {}: {}", reply.status, excerpt(&reply.body)));
    }
    if reply.body.contains("<fault>") {
        return Err(format!("{what}: fault: {}", strip_tags(&reply.body)));
    }
    // `<params><param><value><string>ID</string></value></param></params>`
    let value = reply
        .body
        .split_once("<params>")
        .map(|(_, rest)| strip_tags(rest))
        .unwrap_or_default();
    value
        .parse()
        .map_err(|_| format!("{what}: unexpected response: {}", excerpt(&reply.body)))
}

/// The page of post `id` (`GET /?p=<id>`, redirects followed on `base`), which must answer
/// 200.
pub async fn read_post(base: &str, host: &str, id: u64) -> Result<String, String> {
    let reply = get(base, host, &format!("/?p={id}")).await?;
    if reply.status != 200 {
        return Err(format!(
            "post {id} at {base} (Host: {host}): HTTP {}: {}",
            reply.status,
            excerpt(&reply.body)
        ));
    }
    Ok(reply.body)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The text of an XML fragment, tags removed and whitespace collapsed.
fn strip_tags(xml: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in xml.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
