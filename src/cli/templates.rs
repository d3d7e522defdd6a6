//! `berth templates list|show NAME`: browse the service templates compiled into berth.
//!
//! Works offline: the catalogue ([`berth_compose::catalogue`]) is part of the binary, so
//! neither verb talks to the API server.
//!
//! # Guarantees
//! - `list` prints one row per template, sorted by name, under a `NAME CATEGORY SLOGAN`
//!   header.
//! - `show` prints the slogan, documentation, category, tags, port, every parameter with its
//!   description and default, then the compose text byte for byte (header included).
//! - An unknown name exits 1 with `error: ...` on stderr naming it and the close names.
//!
//! # Caveats
//! - "Close" is an edit distance of at most a third of the name (at least 2), or one name
//!   containing the other; with none close, the error points at `berth templates list`.

use std::process::ExitCode;

use berth_compose::catalogue::{self, Template};
use clap::Subcommand;

/// Arguments of `berth templates`.
#[derive(Debug, clap::Args)]
pub struct TemplatesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TemplatesCommand,
}

/// The `berth templates` verbs.
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// List the templates: name, category and slogan.
    List,
    /// Show one template: its metadata, parameters and compose text.
    Show {
        /// The template's name (see `berth templates list`).
        name: String,
    },
}

/// Runs `berth templates`.
pub fn run(args: &TemplatesArgs) -> ExitCode {
    match &args.command {
        TemplatesCommand::List => {
            print!("{}", list(catalogue::all()));
            ExitCode::SUCCESS
        }
        TemplatesCommand::Show { name } => match catalogue::get(name) {
            Some(t) => {
                print!("{}", show(t));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("error: {}", unknown(name, catalogue::all()));
                ExitCode::FAILURE
            }
        },
    }
}

/// The `list` table.
fn list(templates: &[Template]) -> String {
    let mut rows: Vec<[String; 3]> = templates
        .iter()
        .map(|t| {
            let m = t.meta();
            [
                t.name.to_owned(),
                m.category.unwrap_or_default(),
                m.slogan.unwrap_or_default(),
            ]
        })
        .collect();
    rows.sort();
    rows.insert(0, ["NAME".to_owned(), "CATEGORY".to_owned(), "SLOGAN".to_owned()]);
    let width = |col: usize| rows.iter().map(|r| r[col].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    rows.iter()
        .map(|[name, category, slogan]| format!("{name:<w0$}   {category:<w1$}   {slogan}\n"))
        .collect()
}

/// The `show` text.
fn show(t: &Template) -> String {
    let m = t.meta();
    let vars = catalogue::variables(t.text);
    let mut out = format!("{}: {}\n", t.name, m.slogan.unwrap_or_default());
    out += &format!("Documentation: {}\n", m.documentation.unwrap_or_default());
    out += &format!("Category: {}\n", m.category.unwrap_or_default());
    out += &format!("Tags: {}\n", m.tags.join(", "));
    if let Some(port) = m.port {
        out += &format!("Port: {port}\n");
    }
    out += "\nParameters:\n";
    if m.params.is_empty() {
        out += "  (none)\n";
    }
    let w = m.params.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &m.params {
        let default = vars
            .iter()
            .find(|v| v.name == p.name)
            .and_then(|v| v.default.as_deref())
            .map_or_else(|| "none".to_owned(), |d| format!("{d:?}"));
        out += &format!("  {:<w$}   {} (default: {default})\n", p.name, p.description);
    }
    out += "\n---\n";
    out += t.text;
    if !t.text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The error for a name the catalogue does not have.
fn unknown(name: &str, templates: &[Template]) -> String {
    let close: Vec<&str> = templates
        .iter()
        .map(|t| t.name)
        .filter(|t| is_close(name, t))
        .collect();
    if close.is_empty() {
        format!("no template named {name:?}; `berth templates list` shows them all")
    } else {
        format!("no template named {name:?}; did you mean: {}?", close.join(", "))
    }
}

fn is_close(asked: &str, known: &str) -> bool {
    let asked = asked.to_lowercase();
    if asked.is_empty() {
        return false;
    }
    known.contains(&asked) || asked.contains(known) || distance(&asked, known) <= (known.len() / 3).max(2)
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names() {
        let all = catalogue::all();
        assert_eq!(distance("kitten", "sitting"), 3);
        assert!(unknown("wordpres", all).contains("did you mean: wordpress?"));
        assert!(unknown("kuma", all).contains("uptime-kuma"));
        assert!(unknown("zzzzzzzz", all).contains("`berth templates list`"));
    }

    #[test]
    fn show_lists_params_with_defaults() {
        let text = show(&Template {
            name: "x",
            text: "# slogan: S\n# param: V: the tag\nservices:\n  a:\n    image: a:${V:-1.2}\n",
        });
        assert!(text.starts_with("x: S\n"));
        assert!(text.contains("  V   the tag (default: \"1.2\")\n"));
        assert!(
            text.ends_with(
                "---\n# slogan: S\n# param: V: the tag\nservices:\n  a:\n    image: a:${V:-1.2}\n"
            )
        );
    }
}
