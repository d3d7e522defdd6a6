//! Image builds: a build context made from files (modes and symlinks kept), built through
//! the Engine's build API, its output streamed back line by line.
//!
//! # Guarantees
//! - [`context_tar`] is deterministic: entries sorted by path, each directory before its
//!   contents, owner 0:0, mtime 0, so the same files give the same bytes (and Docker's
//!   layer cache hits across builds of unchanged files).
//! - Regular files keep their permission bits, symlinks their target; a path that leaves
//!   the context (absolute, `..`, empty segment) is refused with [`Error::Invalid`].
//! - A failed build ends its stream with [`Error::Build`] carrying the builder's message
//!   (`errorDetail.message`, e.g. the failing step and its exit code).
//! - Builds use the classic builder (no BuildKit session), which works offline. A `FROM`
//!   image is pulled only when missing locally, unless [`BuildOptions::pull`] asks to
//!   refresh it.
//!
//! - [`with_labels`] labels an image in one build step: the classic builder turns each label
//!   of [`BuildOptions::labels`] into a step of its own (about a second each on a busy host).
//!
//! # Caveats
//! - [`with_labels`] assumes the default escape character (`\`); a Dockerfile with an
//!   `# escape=` directive and labels holding quotes or backslashes gets them mangled.
//! - [`context_tar`] holds the whole context in memory: fine for source trees, not for
//!   repositories carrying large binaries.
//! - The build stream is driven by a spawned task: dropping the stream stops reading the
//!   daemon's output but does not cancel a build already running there.

use std::collections::{BTreeSet, HashMap};

use bollard::query_parameters::BuildImageOptionsBuilder;
use bytes::Bytes;
use futures::Stream;
use futures::stream::{BoxStream, StreamExt};
use tokio_stream::wrappers::ReceiverStream;

use super::connect::Docker;
use super::error::{Error, Result};
use super::labels::Labels;

/// The file-type bits of a Git/Unix mode.
const TYPE_MASK: u32 = 0o170_000;
/// A symbolic link (its data is the target).
pub const MODE_SYMLINK: u32 = 0o120_000;
/// A directory.
const MODE_DIR: u32 = 0o040_000;
/// A Git submodule (gitlink): no content to put in a context.
const MODE_GITLINK: u32 = 0o160_000;

/// One file of a build context, borrowed from wherever the files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextEntry<'a> {
    /// Path relative to the context root, `/`-separated.
    pub path: &'a str,
    /// Git/Unix mode: `0o100644`, `0o100755`, or [`MODE_SYMLINK`].
    pub mode: u32,
    /// The content; for a symlink, its target.
    pub data: &'a [u8],
}

/// One message of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A line of build output, without its newline.
    Log(String),
    /// The build finished; the image ID.
    Built {
        /// Image ID (`sha256:...`).
        image_id: String,
    },
}

/// How to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Dockerfile path inside the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    /// Labels to set on the image.
    pub labels: Labels,
    /// Build arguments.
    pub build_args: Labels,
    /// Ignore the build cache.
    pub no_cache: bool,
    /// Pull `FROM` images even when present locally.
    pub pull: bool,
}

