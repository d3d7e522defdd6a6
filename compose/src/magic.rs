//! Coolify's magic `SERVICE_*` variables: recognising names and generating values.
//!
//! [`classify`] reads a name the way Coolify does (by counting underscores), [`generate`]
//! makes a fresh value for the generated types, [`declarations`] finds the
//! `SERVICE_FQDN_*` / `SERVICE_URL_*` keys that expose a compose service, and
//! [`service_name_var`] names the `SERVICE_NAME_<SVC>` variable Coolify injects.
//!
//! | name | [`Magic`] |
//! |---|---|
//! | `SERVICE_<TYPE>_<IDENT>` (2 underscores) | the type is `<TYPE>` |
//! | `SERVICE_FQDN_<IDENT>_<PORT>` / `SERVICE_URL_…` (3+) | ident, and the last segment as port when all digits |
//! | `SERVICE_<T1>_<T2>_<IDENT>` (3) | the type is `<T1>_<T2>` (`PASSWORD_64`, `BASE64_128`, `HEX_32`) |
//! | anything else starting `SERVICE_` | [`Magic::Unknown`] |
//!
//! # Guarantees
//! - Values come from the operating system's CSPRNG (`getrandom`); characters are drawn by
//!   rejection sampling, so every character of an alphabet is equally likely.
//! - A `PASSWORD` value has at least one letter and one digit (and, with symbols, one
//!   symbol), like Laravel's `Str::password`: whole draws that miss a class are rejected, so
//!   the result is uniform over the passwords that qualify.
//!
//! # Caveats
//! - `SUPABASEANON` / `SUPABASESERVICE` (JWTs Coolify signs with `SERVICE_PASSWORD_JWT`) are
//!   [`Magic::Unknown`]: berth does not sign them; the user provides them.
//! - `SERVICE_NAME_<SVC>` classifies as [`Magic::Unknown`]; its value is the compose service's
//!   name, which the caller knows (see [`service_name_var`]).
//! - Types are matched case-insensitively; idents are kept as written (`SERVICE_URL_MY_API`
//!   has ident `MY_API`, as Coolify's declaring path keeps the `_`).
//! - A trailing all-digit segment that is not a valid port (`0`, `99999`) is part of the ident.

use serde_yaml::Value;

/// Why a value could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// The variable has no generator (FQDN/URL are computed, unknown ones provided).
    #[error("{0:?} is not a generated magic variable")]
    NotGenerated(Magic),
}

/// What a `SERVICE_*` name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Magic {
    /// `SERVICE_FQDN_<IDENT>[_<PORT>]`: the host (and port) without a scheme.
    Fqdn {
        /// The identifier, as written.
        ident: String,
        /// The `_<PORT>` suffix.
        port: Option<u16>,
    },
    /// `SERVICE_URL_<IDENT>[_<PORT>]`: `scheme://host[:port]`.
    Url {
        /// The identifier, as written.
        ident: String,
        /// The `_<PORT>` suffix.
        port: Option<u16>,
    },
    /// `PASSWORD` (32), `PASSWORD_64`, `PASSWORDWITHSYMBOLS[_64]`.
    Password {
        /// Length in characters.
        len: usize,
        /// Also draws from Coolify's symbol set.
        symbols: bool,
    },
    /// `USER` / `LOWERCASEUSER`: 16 random `[A-Za-z0-9]` (lower-cased).
    User {
        /// `LOWERCASEUSER`.
        lowercase: bool,
    },
    /// `BASE64[_32|_64|_128]`: despite the name, `len` random `[A-Za-z0-9]`.
    Base64 {
        /// Length in characters.
        len: usize,
    },
    /// `REALBASE64[_32|_64|_128]`: standard base64 of `bytes` random bytes.
    RealBase64 {
        /// Random bytes before encoding.
        bytes: usize,
    },
    /// `HEX_32|_64|_128`: `len` lowercase hex characters.
    Hex {
        /// Length in characters.
        len: usize,
    },
    /// No generator (Coolify stores it empty): the user must provide it.
    Unknown,
}

