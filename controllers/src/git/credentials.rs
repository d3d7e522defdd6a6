//! Credentials for a remote: basic auth (or a token) over HTTP, a private key over SSH.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

use super::Error;

/// How to authenticate to a remote.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP basic auth; a token goes in `password`.
    Basic {
        /// The user name (`git` when a Secret gives only a token).
        username: String,
        /// The password or access token.
        password: String,
    },
    /// An SSH private key, and optionally the server's `known_hosts` line.
    SshKey {
        /// The private key (OpenSSH or PEM).
        private_key: String,
        /// A `known_hosts` line (`host keytype base64key`); without one the user's
        /// `~/.ssh/known_hosts` decides.
        known_host: Option<String>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            Self::SshKey { known_host, .. } => f
                .debug_struct("SshKey")
                .field("known_host", known_host)
                .finish_non_exhaustive(),
        }
    }
}

impl Credentials {
    /// Credentials from a Secret's data: `username` + `password`, or `token` (with an optional
    /// `username`), or `identity` (an SSH private key) with an optional `knownHosts` line.
    pub fn from_secret_data(data: &BTreeMap<String, String>) -> Result<Self, Error> {
        if let Some(key) = data.get("identity") {
            return Ok(Self::SshKey {
                private_key: key.clone(),
                known_host: data
                    .get("knownHosts")
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            });
        }
        let username = data.get("username").cloned();
        if let Some(token) = data.get("token") {
            return Ok(Self::Basic {
                username: username.unwrap_or_else(|| "git".to_string()),
                password: token.clone(),
            });
        }
        match (username, data.get("password")) {
            (Some(username), Some(password)) => Ok(Self::Basic {
                username,
                password: password.clone(),
            }),
            (Some(_), None) => Err(Error::InvalidCredentials(
                "key \"username\" needs \"password\"".to_string(),
            )),
            _ => Err(Error::InvalidCredentials(
                "needs keys \"username\" and \"password\", \"token\", or \"identity\"".to_string(),
            )),
        }
    }

    /// The secret strings, to scrub from error messages.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match self {
            Self::Basic { password, .. } => vec![password.as_str()],
            Self::SshKey { private_key, .. } => vec![private_key.as_str()],
        }
    }
}

/// Whether the raw host key `key` is the one a `known_hosts` line names (the host field is
/// not checked: the line is configured for this repository).
pub(crate) fn host_key_matches(known_host: &str, key: &[u8]) -> bool {
    let encoded = base64::engine::general_purpose::STANDARD.encode(key);
    known_host.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.windows(2).any(|w| is_key_type(w[0]) && w[1] == encoded)
    })
}

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secrets_become_credentials() {
        assert_eq!(
            Credentials::from_secret_data(&data(&[("username", "u"), ("password", "p")])).unwrap(),
            Credentials::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert_eq!(
            Credentials::from_secret_data(&data(&[("token", "t")])).unwrap(),
            Credentials::Basic {
                username: "git".into(),
                password: "t".into()
            }
        );
        assert_eq!(
            Credentials::from_secret_data(&data(&[
                ("identity", "KEY"),
                ("knownHosts", "h ssh-ed25519 AAAA\n")
            ]))
            .unwrap(),
            Credentials::SshKey {
                private_key: "KEY".into(),
                known_host: Some("h ssh-ed25519 AAAA".into())
            }
        );
        let err = Credentials::from_secret_data(&data(&[("username", "u")])).unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
        assert!(Credentials::from_secret_data(&data(&[])).is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn host_keys_match_known_host_lines() {
        let key = b"\x00\x00\x00\x0bssh-ed25519raw";
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        assert!(host_key_matches(
            &format!("[git.example]:22 ssh-ed25519 {encoded}"),
            key
        ));
        assert!(host_key_matches(&format!("ssh-ed25519 {encoded} comment"), key));
        assert!(!host_key_matches("git.example ssh-ed25519 AAAAother", key));
    }
}