/// A tar archive of `entries` for [`Docker::build_image`] (see the module's guarantees).
pub fn context_tar<'a>(entries: impl IntoIterator<Item = ContextEntry<'a>>) -> Result<Bytes> {
    let mut entries: Vec<ContextEntry<'a>> = entries.into_iter().collect();
    entries.sort_by(|a, b| a.path.cmp(b.path));
    let mut dirs = BTreeSet::new();
    let mut tar = tar::Builder::new(Vec::new());
    for e in &entries {
        let segments: Vec<&str> = e.path.split('/').collect();
        if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
            return Err(Error::Invalid {
                field: "context".to_string(),
                message: format!("path {:?} is not inside the build context", e.path),
            });
        }
        if e.mode & TYPE_MASK == MODE_GITLINK {
            continue;
        }
        for depth in 1..segments.len() {
            let dir = segments[..depth].join("/");
            if dirs.insert(dir.clone()) {
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                append(&mut tar, &mut header, &format!("{dir}/"), &[][..])?;
            }
        }
        match e.mode & TYPE_MASK {
            MODE_SYMLINK => {
                let target = std::str::from_utf8(e.data).map_err(|_| Error::Invalid {
                    field: "context".to_string(),
                    message: format!("symlink {:?} has a target that is not UTF-8", e.path),
                })?;
                let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut header, e.path, target)
                    .map_err(|err| tar_error(e.path, &err))?;
            }
            MODE_DIR => {
                if dirs.insert(e.path.to_string()) {
                    let mut header = header(tar::EntryType::Directory, 0o755, 0);
                    append(&mut tar, &mut header, &format!("{}/", e.path), &[][..])?;
                }
            }
            _ => {
                let perm = match e.mode & 0o7777 {
                    0 => 0o644,
                    p => p,
                };
                let mut header = header(tar::EntryType::Regular, perm, e.data.len() as u64);
                append(&mut tar, &mut header, e.path, e.data)?;
            }
        }
    }
    let bytes = tar.into_inner().map_err(|err| tar_error("(end)", &err))?;
    Ok(Bytes::from(bytes))
}

