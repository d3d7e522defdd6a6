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

use serde_json::{Value, json};

use super::engine::{Credentials, Engine};
use crate::object;

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

/// The generated Secret for `db` (a Database object).
pub fn secret_object(db: &Value, c: &Credentials) -> Value {
    json!({
        "apiVersion": "berth.dev/v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(object::name(db)),
            "namespace": object::namespace(db).unwrap_or_default(),
            "ownerReferences": [{
                "apiVersion": "berth.dev/v1",
                "kind": "Database",
                "name": object::name(db),
                "uid": object::uid(db),
                "controller": true,
            }],
        },
        "spec": {
            "type": SECRET_TYPE,
            "data": {
                "username": c.username,
                "password": c.password,
                "database": c.database,
            },
        },
    })
}

/// Whether `secret` is owned by `db`.
pub fn owned_by(secret: &Value, db: &Value) -> bool {
    object::owners(secret)
        .iter()
        .any(|(kind, _, uid)| kind == "Database" && uid == object::uid(db))
}

/// The credentials in `secret`, with the engine's defaults for a missing username or
/// database (`db_name` is the Database's name).
pub fn from_secret(secret: &Value, engine: &Engine, db_name: &str) -> Result<Credentials, Error> {
    let key = |k: &str| {
        secret
            .pointer(&format!("/spec/data/{k}"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let password = key("password").ok_or_else(|| Error::MissingKey {
        secret: object::name(secret).to_owned(),
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

    #[test]
    fn the_generated_secret_is_owned_by_the_database() {
        let db = json!({"metadata": {"name": "orders", "namespace": "shop", "uid": "u1"}});
        let c = Credentials {
            username: "postgres".into(),
            password: "pw".into(),
            database: "orders".into(),
        };
        let s = secret_object(&db, &c);
        assert_eq!(s["metadata"]["name"], "orders-credentials");
        assert_eq!(s["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(s["spec"]["data"]["password"], "pw");
        assert!(owned_by(&s, &db));
        let other = json!({"metadata": {"name": "orders", "namespace": "shop", "uid": "u2"}});
        assert!(!owned_by(&s, &other));
        let t = engine(DatabaseEngine::Postgresql);
        assert_eq!(from_secret(&s, t, "orders").unwrap(), c);
    }

    #[test]
    fn a_referenced_secret_needs_a_password_and_gets_defaults() {
        let t = engine(DatabaseEngine::Mariadb);
        let s = json!({"metadata": {"name": "mine"}, "spec": {"data": {"password": "pw"}}});
        let c = from_secret(&s, t, "my-db").unwrap();
        assert_eq!((c.username.as_str(), c.database.as_str()), ("berth", "my_db"));
        let none = json!({"metadata": {"name": "mine"}, "spec": {"data": {"username": "u"}}});
        assert_eq!(
            from_secret(&none, t, "x").unwrap_err().to_string(),
            "secret \"mine\" has no key \"password\""
        );
    }
}
