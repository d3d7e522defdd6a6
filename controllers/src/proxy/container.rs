//! The Traefik container berth runs for a Proxy: its name, its static configuration (CLI
//! arguments), the [`ContainerSpec`] it is created from and the files laid out in it.
//!
//! # Guarantees
//! - Pure: the same Proxy gives the same [`ContainerSpec`], so its config hash tells an
//!   up-to-date container from one to recreate (image, ports, arguments, labels, CA files).

use bytes::Bytes;
use sha2::{Digest, Sha256};

use berth_crds::kinds::ProxySpec;

use super::{API_PORT, DYNAMIC_DIR, render};
use crate::docker::{self, ContainerSpec, Labels, Owner, PortSpec, RestartPolicy};

/// Label holding the hash of files uploaded at creation (CA certificates).
const FILES_HASH: &str = "dev.berth.proxy-files";

/// The Traefik container's name for proxy `name`.
pub fn container_name(name: &str) -> String {
    format!("berth-proxy-{name}")
}

/// Traefik's static configuration as CLI arguments.
pub fn static_args(spec: &ProxySpec) -> Vec<String> {
    let mut args = vec![
        "--entrypoints.web.address=:80".to_owned(),
        "--entrypoints.websecure.address=:443".to_owned(),
        format!("--entrypoints.traefik.address=:{API_PORT}"),
        // The API is served on the internal `traefik` entrypoint, which is not published.
        "--api.insecure=true".to_owned(),
        format!("--api.dashboard={}", spec.dashboard),
        "--ping=true".to_owned(),
        format!("--providers.file.directory={DYNAMIC_DIR}"),
        "--providers.file.watch=true".to_owned(),
        "--providers.providersThrottleDuration=100ms".to_owned(),
        "--log.format=json".to_owned(),
    ];
    if let Some(acme) = &spec.acme {
        let r = format!("--certificatesresolvers.{}.acme", render::CERT_RESOLVER);
        args.push(format!("{r}.email={}", acme.email));
        args.push(format!("{r}.caserver={}", acme.ca_server));
        args.push(format!("{r}.storage=/berth/acme.json"));
        args.push(format!("{r}.httpchallenge.entrypoint={}", render::WEB));
    }
    args
}

/// The container Proxy `name` (uid `uid`) runs Traefik in, labelled with its owner and
/// `extra_labels`.
pub fn container_spec(name: &str, uid: &str, spec: &ProxySpec, extra_labels: &Labels) -> ContainerSpec {
    let mut labels = Owner {
        kind: "Proxy".to_owned(),
        namespace: String::new(),
        name: name.to_owned(),
        uid: uid.to_owned(),
    }
    .labels();
    labels.extend(extra_labels.clone());
    let mut env = std::collections::BTreeMap::new();
    if let Some(pem) = spec.acme.as_ref().and_then(|a| a.ca_certificates.as_ref()) {
        env.insert("LEGO_CA_CERTIFICATES".to_owned(), "/berth/ca.pem".to_owned());
        labels.insert(FILES_HASH.to_owned(), short_hash(pem.as_bytes()));
    }
    let publish = |container_port, host_port| PortSpec {
        container_port,
        protocol: docker::Protocol::Tcp,
        host_port: Some(host_port),
        host_ip: spec.listen_address.clone(),
    };
    ContainerSpec {
        name: container_name(name),
        image: spec.image.clone(),
        args: static_args(spec),
        env,
        labels,
        ports: vec![publish(80, spec.http_port), publish(443, spec.https_port)],
        restart_policy: RestartPolicy::UnlessStopped,
        ..ContainerSpec::default()
    }
}

/// One file of an upload archive.
pub(super) struct File<'a> {
    /// Path inside the archive.
    pub path: &'a str,
    /// Content.
    pub content: &'a [u8],
}

/// A tar archive of `dirs` (created first) and `files`.
pub(super) fn archive(dirs: &[&str], files: &[File<'_>]) -> Result<Bytes, std::io::Error> {
    let mut tar = tar::Builder::new(Vec::new());
    for dir in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())?;
    }
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(file.content.len() as u64);
        tar.append_data(&mut header, file.path, file.content)?;
    }
    Ok(Bytes::from(tar.into_inner()?))
}

/// The archive laid out in a new container (uploaded at `/` before it starts): Traefik must
/// find its watched directory at start, with both slots empty, and the CA certificates.
pub(super) fn seed_archive(spec: &ProxySpec) -> Result<Bytes, std::io::Error> {
    let pem = spec.acme.as_ref().and_then(|a| a.ca_certificates.as_deref());
    let mut files = vec![
        File {
            path: "berth/dynamic/a.yml",
            content: b"",
        },
        File {
            path: "berth/dynamic/b.yml",
            content: b"",
        },
    ];
    if let Some(pem) = pem {
        files.push(File {
            path: "berth/ca.pem",
            content: pem.as_bytes(),
        });
    }
    archive(&["berth", "berth/dynamic"], &files)
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
