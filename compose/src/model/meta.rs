//! Coolify's `# key: value` template header (see [`super::TemplateMeta`]).
//!
//! [`TemplateMeta::from_header`] reads the metadata comment lines of a template's text the
//! way Coolify's `generate:services` does, plus berth's own `# param: NAME: description`
//! lines (see [`super::TemplateParam`]).
//!
//! # Guarantees
//! - Every line of the text is looked at, not only the leading comment block (Coolify matches
//!   `^#(key):(value)$` over the whole file).
//! - The key is what lies between `#` and the **first** `:` (Coolify's ungreedy match), so a
//!   value may hold colons (`# documentation: https://x`); key and value are trimmed.
//! - For every key but `param`, the first line wins (Coolify takes the first match);
//!   `param` lines are all kept, in file order.
//! - `tags` are split on commas, trimmed and lower-cased; empty entries are dropped.
//! - `ignore` is set only by the value `true`.
//!
//! # Caveats
//! - Keys are matched case-sensitively, as Coolify does; unknown keys (`env_file`,
//!   `amd_only`, any comment with a colon) are skipped.
//! - A `port` that is not a number in `1..=65535` leaves [`super::TemplateMeta::port`]
//!   `None`.
//! - Coolify appends `?utm_source=coolify.io` to `documentation`; berth keeps it as written.
//! - A `param` value without a second `:` gives a parameter with an empty description; the
//!   catalogue's tests hold berth's own templates to a non-empty one.

use super::{TemplateMeta, TemplateParam};

impl TemplateMeta {
    /// Reads the metadata lines of a template's text (see the module docs).
    pub fn from_header(text: &str) -> TemplateMeta {
        let mut meta = TemplateMeta::default();
        let mut seen: Vec<&str> = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = meta_line(line) else {
                continue;
            };
            if key == "param" {
                meta.params.push(param(value));
                continue;
            }
            if seen.contains(&key) {
                continue;
            }
            let known = match key {
                "documentation" => {
                    meta.documentation = Some(value.to_owned());
                    true
                }
                "slogan" => {
                    meta.slogan = Some(value.to_owned());
                    true
                }
                "category" => {
                    meta.category = Some(value.to_owned());
                    true
                }
                "tags" => {
                    meta.tags = value
                        .split(',')
                        .map(|t| t.trim().to_lowercase())
                        .filter(|t| !t.is_empty())
                        .collect();
                    true
                }
                "logo" => {
                    meta.logo = Some(value.to_owned());
                    true
                }
                "port" => {
                    meta.port = value.parse::<u16>().ok().filter(|p| *p != 0);
                    true
                }
                "minversion" => {
                    meta.min_version = Some(value.to_owned());
                    true
                }
                "ignore" => {
                    meta.ignore = value == "true";
                    true
                }
                _ => false,
            };
            if known {
                seen.push(key);
            }
        }
        meta
    }
}

/// `#key:value` → (`key`, `value`), both trimmed; `None` for any other line.
fn meta_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_end_matches('\r').strip_prefix('#')?;
    let (key, value) = rest.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((key, value.trim()))
}

/// `NAME: description` → a parameter.
fn param(value: &str) -> TemplateParam {
    let (name, description) = value.split_once(':').unwrap_or((value, ""));
    TemplateParam {
        name: name.trim().to_owned(),
        description: description.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, description: &str) -> TemplateParam {
        TemplateParam {
            name: name.to_owned(),
            description: description.to_owned(),
        }
    }

    #[test]
    fn reads_every_key() {
        let m = TemplateMeta::from_header(
            "# documentation: https://example.com/docs?a=b\n# slogan:  A thing: really.  \n# category: cms\n# tags: Blog, CMS ,,php\n# logo: svgs/x.svg\n# port: 8080\n# minversion: 4.0.0-beta.300\n# ignore: true\n\nservices: {}\n",
        );
        assert_eq!(
            m,
            TemplateMeta {
                documentation: Some("https://example.com/docs?a=b".to_owned()),
                slogan: Some("A thing: really.".to_owned()),
                category: Some("cms".to_owned()),
                tags: vec!["blog".to_owned(), "cms".to_owned(), "php".to_owned()],
                logo: Some("svgs/x.svg".to_owned()),
                port: Some(8080),
                min_version: Some("4.0.0-beta.300".to_owned()),
                ignore: true,
                params: Vec::new(),
            }
        );
    }

    #[test]
    fn first_line_wins_and_the_whole_file_counts() {
        let m = TemplateMeta::from_header(
            "services:\n  a:\n    image: x\n# slogan: late but first\n#slogan:second\n# port: 1\n",
        );
        assert_eq!(m.slogan.as_deref(), Some("late but first"));
        assert_eq!(m.port, Some(1));
    }

    #[test]
    fn params_are_all_kept_in_order() {
        let m = TemplateMeta::from_header(
            "# param: VERSION: image tag: a pinned one\n# port: 80\n#param:TZ:timezone\n# param: BARE\n",
        );
        assert_eq!(
            m.params,
            [
                p("VERSION", "image tag: a pinned one"),
                p("TZ", "timezone"),
                p("BARE", "")
            ]
        );
    }

    #[test]
    fn odd_values_and_other_comments() {
        let m = TemplateMeta::from_header(
            "# port: http\n# ignore: yes\n# This is a note: not a key\n  # slogan: indented\n# Slogan: wrong case\nx: 1 # tags: inline\n# env_file: .env\n",
        );
        assert_eq!(m, TemplateMeta::default());
        assert_eq!(TemplateMeta::from_header("# port: 70000\n").port, None);
        assert_eq!(TemplateMeta::from_header("# port: 0\n").port, None);
        assert_eq!(
            TemplateMeta::from_header("# tags:\r\n# slogan: crlf\r\n")
                .slogan
                .as_deref(),
            Some("crlf")
        );
    }
}