/// `dockerfile` with one `LABEL` instruction appended setting `labels` on the image it builds
/// (the last stage's).
pub fn with_labels(dockerfile: &[u8], labels: &Labels) -> Vec<u8> {
    let mut out = dockerfile.to_vec();
    if labels.is_empty() {
        return out;
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let quote = |s: &str| {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")
        )
    };
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
        .collect();
    out.extend_from_slice(format!("LABEL {}\n", pairs.join(" ")).as_bytes());
    out
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append(tar: &mut tar::Builder<Vec<u8>>, header: &mut tar::Header, path: &str, data: &[u8]) -> Result<()> {
    tar.append_data(header, path, data)
        .map_err(|err| tar_error(path, &err))
}

fn tar_error(path: &str, err: &std::io::Error) -> Error {
    Error::Invalid {
        field: "context".to_string(),
        message: format!("cannot archive {path:?}: {err}"),
    }
}

impl Docker {
    /// Builds an image from a tar archive of the build context (holding the
    /// Dockerfile) and tags it `tag`. Streams the build output; the last item is
    /// [`BuildEvent::Built`] or an error.
    pub fn build_image(
        &self,
        tag: &str,
        context: impl Stream<Item = Bytes> + Send + 'static,
        options: &BuildOptions,
    ) -> BoxStream<'static, Result<BuildEvent>> {
        let labels: HashMap<String, String> = options.labels.clone().into_iter().collect();
        let build_args: HashMap<String, String> = options.build_args.clone().into_iter().collect();
        let mut builder = BuildImageOptionsBuilder::default()
            .dockerfile(options.dockerfile.as_deref().unwrap_or("Dockerfile"))
            .t(tag)
            .rm(true)
            .forcerm(true)
            .nocache(options.no_cache)
            .labels(&labels)
            .buildargs(&build_args);
        if options.pull {
            builder = builder.pull("1");
        }
        let bollard_options = builder.build();
        self.count("image_build");
        // bollard's build stream borrows the client: drive it from a task that owns a
        // clone, so callers get a 'static stream.
        let client = self.client.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut stream = client.build_image(bollard_options, None, Some(bollard::body_stream(context)));
            let mut built = None;
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(info) => {
                        if let Some(id) = info.aux.and_then(|aux| aux.id) {
                            built = Some(id);
                        }
                        match info.stream.or(info.status) {
                            Some(text) => Ok(text),
                            None => continue,
                        }
                    }
                    // bollard turns `errorDetail` into this variant.
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        Err(Error::Build { message: error })
                    }
                    Err(e) => Err(match Error::from(e) {
                        e @ Error::Unreachable { .. } => e,
                        Error::NotFound { message }
                        | Error::Conflict { message }
                        | Error::Api { message, .. }
                        | Error::Decode { message } => Error::Build { message },
                        other => other,
                    }),
                };
                match event {
                    Ok(text) => {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            if tx.send(Ok(BuildEvent::Log(line.to_string()))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        if tx.send(Err(e)).await.is_err() {
                            tracing::debug!("build stream dropped before its error was read");
                        }
                        return;
                    }
                }
            }
            let last = match built {
                Some(image_id) => Ok(BuildEvent::Built { image_id }),
                None => Err(Error::Build {
                    message: "build output ended without an image id".to_string(),
                }),
            };
            if tx.send(last).await.is_err() {
                tracing::debug!("build stream dropped before its result was read");
            }
        });
        ReceiverStream::new(rx).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Path, type, mode, data and link target of an archived entry.
    type Archived = (String, tar::EntryType, u32, Vec<u8>, Option<String>);

    fn read(tar: &[u8]) -> Vec<Archived> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let kind = e.header().entry_type();
                let mode = e.header().mode().unwrap();
                let link = e.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (path, kind, mode, data, link)
            })
            .collect()
    }

    fn entry<'a>(path: &'a str, mode: u32, data: &'a [u8]) -> ContextEntry<'a> {
        ContextEntry { path, mode, data }
    }

    #[test]
    fn modes_symlinks_and_directories_are_kept() {
        let tar = context_tar([
            entry("web/run.sh", 0o100_755, b"#!/bin/sh\n"),
            entry("web/Dockerfile", 0o100_644, b"FROM scratch\n"),
            entry("web/current", MODE_SYMLINK, b"run.sh"),
            entry("README", 0o100_644, b"hi"),
            entry("vendor/lib", 0o160_000, b"0123"),
        ])
        .unwrap();
        let entries = read(&tar);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["README", "web/", "web/Dockerfile", "web/current", "web/run.sh"],
            "sorted, the directory before its files, the submodule left out"
        );
        let by = |p: &str| entries.iter().find(|e| e.0 == p).unwrap();
        assert_eq!(by("web/").1, tar::EntryType::Directory);
        assert_eq!(by("web/run.sh").2, 0o755);
        assert_eq!(by("web/run.sh").3, b"#!/bin/sh\n");
        assert_eq!(by("web/Dockerfile").2, 0o644);
        assert_eq!(by("web/current").1, tar::EntryType::Symlink);
        assert_eq!(by("web/current").4.as_deref(), Some("run.sh"));
    }

    #[test]
    fn the_same_files_give_the_same_bytes() {
        let a = context_tar([entry("b", 0o100_644, b"2"), entry("a/x", 0o100_644, b"1")]).unwrap();
        let b = context_tar([entry("a/x", 0o100_644, b"1"), entry("b", 0o100_644, b"2")]).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn labels_are_one_instruction_at_the_end() {
        let labels = Labels::from([
            ("dev.berth.name".to_string(), "web".to_string()),
            ("odd".to_string(), "a \"q\" \\ b".to_string()),
        ]);
        let out = with_labels(b"FROM scratch\nCOPY a /a", &labels);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "FROM scratch\nCOPY a /a\nLABEL \"dev.berth.name\"=\"web\" \"odd\"=\"a \\\"q\\\" \\\\ b\"\n"
        );
        assert_eq!(with_labels(b"FROM scratch\n", &Labels::new()), b"FROM scratch\n");
    }

    #[test]
    fn paths_leaving_the_context_are_refused() {
        for bad in ["../etc/passwd", "/etc/passwd", "a//b", "a/./b"] {
            let err = context_tar([entry(bad, 0o100_644, b"")]).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { message, .. } if message.contains("not inside")),
                "{bad}: {err}"
            );
        }
    }
}
