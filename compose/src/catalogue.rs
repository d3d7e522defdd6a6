//! berth's own service templates (`manifests/templates/`), compiled into the binary.
//!
//! Each template is a compose file in Coolify's dialect whose header carries Coolify's
//! metadata lines and berth's `# param: NAME: description` lines (see
//! [`TemplateMeta::from_header`]). [`all`] lists them, [`get`] finds one by name, and
//! [`variables`] lists the `${VAR}` forms a text references, with their defaults.
//!
//! # Guarantees
//! - [`all`] is sorted by name; a name is the file's stem and a DNS-1123 label.
//! - Every template has a documentation URL, slogan, category, tags and port, declares a
//!   `# param:` line for exactly the non-`SERVICE_*` variables it references, and reads
//!   through [`crate::yaml::load`], [`crate::interpolate::apply`] and
//!   [`crate::model::ComposeFile::from_value`] without a refusal (the module's tests check
//!   all of this, file by file).
//!
//! # Caveats
//! - The texts are included at compile time: a file added to `manifests/templates/` must be
//!   added to the list here too (a test fails until it is).
//! - [`variables`] is a plain text scanner: it does not know YAML, so it also sees `$` forms
//!   in comments and in `content:` blocks, which compose never interpolates. berth's
//!   templates keep those free of `$`; the tests cross-check the scanner against
//!   [`crate::interpolate::references`].

use crate::model::TemplateMeta;

/// One template of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// The template's name (its file's stem, e.g. `wordpress`).
    pub name: &'static str,
    /// The compose text, header comments included.
    pub text: &'static str,
}

impl Template {
    /// The template's header metadata.
    pub fn meta(&self) -> TemplateMeta {
        TemplateMeta::from_header(self.text)
    }
}

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(Template {
            name: $name,
            text: include_str!(concat!("../../manifests/templates/", $name, ".yaml")),
        }),*]
    };
}

/// The catalogue, sorted by name.
static ALL: &[Template] = templates![
    "ghost",
    "gitea",
    "grafana",
    "metabase",
    "minio",
    "n8n",
    "nextcloud",
    "plausible",
    "umami",
    "uptime-kuma",
    "vaultwarden",
    "wordpress",
];

/// Every template, sorted by name.
pub fn all() -> &'static [Template] {
    ALL
}

/// The template called `name`, if there is one.
pub fn get(name: &str) -> Option<&'static Template> {
    ALL.iter().find(|t| t.name == name)
}

/// A variable a compose text references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// The `word` of its first `${NAME:-word}` or `${NAME-word}` form, if any.
    pub default: Option<String>,
}

/// Every variable `text` references (`$NAME`, `${NAME}`, `${NAME<op>word}`), once each, in
/// order of first appearance; `$$` is a literal `$`. Forms nested in a `word` count too.
pub fn variables(text: &str) -> Vec<Variable> {
    let mut out = Vec::new();
    scan(text, &mut out);
    out
}

fn scan(text: &str, out: &mut Vec<Variable>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i + 2;
                let name_end = name_end(bytes, start);
                let Some(close) = closing_brace(bytes, start) else {
                    return;
                };
                let name = &text[start..name_end];
                let rest = &text[name_end..close];
                let default = rest
                    .strip_prefix(":-")
                    .or_else(|| rest.strip_prefix('-'))
                    .map(str::to_owned);
                if !name.is_empty() {
                    note(out, name, default);
                }
                // The word after any operator may hold forms of its own.
                let word = rest.trim_start_matches([':', '-', '?', '+']);
                scan(word, out);
                i = close + 1;
            }
            Some(_) => {
                let end = name_end(bytes, i + 1);
                if end > i + 1 && !bytes[i + 1].is_ascii_digit() {
                    note(out, &text[i + 1..end], None);
                }
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
}

