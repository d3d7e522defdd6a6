//! `berth get KIND [NAME...]`: tables, YAML, JSON or names; `-w` follows changes.
//!
//! # Guarantees
//! - `-w` prints the current objects, then one line per change through the watch API,
//!   relisting after a 410; it runs until interrupted.
//! - Secret values are masked unless `--show-secrets`.

use std::{io::Write, ops::ControlFlow, process::ExitCode};

use berth_crds::registry::KindInfo;
use chrono::Utc;
use serde_json::Value;

use super::{
    client::{Client, ListParams},
    error::{Error, Result},
    output::{self, Format, Table, mask_secrets, name_of},
    target,
    watch::{Seen, follow},
};

/// Arguments of `berth get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The kind (`apps`, `application`, `app`...) or `KIND/NAME`.
    pub kind: String,
    /// Names of the objects (default: all).
    pub names: Vec<String>,
    /// Which namespace (`-n`, `-A`).
    #[command(flatten)]
    pub ns: target::NamespaceArgs,
    /// List across all Environments.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Label selector, e.g. `app=web,tier!=cache`.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Output format (default: a table).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Format>,
    /// After listing, keep printing objects as they change.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// With `-w`: prefix each line with the event type (ADDED, MODIFIED, DELETED).
    #[arg(long)]
    pub output_watch_events: bool,
    /// Print Secret values instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
}

/// Runs `berth get`.
pub async fn run(client: &Client, args: &GetArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let (info, names) = target::kind_and_names(&args.kind, &args.names)?;
    if args.all_namespaces && !names.is_empty() {
        return Err(Error::Usage(
            "an object cannot be read by name across all Environments: use -n".into(),
        ));
    }
    let ns = target::namespace(
        info,
        args.ns.namespace.as_deref(),
        args.all_namespaces,
        default_ns,
    )?;
    let ns = ns.as_deref();
    let mut printer = Printer::new(info, args, ns.is_none());
    if args.watch {
        return watch(client, info, ns, args, &names, &mut printer).await;
    }
    let mut items = Vec::new();
    if names.is_empty() {
        let params = ListParams {
            labels: args.selector.clone(),
            name: None,
        };
        items = client.list(info, ns, &params).await?.items;
    } else {
        for n in &names {
            items.push(client.get(info, ns, n).await?);
        }
    }
    if items.is_empty() && matches!(args.output, None | Some(Format::Wide)) {
        match ns {
            Some(ns) => eprintln!("No {} found in {ns}.", info.plural),
            None => eprintln!("No {} found.", info.plural),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let single = names.len() == 1;
    printer.batch(items, single)?;
    Ok(ExitCode::SUCCESS)
}

async fn watch(
    client: &Client,
    info: &'static KindInfo,
    ns: Option<&str>,
    args: &GetArgs,
    names: &[String],
    printer: &mut Printer,
) -> Result<ExitCode> {
    if names.len() > 1 {
        return Err(Error::Usage(
            "watch one object or the whole kind, not several".into(),
        ));
    }
    let params = ListParams {
        labels: args.selector.clone(),
        name: names.first().cloned(),
    };
    follow(client, info, ns, &params, |seen| {
        match seen {
            Seen::Listed(items) => printer.events(items.iter().map(|o| ("ADDED", o)))?,
            Seen::Event(kind, obj) => printer.events(std::iter::once((kind, obj)))?,
        }
        Ok(ControlFlow::Continue(()))
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints objects in the chosen format, remembering table widths across watch events.
struct Printer {
    info: &'static KindInfo,
    format: Option<Format>,
    table: Table,
    header_done: bool,
    events: bool,
    show_secrets: bool,
}

impl Printer {
    fn new(info: &'static KindInfo, args: &GetArgs, all: bool) -> Self {
        Self {
            info,
            format: args.output,
            table: {
                let t = Table::new(info, all, args.output == Some(Format::Wide));
                if args.watch && args.output_watch_events {
                    t.with_event_column()
                } else {
                    t
                }
            },
            header_done: false,
            events: args.watch && args.output_watch_events,
            show_secrets: args.show_secrets,
        }
    }

    fn prepare(&self, mut obj: Value) -> Value {
        if !self.show_secrets {
            mask_secrets(self.info, &mut obj);
        }
        obj
    }

    /// Prints a whole result: one object as itself, several as a `List`.
    fn batch(&mut self, items: Vec<Value>, single: bool) -> Result<()> {
        let mut items: Vec<Value> = items.into_iter().map(|o| self.prepare(o)).collect();
        let doc = |items: &mut Vec<Value>| {
            if single && items.len() == 1 {
                items.remove(0)
            } else {
                output::list(std::mem::take(items))
            }
        };
        let text = match self.format {
            Some(Format::Yaml) => output::yaml(&doc(&mut items)),
            Some(Format::Json) => output::json(&doc(&mut items)),
            Some(Format::Name) => items.iter().map(|o| name_of(self.info, o) + "\n").collect(),
            None | Some(Format::Wide) => {
                let now = Utc::now();
                let rows: Vec<_> = items.iter().map(|o| self.table.row(o, now)).collect();
                self.table.render(&rows, true)
            }
        };
        write_out(&text)
    }

    /// Prints watch events, one line (or YAML document) each.
    fn events<'a>(&mut self, events: impl Iterator<Item = (&'a str, &'a Value)>) -> Result<()> {
        let now = Utc::now();
        let mut text = String::new();
        let mut rows = Vec::new();
        for (kind, obj) in events {
            let obj = self.prepare(obj.clone());
            let prefix = if self.events {
                format!("{kind} ")
            } else {
                String::new()
            };
            match self.format {
                Some(Format::Name) => text.push_str(&format!("{prefix}{}\n", name_of(self.info, &obj))),
                Some(Format::Json) if self.events => {
                    let ev = serde_json::json!({"type": kind, "object": obj});
                    text.push_str(&format!("{ev}\n"));
                }
                Some(Format::Json) => text.push_str(&format!("{obj}\n")),
                Some(Format::Yaml) => {
                    text.push_str("---\n");
                    if self.events {
                        text.push_str(&format!("# {kind}\n"));
                    }
                    text.push_str(&output::yaml(&obj));
                }
                None | Some(Format::Wide) => {
                    let mut row = self.table.row(&obj, now);
                    if self.events {
                        row.insert(0, kind.to_owned());
                    }
                    rows.push(row);
                }
            }
        }
        if matches!(self.format, None | Some(Format::Wide)) {
            text = self.table.render(&rows, !self.header_done);
            self.header_done = true;
        }
        write_out(&text)
    }
}

fn write_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
