//! Files seeded once on the server, for `spec.files` of an Application: written under the
//! host root at `<host root>/files/<namespace>/<app>/<mount path>`, then bind-mounted into
//! the containers as files.
//!
//! # Guarantees
//! - [`seed`] writes a file only when nothing is at its path yet (`create_new`): once it
//!   exists, its content is the server's, so edits made on the server survive every later
//!   reconcile and rollout, and a changed `content` in the spec does not overwrite them
//!   (delete the file on the server to seed it again).
//! - A directory (or anything but a regular file) in a file's place is an error naming the
//!   path; it is never removed or replaced.
//! - New files are mode `0644` (owner read-write, world-readable, not executable) so that a
//!   container running as any user can read them; make one executable on the server
//!   (`chmod +x`), which, being the server's, is kept. Parent directories are created.
//!
//! # Caveats
//! - The files are written on the filesystem of the berth process: they are the server's
//!   only for the `localhost` server (the controller refuses `spec.files` elsewhere).
//! - Files are left on the server when the Application is deleted, as data is.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// The mode of seeded files.
pub const FILE_MODE: u32 = 0o644;

/// Why a file could not be seeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Something other than a regular file is at the path (a directory, say).
    #[error("{field}: {path} exists and is not a regular file; it is left as it is")]
    NotAFile {
        /// The field, e.g. `spec.files[0]`.
        field: String,
        /// The path on the server.
        path: String,
    },
    /// The filesystem refused (permissions, a file where a parent directory should be...).
    #[error("{field}: cannot write {path}: {message}")]
    Io {
        /// The field, e.g. `spec.files[0]`.
        field: String,
        /// The path on the server.
        path: String,
        /// The operating system's words.
        message: String,
    },
}

/// What [`seed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// The file was written.
    Created,
    /// A file was already there and was left alone.
    Kept,
}

/// The server path of the file mounted at `mount_path` (absolute, validated by admission)
/// for Application `namespace/app`.
pub fn path_of(root: &Path, namespace: &str, app: &str, mount_path: &str) -> PathBuf {
    root.join("files")
        .join(namespace)
        .join(app)
        .join(mount_path.trim_start_matches('/'))
}

/// Writes `content` at `path` unless something is there already (see the module docs);
/// `field` names the spec field in errors.
pub async fn seed(field: &str, path: &Path, content: &str) -> Result<Seeded, Error> {
    let io = |e: std::io::Error| Error::Io {
        field: field.to_owned(),
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let not_a_file = || Error::NotAFile {
        field: field.to_owned(),
        path: path.display().to_string(),
    };
    match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.is_file() => return Ok(Seeded::Kept),
        Ok(_) => return Err(not_a_file()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    let mut file = match options.open(path).await {
        Ok(f) => f,
        // Created in between (another reconcile): the server's file wins.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return match tokio::fs::symlink_metadata(path).await {
                Ok(m) if m.is_file() => Ok(Seeded::Kept),
                _ => Err(not_a_file()),
            };
        }
        Err(e) => return Err(io(e)),
    };
    file.write_all(content.as_bytes()).await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    tracing::info!(path = %path.display(), "seeded file");
    Ok(Seeded::Created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_files_namespace_app() {
        assert_eq!(
            path_of(Path::new("/srv/berth"), "shop", "web", "/etc/app/config.ini"),
            PathBuf::from("/srv/berth/files/shop/web/etc/app/config.ini")
        );
    }

    #[tokio::test]
    async fn a_file_is_seeded_once_and_edits_on_the_server_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_of(dir.path(), "ns", "app", "/etc/app.conf");
        assert_eq!(seed("spec.files[0]", &path, "v1").await, Ok(Seeded::Created));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "v1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            // The process umask may only take bits away.
            assert_eq!(mode & !FILE_MODE, 0, "{mode:o}");
        }
        std::fs::write(&path, "edited").unwrap();
        assert_eq!(seed("spec.files[0]", &path, "v2").await, Ok(Seeded::Kept));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "edited");
    }

    #[tokio::test]
    async fn a_directory_in_the_way_is_an_error_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_of(dir.path(), "ns", "app", "/etc/app.conf");
        std::fs::create_dir_all(path.join("inside")).unwrap();
        let err = seed("spec.files[1]", &path, "x").await.unwrap_err();
        assert!(matches!(&err, Error::NotAFile { .. }), "{err}");
        let message = err.to_string();
        assert!(message.starts_with("spec.files[1]: "), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(path.join("inside").is_dir());
    }
}
