//! The backup and restore pipelines: a dump tool's stdout (through `docker exec`) → gzip →
//! sha256 → every storage at once, and back: storage → gunzip → a restore tool's stdin.
//!
//! # Guarantees
//! - Streamed end to end with bounded buffers: the dump is never held in memory (one
//!   [`CHUNK`] of compressed output at a time, plus each storage's own bound).
//! - A backup commits its uploads only after the stream ended cleanly and the tool exited 0;
//!   otherwise every upload is aborted. If one storage fails to commit, the copies already
//!   committed are deleted, so a backup is in all its storages or in none.
//! - Size and sha256 are of the stored (gzip) file, so `sha256sum` of a copy checks it; a
//!   restore recomputes the sha256 and fails on a mismatch.
//! - A tool's failure carries its exit code and the tail of its stderr (and stdout).
//!
//! # Caveats
//! - A restore found corrupt (checksum mismatch) is reported after the tool consumed the
//!   data: restore tools cannot be asked to roll back.

use async_compression::tokio::bufread::{GzipDecoder, GzipEncoder};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::StreamReader;

use super::storage::{self, Upload};
use crate::docker::{self, Docker, ExecRequest, OutputStream};

/// Bytes read from the compressor per step.
pub const CHUNK: usize = 64 * 1024;
/// How much of a tool's stderr is kept for the error message.
pub const STDERR_TAIL: usize = 4 * 1024;

/// A failed backup or restore.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Docker call failed (exec creation, the output stream).
    #[error("docker: {0}")]
    Docker(#[from] docker::Error),
    /// The tool exited non-zero.
    #[error("{tool} exited with code {code}: {output}")]
    Tool {
        /// The program.
        tool: String,
        /// Its exit code.
        code: i64,
        /// The tail of its stderr (or stdout when stderr was empty).
        output: String,
    },
    /// The exec did not report an exit code after its output ended.
    #[error("{0} ended without an exit code")]
    NoExitCode(String),
    /// A storage failed.
    #[error("storage {storage}: {source}")]
    Storage {
        /// The BackupStorage's name.
        storage: String,
        /// Why.
        source: storage::Error,
    },
    /// Streaming between the tool and the storages failed.
    #[error("stream: {0}")]
    Stream(std::io::Error),
    /// The backup read back does not match its recorded checksum.
    #[error("checksum mismatch: expected sha256 {expected}, read {actual}")]
    Checksum {
        /// The recorded sha256.
        expected: String,
        /// The sha256 of what was read.
        actual: String,
    },
}

/// One storage a backup is written to.
#[derive(Debug)]
pub struct Target {
    /// The BackupStorage's name.
    pub name: String,
    /// The storage.
    pub storage: storage::Storage,
    /// The write in progress.
    pub upload: Upload,
}

/// What a finished backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes stored (compressed).
    pub size: u64,
    /// Hex sha256 of the stored bytes.
    pub sha256: String,
    /// `(storage, path)` of each copy.
    pub locations: Vec<(String, String)>,
}

/// A bounded tail of a byte stream.
#[derive(Debug, Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
        if self.0.len() > STDERR_TAIL {
            let cut = self.0.len() - STDERR_TAIL;
            self.0.drain(..cut);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).trim().to_owned()
    }
}

fn tool_name(request: &ExecRequest) -> String {
    request.cmd.first().cloned().unwrap_or_default()
}

async fn check_exit(
    exec: docker::ExecStream,
    request: &ExecRequest,
    stderr: &Tail,
    stdout: &Tail,
) -> Result<(), Error> {
    let code = exec
        .exit_code()
        .await?
        .ok_or_else(|| Error::NoExitCode(tool_name(request)))?;
    if code == 0 {
        return Ok(());
    }
    let output = if stderr.0.is_empty() {
        stdout.text()
    } else {
        stderr.text()
    };
    Err(Error::Tool {
        tool: tool_name(request),
        code,
        output,
    })
}

/// Runs `request` (a dump tool writing to stdout) in `container` and writes its gzip'd
/// output to every target; commits them only when everything succeeded.
pub async fn backup(
    docker: &Docker,
    container: &str,
    request: &ExecRequest,
    mut targets: Vec<Target>,
) -> Result<Outcome, Error> {
    match stream_dump(docker, container, request, &mut targets).await {
        Ok((size, sha256)) => commit(targets, size, sha256).await,
        Err(e) => {
            for t in targets {
                t.upload.abort().await;
            }
            Err(e)
        }
    }
}

