//! What a command line names: kinds in any spelling, `KIND NAME` or `KIND/NAME`, and the
//! Environment (namespace) to use.
//!
//! # Guarantees
//! - Every failure here is [`Error::Usage`] (exit code 2).

use berth_crds::registry::{self, KindInfo};

use super::error::{Error, Result};

/// `-n`/`-A`, shared by the verbs that read or delete objects.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NamespaceArgs {
    /// The Environment (namespace) of namespaced kinds; default: `namespace` in the config file.
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Option<String>,
}

/// Resolves a kind from its kind, plural, singular or short name (any case); a plural `s`
/// on a short name is accepted too (`envs`, `dbs`).
pub fn kind(name: &str) -> Result<&'static KindInfo> {
    let short_plural = || {
        let stem = name.strip_suffix('s')?;
        registry::lookup(stem).filter(|k| k.short_names.iter().any(|s| s.eq_ignore_ascii_case(stem)))
    };
    registry::lookup(name).or_else(short_plural).ok_or_else(|| {
        let known: Vec<&str> = registry::kinds().iter().map(|k| k.plural).collect();
        Error::Usage(format!("unknown kind {name:?}: berth knows {}", known.join(", ")))
    })
}

/// Splits `KIND/NAME` or `KIND` `NAME...` into the kind and the names.
pub fn kind_and_names(first: &str, rest: &[String]) -> Result<(&'static KindInfo, Vec<String>)> {
    match first.split_once('/') {
        Some((k, n)) if !rest.is_empty() => Err(Error::Usage(format!(
            "{k}/{n}: give either KIND/NAME or KIND NAME..., not both"
        ))),
        Some((_, "")) => Err(Error::Usage(format!("{first}: the name after '/' is missing"))),
        Some((k, n)) => Ok((kind(k)?, vec![n.to_owned()])),
        None => Ok((kind(first)?, rest.to_vec())),
    }
}

/// The namespace for `info`: `None` for cluster-scoped kinds and for `-A`, else `-n`, else
/// the config file's default; a namespaced kind without any of them is a usage error.
pub fn namespace(
    info: &KindInfo,
    flag: Option<&str>,
    all: bool,
    default: Option<&str>,
) -> Result<Option<String>> {
    if !info.namespaced || all {
        return Ok(None);
    }
    flag.or(default).map(|ns| Some(ns.to_owned())).ok_or_else(|| {
        Error::Usage(format!(
            "{} are a namespaced kind: use -n ENVIRONMENT or -A",
            info.plural
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_resolve_in_every_spelling() {
        for n in [
            "app",
            "apps",
            "application",
            "Applications",
            "db",
            "dbs",
            "env",
            "envs",
        ] {
            assert!(kind(n).is_ok(), "{n}");
        }
        let err = kind("pods").unwrap_err();
        assert!(matches!(err, Error::Usage(_)));
        assert!(err.to_string().contains("unknown kind \"pods\""));
    }

    #[test]
    fn kind_slash_name_and_kind_name_are_both_accepted() {
        let (k, names) = kind_and_names("app/web", &[]).unwrap();
        assert_eq!((k.kind, names), ("Application", vec!["web".to_string()]));
        let (k, names) = kind_and_names("db", &["a".into(), "b".into()]).unwrap();
        assert_eq!((k.kind, names.len()), ("Database", 2));
        assert!(kind_and_names("app/web", &["x".into()]).is_err());
        assert!(kind_and_names("app/", &[]).is_err());
    }

    #[test]
    fn namespaced_kinds_need_a_namespace() {
        let app = kind("app").unwrap();
        let proj = kind("project").unwrap();
        assert_eq!(namespace(proj, Some("x"), false, None).unwrap(), None);
        assert_eq!(namespace(app, None, true, None).unwrap(), None);
        assert_eq!(
            namespace(app, Some("a"), false, Some("b")).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(
            namespace(app, None, false, Some("b")).unwrap().as_deref(),
            Some("b")
        );
        let err = namespace(app, None, false, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "applications are a namespaced kind: use -n ENVIRONMENT or -A"
        );
    }
}