/// Coolify's symbols for `PASSWORDWITHSYMBOLS`.
const SYMBOLS: &str = "~!#$%^&*()-_.,<>?/\\{}[]|:;";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Classifies `name`; `None` when it does not start with `SERVICE_`.
pub fn classify(name: &str) -> Option<Magic> {
    let rest = name.strip_prefix("SERVICE_")?;
    let parts: Vec<&str> = rest.split('_').collect();
    let first = parts.first().map(|s| s.to_ascii_uppercase()).unwrap_or_default();
    if (first == "FQDN" || first == "URL") && parts.len() >= 2 {
        let words = &parts[1..];
        let (ident, port) = match words.split_last() {
            Some((last, init)) if !init.is_empty() => match port_of(last) {
                Some(p) => (init.join("_"), Some(p)),
                None => (words.join("_"), None),
            },
            _ => (words.join("_"), None),
        };
        if ident.is_empty() {
            return Some(Magic::Unknown);
        }
        return Some(if first == "FQDN" {
            Magic::Fqdn { ident, port }
        } else {
            Magic::Url { ident, port }
        });
    }
    let kind = match parts.len() {
        2 => first,
        3 => format!("{first}_{}", parts[1].to_ascii_uppercase()),
        _ => return Some(Magic::Unknown),
    };
    if parts.last().is_some_and(|ident| ident.is_empty()) {
        return Some(Magic::Unknown);
    }
    Some(match kind.as_str() {
        "PASSWORD" => Magic::Password {
            len: 32,
            symbols: false,
        },
        "PASSWORD_64" => Magic::Password {
            len: 64,
            symbols: false,
        },
        "PASSWORDWITHSYMBOLS" => Magic::Password {
            len: 32,
            symbols: true,
        },
        "PASSWORDWITHSYMBOLS_64" => Magic::Password {
            len: 64,
            symbols: true,
        },
        "USER" => Magic::User { lowercase: false },
        "LOWERCASEUSER" => Magic::User { lowercase: true },
        "BASE64" | "BASE64_32" => Magic::Base64 { len: 32 },
        "BASE64_64" => Magic::Base64 { len: 64 },
        "BASE64_128" => Magic::Base64 { len: 128 },
        "REALBASE64" | "REALBASE64_32" => Magic::RealBase64 { bytes: 32 },
        "REALBASE64_64" => Magic::RealBase64 { bytes: 64 },
        "REALBASE64_128" => Magic::RealBase64 { bytes: 128 },
        "HEX_32" => Magic::Hex { len: 32 },
        "HEX_64" => Magic::Hex { len: 64 },
        "HEX_128" => Magic::Hex { len: 128 },
        _ => Magic::Unknown,
    })
}

