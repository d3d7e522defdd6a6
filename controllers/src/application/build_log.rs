//! Build logs on disk: one bounded file per build, `<dir>/<ns>/<name>/<commit>.log`, which
//! `berth logs app/NAME --build` serves through the API server.
//!
//! # Guarantees
//! - A log never exceeds [`MAX_BYTES`] plus one marker line: past half of it, only the last
//!   lines (up to the other half) are kept, written at [`LogWriter::finish`] after a
//!   `[... N lines omitted ...]` marker — the end of a build, where errors are, survives.
//! - At most [`KEEP`] logs per application: starting a log removes the oldest others.
//!
//! # Caveats
//! - A build that stops mid-way (berth killed) leaves a log without its kept tail.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// Largest log kept per build.
pub const MAX_BYTES: usize = 1 << 20;
/// Logs kept per application.
pub const KEEP: usize = 5;

/// The log file of the build of `commit` of application `ns/name`.
pub fn path(dir: &Path, namespace: &str, name: &str, commit: &str) -> PathBuf {
    app_dir(dir, namespace, name).join(format!("{commit}.log"))
}

/// The directory of an application's build logs.
pub fn app_dir(dir: &Path, namespace: &str, name: &str) -> PathBuf {
    dir.join(namespace).join(name)
}

/// Removes every build log of an application (gone already is fine).
pub async fn remove_all(dir: &Path, namespace: &str, name: &str) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(app_dir(dir, namespace, name)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes one build's log (see the module's guarantees).
#[derive(Debug)]
pub struct LogWriter {
    file: tokio::io::BufWriter<tokio::fs::File>,
    written: usize,
    kept: VecDeque<String>,
    kept_bytes: usize,
    omitted: usize,
}

impl LogWriter {
    /// Starts (truncating) the log of `commit`, removing the application's oldest logs.
    pub async fn create(dir: &Path, namespace: &str, name: &str, commit: &str) -> std::io::Result<Self> {
        let app = app_dir(dir, namespace, name);
        tokio::fs::create_dir_all(&app).await?;
        prune(&app, KEEP.saturating_sub(1), &format!("{commit}.log")).await?;
        let file = tokio::fs::File::create(path(dir, namespace, name, commit)).await?;
        Ok(Self {
            file: tokio::io::BufWriter::new(file),
            written: 0,
            kept: VecDeque::new(),
            kept_bytes: 0,
            omitted: 0,
        })
    }

    /// Appends one line (a newline is added).
    pub async fn line(&mut self, line: &str) -> std::io::Result<()> {
        let size = line.len() + 1;
        if self.written + size <= MAX_BYTES / 2 && self.kept.is_empty() {
            self.file.write_all(line.as_bytes()).await?;
            self.file.write_all(b"\n").await?;
            self.written += size;
            return Ok(());
        }
        self.kept.push_back(line.to_string());
        self.kept_bytes += size;
        while self.kept_bytes > MAX_BYTES / 2 {
            match self.kept.pop_front() {
                Some(old) => {
                    self.kept_bytes -= old.len() + 1;
                    self.omitted += 1;
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Writes the kept last lines and flushes.
    pub async fn finish(mut self) -> std::io::Result<()> {
        if self.omitted > 0 {
            let marker = format!("[... {} lines omitted ...]\n", self.omitted);
            self.file.write_all(marker.as_bytes()).await?;
        }
        for line in &self.kept {
            self.file.write_all(line.as_bytes()).await?;
            self.file.write_all(b"\n").await?;
        }
        self.file.flush().await?;
        self.file.get_mut().sync_all().await
    }
}

/// Keeps the `keep` newest `*.log` files of `dir` (by modification time), besides `except`.
async fn prune(dir: &Path, keep: usize, except: &str) -> std::io::Result<()> {
    let mut logs = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(e) = entries.next_entry().await? {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".log") || name == except {
            continue;
        }
        let modified = e.metadata().await?.modified()?;
        logs.push((modified, e.path()));
    }
    logs.sort();
    let excess = logs.len().saturating_sub(keep);
    for (_, p) in logs.into_iter().take(excess) {
        match tokio::fs::remove_file(&p).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_log_keeps_its_head_and_its_tail_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::create(dir.path(), "ns", "web", "c1").await.unwrap();
        let line = "x".repeat(99);
        let n = 3 * MAX_BYTES / 100;
        for i in 0..n {
            w.line(&format!("{i:06} {line}")).await.unwrap();
        }
        w.line("Step 9/9 : RUN false").await.unwrap();
        w.finish().await.unwrap();
        let text = std::fs::read_to_string(path(dir.path(), "ns", "web", "c1")).unwrap();
        assert!(text.len() <= MAX_BYTES + 64, "{} bytes", text.len());
        assert!(text.starts_with("000000 x"));
        assert!(text.contains("lines omitted ...]\n"));
        assert!(text.ends_with("Step 9/9 : RUN false\n"));
    }

    #[tokio::test]
    async fn a_short_log_is_written_whole_and_old_logs_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..KEEP + 2 {
            let mut w = LogWriter::create(dir.path(), "ns", "web", &format!("c{i}"))
                .await
                .unwrap();
            w.line(&format!("build {i}")).await.unwrap();
            w.finish().await.unwrap();
            // Distinct modification times, oldest first, for the pruning order.
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            let file = std::fs::File::options()
                .write(true)
                .open(path(dir.path(), "ns", "web", &format!("c{i}")))
                .unwrap();
            file.set_modified(at).unwrap();
        }
        let last = std::fs::read_to_string(path(dir.path(), "ns", "web", &format!("c{}", KEEP + 1))).unwrap();
        assert_eq!(last, format!("build {}\n", KEEP + 1));
        let left = std::fs::read_dir(app_dir(dir.path(), "ns", "web"))
            .unwrap()
            .count();
        assert_eq!(left, KEEP);
        assert!(
            !path(dir.path(), "ns", "web", "c0").exists(),
            "the oldest went first"
        );
        remove_all(dir.path(), "ns", "web").await.unwrap();
        assert!(!app_dir(dir.path(), "ns", "web").exists());
        remove_all(dir.path(), "ns", "web").await.unwrap();
    }
}
