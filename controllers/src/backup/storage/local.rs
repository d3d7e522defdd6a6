//! A local directory as backup storage.
//!
//! # Guarantees
//! - Writes go to `<path>.partial`, are fsync'd, then renamed to `<path>` (and the directory
//!   fsync'd), so a finished name always holds a complete file.
//! - Every path handed in is checked to lie under the root: a forged location cannot make
//!   berth read or delete files elsewhere.
//!
//! # Caveats
//! - Written by the berth process, so the directory must be on the machine berth runs on.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{Error, Pending};

/// The suffix of files being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// A local directory storage.
#[derive(Debug, Clone)]
pub struct Local {
    root: PathBuf,
}

/// A local file being written.
#[derive(Debug)]
pub struct Upload {
    file: tokio::fs::File,
    partial: PathBuf,
    path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn partial_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

impl Local {
    /// A storage rooted at the absolute directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `root/key`.
    pub fn path_of(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    fn checked(&self, path: &str) -> Result<PathBuf, Error> {
        let p = PathBuf::from(path);
        let normal = p
            .strip_prefix(&self.root)
            .ok()
            .filter(|rel| rel.components().all(|c| matches!(c, Component::Normal(_))));
        match normal {
            Some(_) => Ok(p),
            None => Err(Error::OutsideRoot {
                path: path.to_owned(),
                root: self.root.display().to_string(),
            }),
        }
    }

    /// Creates the directory if needed, then writes and removes a probe file.
    pub async fn probe(&self) -> Result<(), Error> {
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(io(&self.root))?;
        let probe = self.root.join(".berth-probe");
        tokio::fs::write(&probe, b"ok").await.map_err(io(&probe))?;
        tokio::fs::remove_file(&probe).await.map_err(io(&probe))
    }

    /// Opens `root/key.partial` for writing.
    pub async fn begin(&self, key: &str) -> Result<Upload, Error> {
        let path = self.checked(&self.path_of(key))?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
        }
        let partial = partial_of(&path);
        let file = tokio::fs::File::create(&partial).await.map_err(io(&partial))?;
        Ok(Upload { file, partial, path })
    }

    /// Removes `<path>.partial`.
    pub async fn abort(&self, pending: &Pending) -> Result<(), Error> {
        let partial = partial_of(&self.checked(&pending.path)?);
        remove_if_present(&partial).await
    }

    /// Streams the file at `path`.
    pub async fn read(&self, path: &str) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        let p = self.checked(path)?;
        let file = tokio::fs::File::open(&p).await.map_err(io(&p))?;
        let display = p.display().to_string();
        Ok(ReaderStream::with_capacity(file, 64 * 1024)
            .map_err(move |source| Error::Io {
                path: display.clone(),
                source,
            })
            .boxed())
    }

    /// Deletes the file at `path` (absent is fine).
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        remove_if_present(&self.checked(path)?).await
    }

    /// Finished files under `root/prefix`, recursively, with their sizes.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.join(prefix)];
        while let Some(dir) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&dir)(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(io(&dir))? {
                let meta = entry.metadata().await.map_err(io(&entry.path()))?;
                let path = entry.path();
                if meta.is_dir() {
                    dirs.push(path);
                } else if !path.to_string_lossy().ends_with(PARTIAL_SUFFIX) {
                    out.push((path.display().to_string(), meta.len()));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

async fn remove_if_present(path: &Path) -> Result<(), Error> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

impl Upload {
    /// The record that lets [`Local::abort`] remove the partial file.
    pub fn pending(&self) -> Pending {
        Pending {
            path: self.path.display().to_string(),
            upload_id: None,
        }
    }

    /// Appends `data` to the partial file.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.file.write_all(data).await.map_err(io(&self.partial))
    }

    /// Flushes, fsyncs and renames the partial file to its final name.
    pub async fn finish(mut self) -> Result<String, Error> {
        self.file.flush().await.map_err(io(&self.partial))?;
        self.file.sync_all().await.map_err(io(&self.partial))?;
        drop(self.file);
        tokio::fs::rename(&self.partial, &self.path)
            .await
            .map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent() {
            let d = tokio::fs::File::open(dir).await.map_err(io(dir))?;
            d.sync_all().await.map_err(io(dir))?;
        }
        Ok(self.path.display().to_string())
    }

    /// Removes the partial file.
    pub async fn abort(self) -> Result<(), Error> {
        drop(self.file);
        remove_if_present(&self.partial).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn partial_files_are_invisible_until_finished_and_aborts_remove_them() {
        let dir = std::env::temp_dir().join(format!("berth-local-{}", std::process::id()));
        let store = Local::new(&dir);
        store.probe().await.unwrap();
        let mut up = store.begin("ns/db/a.gz").await.unwrap();
        up.write(b"hello ").await.unwrap();
        assert!(store.list("").await.unwrap().is_empty(), "partial file listed");
        up.write(b"world").await.unwrap();
        let path = up.finish().await.unwrap();
        assert_eq!(store.list("ns").await.unwrap(), vec![(path.clone(), 11)]);
        let read: Vec<Bytes> = store.read(&path).await.unwrap().try_collect().await.unwrap();
        assert_eq!(read.concat(), b"hello world");

        let mut crashed = store.begin("ns/db/b.gz").await.unwrap();
        crashed.write(b"half").await.unwrap();
        let pending = crashed.pending();
        drop(crashed);
        assert!(partial_of(Path::new(&pending.path)).exists());
        store.abort(&pending).await.unwrap();
        assert!(!partial_of(Path::new(&pending.path)).exists());

        assert!(matches!(
            store.delete("/etc/passwd").await,
            Err(Error::OutsideRoot { .. })
        ));
        assert!(matches!(
            store.delete(&format!("{}/../x", dir.display())).await,
            Err(Error::OutsideRoot { .. })
        ));
        store.delete(&path).await.unwrap();
        store.delete(&path).await.unwrap();
        assert!(store.list("").await.unwrap().is_empty());
        tokio::fs::remove_dir_all(&dir).await.unwrap();
    }
}