fn port_of(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// A fresh value for `m`.
pub fn generate(m: &Magic) -> Result<String, Error> {
    use base64::Engine as _;
    match *m {
        Magic::Password { len, symbols } => {
            let alphabet: Vec<char> = if symbols {
                ALNUM.chars().chain(SYMBOLS.chars()).collect()
            } else {
                ALNUM.chars().collect()
            };
            loop {
                let p = draw(&alphabet, len)?;
                let letter = p.chars().any(|c| c.is_ascii_alphabetic());
                let digit = p.chars().any(|c| c.is_ascii_digit());
                let symbol = !symbols || p.chars().any(|c| SYMBOLS.contains(c));
                // A length under the number of classes can never qualify.
                if (letter && digit && symbol) || len < 3 {
                    return Ok(p);
                }
            }
        }
        Magic::User { lowercase } => {
            let u = draw(&ALNUM.chars().collect::<Vec<_>>(), 16)?;
            Ok(if lowercase { u.to_ascii_lowercase() } else { u })
        }
        Magic::Base64 { len } => draw(&ALNUM.chars().collect::<Vec<_>>(), len),
        Magic::RealBase64 { bytes } => {
            let mut buf = vec![0u8; bytes];
            fill(&mut buf)?;
            Ok(base64::engine::general_purpose::STANDARD.encode(buf))
        }
        Magic::Hex { len } => {
            let mut buf = vec![0u8; len.div_ceil(2)];
            fill(&mut buf)?;
            let mut hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
            hex.truncate(len);
            Ok(hex)
        }
        Magic::Fqdn { .. } | Magic::Url { .. } | Magic::Unknown => Err(Error::NotGenerated(m.clone())),
    }
}

fn fill(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

/// `len` characters of `alphabet` (at most 256 long), each uniform by rejection sampling.
fn draw(alphabet: &[char], len: usize) -> Result<String, Error> {
    let n = alphabet.len();
    // The largest multiple of n that fits in a byte's 256 values; bytes at or above it are
    // rejected so that `b % n` is uniform.
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.chars().count() < len {
        fill(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit && out.chars().count() < len {
                out.push(alphabet[b as usize % n]);
            }
        }
    }
    Ok(out)
}

/// The `SERVICE_NAME_<SVC>` variable Coolify injects for compose service `compose_service`:
/// `-` and `.` become `_`, upper-cased.
pub fn service_name_var(compose_service: &str) -> String {
    let svc: String = compose_service
        .chars()
        .map(|c| {
            if c == '-' || c == '.' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    format!("SERVICE_NAME_{svc}")
}

/// A `SERVICE_FQDN_*` / `SERVICE_URL_*` key in a compose service's `environment:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The compose service that declares it.
    pub service: String,
    /// The variable name (`SERVICE_URL_APP_3000`).
    pub name: String,
    /// The declared value as written before interpolation (`/api`, `${SERVICE_URL_APP}`);
    /// `None` for a key-only entry or a null value.
    pub value: Option<String>,
}

/// The declarations of every compose service of `file` (a tree from [`crate::yaml::load`]),
/// in file order. Reads list entries (`KEY=VAL`, `KEY`), mapping entries, and the integer
/// keys a Symfony list merge leaves (see [`crate::yaml`]).
pub fn declarations(file: &Value) -> Vec<Declaration> {
    let mut out = Vec::new();
    let Some(services) = file.get("services").and_then(Value::as_mapping) else {
        return out;
    };
    for (svc, body) in services {
        let Some(service) = svc.as_str() else { continue };
        let entries: Vec<(String, Option<String>)> = match body.get("environment") {
            Some(Value::Sequence(items)) => items.iter().filter_map(list_entry).collect(),
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| match k {
                    Value::Number(_) => list_entry(v),
                    k => Some((scalar(k)?, scalar(v))),
                })
                .collect(),
            _ => Vec::new(),
        };
        for (name, value) in entries {
            if name.starts_with("SERVICE_FQDN_") || name.starts_with("SERVICE_URL_") {
                out.push(Declaration {
                    service: service.to_owned(),
                    name,
                    value,
                });
            }
        }
    }
    out
}

fn list_entry(v: &Value) -> Option<(String, Option<String>)> {
    let s = v.as_str()?;
    Some(match s.split_once('=') {
        Some((k, v)) => (k.trim().to_owned(), Some(v.to_owned())),
        None => (s.trim().to_owned(), None),
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fqdn(ident: &str, port: Option<u16>) -> Option<Magic> {
        Some(Magic::Fqdn {
            ident: ident.into(),
            port,
        })
    }

    fn url(ident: &str, port: Option<u16>) -> Option<Magic> {
        Some(Magic::Url {
            ident: ident.into(),
            port,
        })
    }

    #[test]
    fn classifies() {
        let cases = [
            ("POSTGRES_PASSWORD", None),
            ("SERVICE", None),
            (
                "SERVICE_PASSWORD_POSTGRES",
                Some(Magic::Password {
                    len: 32,
                    symbols: false,
                }),
            ),
            (
                "SERVICE_PASSWORD_64_APP",
                Some(Magic::Password {
                    len: 64,
                    symbols: false,
                }),
            ),
            (
                "SERVICE_PASSWORDWITHSYMBOLS_X",
                Some(Magic::Password {
                    len: 32,
                    symbols: true,
                }),
            ),
            (
                "SERVICE_PASSWORDWITHSYMBOLS_64_X",
                Some(Magic::Password {
                    len: 64,
                    symbols: true,
                }),
            ),
            ("SERVICE_PASSWORD_MY_DB", Some(Magic::Unknown)),
            ("SERVICE_PASSWORD_MY_BIG_DB", Some(Magic::Unknown)),
            ("SERVICE_USER_POSTGRES", Some(Magic::User { lowercase: false })),
            ("SERVICE_LOWERCASEUSER_X", Some(Magic::User { lowercase: true })),
            ("SERVICE_BASE64_X", Some(Magic::Base64 { len: 32 })),
            ("SERVICE_BASE64_32_X", Some(Magic::Base64 { len: 32 })),
            ("SERVICE_BASE64_64_X", Some(Magic::Base64 { len: 64 })),
            ("SERVICE_BASE64_128_X", Some(Magic::Base64 { len: 128 })),
            ("SERVICE_REALBASE64_X", Some(Magic::RealBase64 { bytes: 32 })),
            ("SERVICE_REALBASE64_64_X", Some(Magic::RealBase64 { bytes: 64 })),
            ("SERVICE_REALBASE64_128_X", Some(Magic::RealBase64 { bytes: 128 })),
            ("SERVICE_HEX_32_X", Some(Magic::Hex { len: 32 })),
            ("SERVICE_HEX_64_X", Some(Magic::Hex { len: 64 })),
            ("SERVICE_HEX_128_X", Some(Magic::Hex { len: 128 })),
            ("SERVICE_HEX_X", Some(Magic::Unknown)),
            ("SERVICE_SUPABASEANON_KEY", Some(Magic::Unknown)),
            ("SERVICE_SUPABASESERVICE_KEY", Some(Magic::Unknown)),
            ("SERVICE_NAME_DB", Some(Magic::Unknown)),
            ("SERVICE_FOO_BAR", Some(Magic::Unknown)),
            ("SERVICE_PASSWORD_", Some(Magic::Unknown)),
            ("SERVICE_FQDN_APP", fqdn("APP", None)),
            ("SERVICE_URL_APP", url("APP", None)),
            ("SERVICE_URL_APP_3000", url("APP", Some(3000))),
            ("SERVICE_FQDN_APP_3000", fqdn("APP", Some(3000))),
            ("SERVICE_URL_MY_API", url("MY_API", None)),
            ("SERVICE_URL_MY_API_8080", url("MY_API", Some(8080))),
            ("SERVICE_URL_A_B_C", url("A_B_C", None)),
            ("SERVICE_URL_APP_99999", url("APP_99999", None)),
            ("SERVICE_URL_3000", url("3000", None)),
            ("SERVICE_URL_", Some(Magic::Unknown)),
        ];
        for (name, want) in cases {
            assert_eq!(classify(name), want, "{name}");
        }
    }

    #[test]
    fn generates() {
        type Check<'a> = &'a dyn Fn(char) -> bool;
        let cases: [(Magic, usize, Check<'_>); 7] = [
            (
                Magic::Password {
                    len: 32,
                    symbols: false,
                },
                32,
                &|c| c.is_ascii_alphanumeric(),
            ),
            (
                Magic::Password {
                    len: 64,
                    symbols: true,
                },
                64,
                &|c| c.is_ascii_alphanumeric() || SYMBOLS.contains(c),
            ),
            (Magic::User { lowercase: false }, 16, &|c| {
                c.is_ascii_alphanumeric()
            }),
            (Magic::User { lowercase: true }, 16, &|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit()
            }),
            (Magic::Base64 { len: 128 }, 128, &|c| c.is_ascii_alphanumeric()),
            (Magic::RealBase64 { bytes: 64 }, 88, &|c| {
                c.is_ascii_alphanumeric() || "+/=".contains(c)
            }),
            (Magic::Hex { len: 64 }, 64, &|c| {
                c.is_ascii_digit() || ('a'..='f').contains(&c)
            }),
        ];
        for (m, len, ok) in cases {
            for _ in 0..20 {
                let v = generate(&m).unwrap();
                assert_eq!(v.chars().count(), len, "{m:?}");
                assert!(v.chars().all(ok), "{m:?}: {v}");
            }
        }
        for _ in 0..200 {
            let p = generate(&Magic::Password {
                len: 32,
                symbols: false,
            })
            .unwrap();
            assert!(p.chars().any(|c| c.is_ascii_alphabetic()) && p.chars().any(|c| c.is_ascii_digit()));
            let s = generate(&Magic::Password {
                len: 32,
                symbols: true,
            })
            .unwrap();
            assert!(s.chars().any(|c| SYMBOLS.contains(c)));
        }
        assert_eq!(generate(&Magic::RealBase64 { bytes: 32 }).unwrap().len(), 44);
        assert_eq!(generate(&Magic::RealBase64 { bytes: 128 }).unwrap().len(), 172);
        assert!(generate(&Magic::Unknown).is_err());
        assert!(
            generate(&Magic::Url {
                ident: "A".into(),
                port: None
            })
            .is_err()
        );
        assert_ne!(
            generate(&Magic::Base64 { len: 32 }).unwrap(),
            generate(&Magic::Base64 { len: 32 }).unwrap()
        );
    }

    #[test]
    fn names_service_variables() {
        assert_eq!(service_name_var("my-app.web"), "SERVICE_NAME_MY_APP_WEB");
        assert_eq!(service_name_var("db"), "SERVICE_NAME_DB");
    }

    #[test]
    fn finds_declarations() {
        let tree = crate::yaml::load(
            "x: &e [SERVICE_URL_W_3000]\nservices:\n  app:\n    environment:\n      - SERVICE_URL_API_8080=/api\n      - SERVICE_FQDN_APP\n      - OTHER=${SERVICE_URL_APP}\n  web:\n    environment:\n      <<: *e\n      SERVICE_FQDN_WEB: ${SERVICE_FQDN_WEB}\n      SERVICE_URL_N:\n",
        )
        .unwrap();
        let got: Vec<(String, String, Option<String>)> = declarations(&tree)
            .into_iter()
            .map(|d| (d.service, d.name, d.value))
            .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            got,
            vec![
                (s("app"), s("SERVICE_URL_API_8080"), Some(s("/api"))),
                (s("app"), s("SERVICE_FQDN_APP"), None),
                (s("web"), s("SERVICE_URL_W_3000"), None),
                (s("web"), s("SERVICE_FQDN_WEB"), Some(s("${SERVICE_FQDN_WEB}"))),
                (s("web"), s("SERVICE_URL_N"), None),
            ]
        );
    }
}