/// Records `name`, keeping the first default seen.
fn note(out: &mut Vec<Variable>, name: &str, default: Option<String>) {
    match out.iter_mut().find(|v| v.name == name) {
        Some(v) => {
            if v.default.is_none() {
                v.default = default;
            }
        }
        None => out.push(Variable {
            name: name.to_owned(),
            default,
        }),
    }
}

/// The end of the `[A-Za-z0-9_]*` run starting at `from`.
fn name_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    i
}

/// The `}` closing a `${` whose body starts at `from`, counting nested braces.
fn closing_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in bytes.iter().enumerate().skip(from) {
        match b {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::magic::{self, Magic};
    use crate::model::{ComposeFile, DependencyCondition, MountSource};

    fn v(name: &str, default: Option<&str>) -> Variable {
        Variable {
            name: name.to_owned(),
            default: default.map(str::to_owned),
        }
    }

    #[test]
    fn scanner_reads_every_form() {
        assert_eq!(
            variables("a: ${A:-x y} $B ${C} ${D-d} ${E:?no} $$F $${G} ${H:-${I:-i}} $1 ${A:-z} $"),
            [
                v("A", Some("x y")),
                v("B", None),
                v("C", None),
                v("D", Some("d")),
                v("E", None),
                v("H", Some("${I:-i}")),
                v("I", Some("i")),
            ]
        );
        assert_eq!(variables("${B}${B:-later}"), [v("B", Some("later"))]);
        assert_eq!(variables("unclosed ${A"), []);
    }

    #[test]
    fn the_list_is_the_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/templates");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter_map(|f| f.strip_suffix(".yaml").map(str::to_owned))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = all().iter().map(|t| t.name).collect();
        assert_eq!(listed, on_disk);
        assert!(listed.len() >= 12);
        assert_eq!(get("wordpress").map(|t| t.name), Some("wordpress"));
        assert_eq!(get("nope"), None);
    }

    #[test]
    fn names_are_dns_labels() {
        for t in all() {
            let n = t.name.as_bytes();
            let ok = !n.is_empty()
                && n.len() <= 63
                && n.iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && n[0].is_ascii_lowercase()
                && n[n.len() - 1] != b'-';
            assert!(ok, "{} is not a DNS-1123 label", t.name);
        }
    }

    #[test]
    fn headers_are_complete() {
        for t in all() {
            let m = t.meta();
            let name = t.name;
            assert!(
                m.documentation
                    .as_deref()
                    .is_some_and(|d| d.starts_with("https://")),
                "{name}: documentation"
            );
            assert!(
                m.slogan.as_deref().is_some_and(|s| !s.is_empty()),
                "{name}: slogan"
            );
            assert!(
                m.category.as_deref().is_some_and(|s| !s.is_empty()),
                "{name}: category"
            );
            assert!(!m.tags.is_empty(), "{name}: tags");
            assert!(m.port.is_some(), "{name}: port");
            assert!(!m.ignore, "{name}: ignore");
        }
    }

    #[test]
    fn params_are_exactly_the_variables() {
        for t in all() {
            let m = t.meta();
            let vars = variables(t.text);
            let used: BTreeSet<&str> = vars
                .iter()
                .map(|v| v.name.as_str())
                .filter(|n| !n.starts_with("SERVICE_"))
                .collect();
            let declared: BTreeSet<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(used, declared, "{}: variables vs `# param:` lines", t.name);
            assert_eq!(declared.len(), m.params.len(), "{}: a param twice", t.name);
            for p in &m.params {
                assert!(
                    !p.description.is_empty(),
                    "{}: {} has no description",
                    t.name,
                    p.name
                );
                let var = vars.iter().find(|v| v.name == p.name).unwrap();
                assert!(var.default.is_some(), "{}: {} has no default", t.name, p.name);
            }
            // The scanner sees what compose interpolates, no more and no less.
            let tree = crate::yaml::load(t.text).unwrap();
            let referenced: BTreeSet<String> = crate::interpolate::references(&tree)
                .into_iter()
                .map(|r| r.name)
                .collect();
            let scanned: BTreeSet<String> = vars.into_iter().map(|v| v.name).collect();
            assert_eq!(referenced, scanned, "{}", t.name);
        }
    }

    #[test]
    fn magic_names_are_well_formed_and_urls_declared() {
        for t in all() {
            let tree = crate::yaml::load(t.text).unwrap();
            let decls = magic::declarations(&tree);
            let mut ports = Vec::new();
            for d in &decls {
                match magic::classify(&d.name) {
                    Some(Magic::Url { ident, port: Some(p) }) if !ident.contains('_') => ports.push(p),
                    other => panic!("{}: declaration {} reads as {other:?}", t.name, d.name),
                }
            }
            assert!(
                ports.contains(&t.meta().port.unwrap()),
                "{}: the header port is not declared",
                t.name
            );
            for var in variables(t.text) {
                if !var.name.starts_with("SERVICE_") {
                    continue;
                }
                match magic::classify(&var.name).unwrap() {
                    Magic::Unknown => panic!("{}: {} has no generator", t.name, var.name),
                    Magic::Url { ident, .. } | Magic::Fqdn { ident, .. } => assert!(
                        decls
                            .iter()
                            .any(|d| d.name.starts_with(&format!("SERVICE_URL_{ident}_"))),
                        "{}: {} is not declared",
                        t.name,
                        var.name
                    ),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn every_template_is_yaml_with_services() {
        for t in all() {
            let v: serde_yaml::Value = serde_yaml::from_str(t.text).unwrap();
            assert!(
                v.get("services").is_some_and(serde_yaml::Value::is_mapping),
                "{}: no services mapping",
                t.name
            );
        }
    }

    fn lookup(name: &str) -> Option<String> {
        match magic::classify(name)? {
            Magic::Url { ident, .. } => Some(format!("http://{}.example.test", ident.to_lowercase())),
            Magic::Fqdn { ident, .. } => Some(format!("{}.example.test", ident.to_lowercase())),
            m => Some(magic::generate(&m).unwrap()),
        }
    }

    #[test]
    fn every_template_reads_without_refusal() {
        for t in all() {
            let mut tree = crate::yaml::load(t.text).unwrap();
            crate::interpolate::apply(&mut tree, &lookup).unwrap();
            let file = match ComposeFile::from_value(&tree) {
                Ok(f) => f,
                Err(refusals) => panic!("{}: {refusals:?}", t.name),
            };
            for s in &file.services {
                let at = format!("{}: services.{}", t.name, s.name);
                let image = s.image.as_deref().unwrap_or_default();
                assert!(
                    image.contains(':') && !image.ends_with(":latest") && !image.contains("${"),
                    "{at}: image {image:?} is not pinned"
                );
                assert!(s.build.is_none(), "{at}: build");
                let hc = s.healthcheck.as_ref().unwrap();
                assert!(
                    hc.test.is_some()
                        && hc.interval_secs.is_some()
                        && hc.timeout_secs.is_some()
                        && hc.retries.is_some(),
                    "{at}: healthcheck {hc:?}"
                );
                assert!(s.ports.is_empty(), "{at}: publishes host ports");
                for d in &s.depends_on {
                    assert_eq!(
                        d.condition,
                        DependencyCondition::Healthy,
                        "{at}: depends_on.{}",
                        d.service
                    );
                }
                for m in &s.volumes {
                    match &m.source {
                        MountSource::Named(n) => {
                            assert!(file.volumes.contains_key(n), "{at}: volume {n} undeclared")
                        }
                        MountSource::Bind { content, .. } => {
                            assert!(content.is_some(), "{at}: a bind without content")
                        }
                        MountSource::Anonymous => panic!("{at}: an anonymous volume at {}", m.target),
                    }
                }
            }
        }
    }
}
