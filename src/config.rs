//! The client configuration file: where the CLI finds the server and its token.
//!
//! `berth serve` writes it on start; the CLI reads it unless `--server`/`--token` (or
//! `BERTH_SERVER`/`BERTH_TOKEN`) say otherwise. Its path is `$BERTH_CONFIG`, else
//! `~/.config/berth/config.yaml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of reading or writing the client configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `$BERTH_CONFIG` nor a home directory tells where the file is.
    #[error("no configuration path: set BERTH_CONFIG or HOME")]
    NoPath,
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("{path} is not a valid berth config: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_yaml::Error,
    },
}

/// What the CLI needs to reach a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:7443`.
    pub server: String,
    /// The bearer token.
    pub token: String,
    /// The Environment the CLI uses for namespaced kinds when `-n` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The configuration file's path.
pub fn path() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("BERTH_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    dirs::config_dir()
        .map(|d| d.join("berth").join("config.yaml"))
        .ok_or(Error::NoPath)
}

/// Reads the configuration at `path`, `None` when the file does not exist.
pub fn read(path: &Path) -> Result<Option<ClientConfig>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_yaml::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Parse {
                path: path.to_owned(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes the configuration to `path` (mode 0600: it holds a token), atomically.
pub fn write(path: &Path, config: &ClientConfig) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let text = serde_yaml::to_string(config).unwrap_or_default();
    let tmp = path.with_extension("yaml.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/config.yaml");
        assert_eq!(read(&p).unwrap(), None);
        let c = ClientConfig {
            server: "http://127.0.0.1:1".into(),
            token: "t".into(),
            namespace: Some("hello-production".into()),
        };
        write(&p, &c).unwrap();
        assert_eq!(read(&p).unwrap(), Some(c));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
