//! A Database's credentials: generated into a Secret it owns, or read from the Secret that
//! `spec.credentialsSecretRef` names.
//!
//! # Guarantees
//! - Generated passwords are 32 characters from `[A-Za-z0-9]` drawn from the operating
//!   system's CSPRNG (`getrandom`) by rejection sampling: about 190 bits, no bias, safe in
//!   URLs and shells.
//! - The generated Secret is named `<database>-credentials`, typed
//!   [`SECRET_TYPE`], and owned by the Database (ownerReference with `controller: true`),
//!   so it is deleted with it.
//! - Nothing here logs or formats a password: errors name the Secret and key only.
//!
//! # Caveats
//! - A Secret given by reference must hold `password`; `username` and `database` default
//!   to the engine's defaults when absent.

use berth_crds::{
    API_VERSION, Object, Resource,
    kinds::{DatabaseSpec, SecretSpec},
    meta::OwnerReference,
};

use super::engine::{Credentials, Engine};

/// `spec.type` of generated credential Secrets.
pub const SECRET_TYPE: &str = "berth.dev/database-credentials";
/// Length of generated passwords.
pub const PASSWORD_LEN: usize = 32;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Why credentials are unavailable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system's random source failed.
    #[error("cannot generate a password: {0}")]
    Random(String),
    /// The Secret lacks a required key.
    #[error("secret {secret:?} has no key {key:?}")]
    MissingKey {
        /// The Secret.
        secret: String,
        /// The key.
        key: &'static str,
    },
}

/// A fresh random password.
pub fn generate_password() -> Result<String, Error> {
    let mut out = String::with_capacity(PASSWORD_LEN);
    // 62 symbols: accept bytes below 248 (= 4 * 62) so every symbol is equally likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    while out.len() < PASSWORD_LEN {
        let mut buf = [0u8; 64];
        getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
        for b in buf.into_iter().filter(|b| *b < limit) {
            if out.len() == PASSWORD_LEN {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// The generated Secret's name.
pub fn secret_name(database: &str) -> String {
    format!("{database}-credentials")
}

/// The generated Secret for Database `db`.
pub fn secret_object(db: &Object<DatabaseSpec>, c: &Credentials) -> Object<SecretSpec> {
    let spec = SecretSpec {
        type_: Some(SECRET_TYPE.to_owned()),
        data: [
            ("username", &c.username),
            ("password", &c.password),
            ("database", &c.database),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect(),
    };
    let mut secret = Object::new(
        Some(db.namespace().unwrap_or_default()),
        &secret_name(db.name()),
        spec,
    );
    secret.metadata.owner_references.push(OwnerReference {
        api_version: API_VERSION.to_owned(),
        kind: DatabaseSpec::KIND.to_owned(),
        name: db.name().to_owned(),
        uid: db.uid().to_owned(),
        controller: Some(true),
        block_owner_deletion: None,
    });
    secret
}

/// Whether `secret` is owned by `db`.
pub fn owned_by(secret: &Object<SecretSpec>, db: &Object<DatabaseSpec>) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .any(|o| o.kind == DatabaseSpec::KIND && o.uid == db.uid())
}

/// The credentials in `secret`, with the engine's defaults for a missing username or
/// database (`db_name` is the Database's name).
pub fn from_secret(
    secret: &Object<SecretSpec>,
    engine: &Engine,
    db_name: &str,
) -> Result<Credentials, Error> {
    let key = |k: &str| secret.spec.data.get(k).filter(|v| !v.is_empty()).cloned();
    let password = key("password").ok_or_else(|| Error::MissingKey {
        secret: secret.name().to_owned(),
        key: "password",
    })?;
    let defaults = engine.default_credentials(db_name, password);
    Ok(Credentials {
        username: key("username").unwrap_or(defaults.username),
        database: key("database").unwrap_or(defaults.database),
        password: defaults.password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::engine::engine;
    use berth_crds::kinds::database::DatabaseEngine;

    #[test]
    fn passwords_are_long_random_and_url_safe() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        // Every symbol turns up over many draws (no truncated alphabet).
        let many: String = (0..200).map(|_| generate_password().unwrap()).collect();
        for c in ALPHABET {
            assert!(many.as_bytes().contains(c), "{}", char::from(*c));
        }
    }

    fn database(uid: &str) -> Object<DatabaseSpec> {
        let spec = serde_json::from_str(r#"{"engine":"postgresql","destination":"default"}"#).unwrap();
        let mut db = Object::new(Some("shop"), "orders", spec);
        db.metadata.uid = Some(uid.into());
        db
    }

    fn secret(name: &str, data: &[(&str, &str)]) -> Object<SecretSpec> {
        let spec = SecretSpec {
            type_: None,
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        Object::new(Some("shop"), name, spec)
    }

    #[test]
    fn the_generated_secret_is_owned_by_the_database() {
        let db = database("u1");
        let c = Credentials {
            username: "postgres".into(),
            password: "pw".into(),
            database: "orders".into(),
        };
        let s = secret_object(&db, &c);
        assert_eq!(s.name(), "orders-credentials");
        assert_eq!(s.namespace(), Some("shop"));
        assert_eq!(s.metadata.owner_references[0].uid, "u1");
        assert_eq!(s.metadata.owner_references[0].controller, Some(true));
        assert_eq!(s.spec.type_.as_deref(), Some(SECRET_TYPE));
        assert_eq!(s.spec.data["password"], "pw");
        assert!(owned_by(&s, &db));
        let other = database("u2");
        assert!(!owned_by(&s, &other));
        let t = engine(DatabaseEngine::Postgresql);
        assert_eq!(from_secret(&s, t, "orders").unwrap(), c);
    }

    #[test]
    fn a_referenced_secret_needs_a_password_and_gets_defaults() {
        let t = engine(DatabaseEngine::Mariadb);
        let s = secret("mine", &[("password", "pw")]);
        let c = from_secret(&s, t, "my-db").unwrap();
        assert_eq!((c.username.as_str(), c.database.as_str()), ("berth", "my_db"));
        let none = secret("mine", &[("username", "u")]);
        assert_eq!(
            from_secret(&none, t, "x").unwrap_err().to_string(),
            "secret \"mine\" has no key \"password\""
        );
    }
}