async fn stream_dump(
    docker: &Docker,
    container: &str,
    request: &ExecRequest,
    targets: &mut [Target],
) -> Result<(u64, String), Error> {
    let mut exec = docker.exec_with(container, request).await?;
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(Tail::default()));
    let sink = stderr.clone();
    let stdout =
        std::mem::replace(&mut exec.output, futures::stream::empty().boxed()).filter_map(move |item| {
            let out = match item {
                Ok((OutputStream::Stderr, bytes)) => {
                    if let Ok(mut tail) = sink.lock() {
                        tail.push(&bytes);
                    }
                    None
                }
                Ok((_, bytes)) => Some(Ok(bytes)),
                Err(e) => Some(Err(std::io::Error::other(e))),
            };
            futures::future::ready(out)
        });
    // Fastest deflate: dumps are large, often already compressed (pg_dump -Fc), and the
    // run should be bound by the dump tool, not by berth's CPU.
    let mut gzip = GzipEncoder::with_quality(StreamReader::new(stdout), async_compression::Level::Fastest);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = gzip.read(&mut buf).await.map_err(Error::Stream)?;
        if n == 0 {
            break;
        }
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        hasher.update(&chunk);
        size += n as u64;
        for t in targets.iter_mut() {
            t.upload
                .write(chunk.clone())
                .await
                .map_err(|source| Error::Storage {
                    storage: t.name.clone(),
                    source,
                })?;
        }
    }
    let tail = stderr.lock().map(|t| Tail(t.0.clone())).unwrap_or_default();
    check_exit(exec, request, &tail, &Tail::default()).await?;
    Ok((size, hex(&hasher.finalize())))
}

async fn commit(targets: Vec<Target>, size: u64, sha256: String) -> Result<Outcome, Error> {
    let mut committed: Vec<(String, storage::Storage, String)> = Vec::new();
    let mut failure = None;
    let mut rest = Vec::new();
    for t in targets {
        if failure.is_some() {
            rest.push(t);
            continue;
        }
        match t.upload.finish().await {
            Ok(path) => committed.push((t.name, t.storage, path)),
            Err(source) => {
                failure = Some(Error::Storage {
                    storage: t.name,
                    source,
                })
            }
        }
    }
    let Some(e) = failure else {
        return Ok(Outcome {
            size,
            sha256,
            locations: committed.into_iter().map(|(n, _, p)| (n, p)).collect(),
        });
    };
    for t in rest {
        t.upload.abort().await;
    }
    for (name, storage, path) in committed {
        if let Err(err) = storage.delete(&path).await {
            tracing::warn!(storage = %name, path = %path, error = %err, "could not remove a copy of a failed backup");
        }
    }
    Err(e)
}

/// Streams `source` (a gzip'd dump) through gunzip into the stdin of `request` (a restore
/// tool) in `container`; checks `expected_sha256` (of the gzip'd bytes) when given.
pub async fn restore(
    docker: &Docker,
    container: &str,
    request: &ExecRequest,
    source: BoxStream<'static, Result<Bytes, storage::Error>>,
    expected_sha256: Option<&str>,
) -> Result<u64, Error> {
    let mut request = request.clone();
    request.stdin = true;
    let mut exec = docker.exec_with(container, &request).await?;
    let mut stdin = exec
        .stdin
        .take()
        .ok_or_else(|| Error::Stream(std::io::Error::other("exec has no stdin")))?;
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    let h = hasher.clone();
    let hashed = source
        .inspect_ok(move |b| {
            if let Ok(mut h) = h.lock() {
                h.update(b);
            }
        })
        .map_err(std::io::Error::other);
    let mut gunzip = GzipDecoder::new(StreamReader::new(hashed));
    let feed = async move {
        // End of file for the tool even when reading failed, or it would wait forever.
        let copied = tokio::io::copy(&mut gunzip, &mut stdin).await;
        let closed = stdin.shutdown().await;
        let n = copied?;
        closed?;
        Ok::<u64, std::io::Error>(n)
    };
    let output = std::mem::replace(&mut exec.output, futures::stream::empty().boxed());
    let drain = async move {
        let (mut err, mut out) = (Tail::default(), Tail::default());
        let mut output = output;
        while let Some(item) = output.next().await {
            match item? {
                (OutputStream::Stderr, b) => err.push(&b),
                (_, b) => out.push(&b),
            }
        }
        Ok::<_, docker::Error>((err, out))
    };
    let (fed, drained) = tokio::join!(feed, drain);
    let (err, out) = drained?;
    let fed = match fed {
        // A storage or gzip failure is the cause; the tool's complaint about a short
        // input is only its consequence.
        Err(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return Err(Error::Stream(e));
        }
        other => other,
    };
    // The tool's own failure explains a broken pipe better than the pipe does.
    check_exit(exec, &request, &err, &out).await?;
    let restored = fed.map_err(Error::Stream)?;
    if let Some(expected) = expected_sha256 {
        let actual = hasher
            .lock()
            .map(|h| hex(&h.clone().finalize()))
            .unwrap_or_default();
        if actual != expected {
            return Err(Error::Checksum {
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    Ok(restored)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; STDERR_TAIL]);
        t.push(b"the end");
        assert_eq!(t.0.len(), STDERR_TAIL);
        assert!(t.text().ends_with("the end"));
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
