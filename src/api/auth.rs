//! Bearer-token authentication: one admin token kept in the store, viewer tokens from a file.
//!
//! # Guarantees
//! - The admin token is created once per store (the first `berth serve` on it) and shared by
//!   every server on that store; it is never logged.
//! - Tokens are compared in constant time.

use std::path::{Path, PathBuf};

use berth_crds::store::{self, Store};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Store key of the admin token; outside the object prefix, so no list or watch shows it.
const ADMIN_TOKEN_KEY: &str = "/berth-system/admin-token";

/// Errors of setting up authentication.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be read or written.
    #[error("admin token: {0}")]
    Store(#[from] store::Error),
    /// The tokens file could not be read.
    #[error("cannot read tokens file {path}: {source}")]
    ReadTokens {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The tokens file is not valid YAML of the expected shape.
    #[error("tokens file {path} is invalid: {source}")]
    ParseTokens {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_yaml::Error,
    },
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read and watch only.
    Viewer,
}

/// One entry of a tokens file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds it (for logs).
    pub name: String,
    /// The secret token.
    pub token: String,
    /// What it may do.
    pub role: Role,
}

/// The tokens file: `tokens: [{name, token, role}]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    /// The tokens.
    pub tokens: Vec<TokenEntry>,
}

/// The set of accepted tokens.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish()
    }
}

impl Tokens {
    /// Loads the admin token from the store (creating it on first start) and the optional
    /// tokens file. Returns the tokens and the admin token.
    pub async fn load(store: &dyn Store, file: Option<&Path>) -> Result<(Self, String), Error> {
        let admin = admin_token(store).await?;
        let mut entries = vec![TokenEntry {
            name: "admin".into(),
            token: admin.clone(),
            role: Role::Admin,
        }];
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::ReadTokens {
                path: path.to_owned(),
                source,
            })?;
            let parsed: TokensFile = serde_yaml::from_str(&text).map_err(|source| Error::ParseTokens {
                path: path.to_owned(),
                source,
            })?;
            entries.extend(parsed.tokens);
        }
        Ok((Self { entries }, admin))
    }

    /// The role of the bearer token in an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Option<(&str, Role)> {
        let token = header?.strip_prefix("Bearer ")?.trim().as_bytes();
        self.entries
            .iter()
            .find(|e| bool::from(e.token.as_bytes().ct_eq(token)))
            .map(|e| (e.name.as_str(), e.role))
    }
}

async fn admin_token(store: &dyn Store) -> Result<String, store::Error> {
    if let Some(kv) = store.get(ADMIN_TOKEN_KEY).await? {
        return Ok(String::from_utf8_lossy(&kv.value).into_owned());
    }
    let fresh = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    match store.create(ADMIN_TOKEN_KEY, fresh.clone().into_bytes()).await {
        Ok(_) => Ok(fresh),
        // Another server on the same store won the race: use its token.
        Err(store::Error::AlreadyExists { .. }) => match store.get(ADMIN_TOKEN_KEY).await? {
            Some(kv) => Ok(String::from_utf8_lossy(&kv.value).into_owned()),
            None => Err(store::Error::Backend(
                "admin token vanished after creation".into(),
            )),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_token() {
        let t = Tokens {
            entries: vec![
                TokenEntry {
                    name: "a".into(),
                    token: "secret-a".into(),
                    role: Role::Admin,
                },
                TokenEntry {
                    name: "v".into(),
                    token: "secret-v".into(),
                    role: Role::Viewer,
                },
            ],
        };
        assert_eq!(
            t.authenticate(Some("Bearer secret-a")).map(|x| x.1),
            Some(Role::Admin)
        );
        assert_eq!(
            t.authenticate(Some("Bearer secret-v")).map(|x| x.1),
            Some(Role::Viewer)
        );
        assert_eq!(t.authenticate(Some("Bearer nope")), None);
        assert_eq!(t.authenticate(Some("secret-a")), None);
        assert_eq!(t.authenticate(None), None);
    }
}
