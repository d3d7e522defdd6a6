//! `berth wait KIND/NAME --for=condition=Ready|delete`: block until an object reaches a
//! state, through the watch API.
//!
//! # Guarantees
//! - The object is read and then watched from that read's revision: a change in between is
//!   never missed, and no polling happens.
//! - `condition=X` holds when `status.conditions[type=X].status` is `True`;
//!   `condition=X=false` (any case) waits for `False`.

use std::{ops::ControlFlow, process::ExitCode, str::FromStr, time::Duration};

use berth_crds::registry::KindInfo;
use serde_json::Value;

use super::{
    client::{Client, ListParams},
    error::{ApiStatus, Error, Result},
    output::{condition, name_of},
    target,
    watch::{Seen, follow},
};

/// Arguments of `berth wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// `KIND/NAME` (or `KIND NAME`).
    pub kind: String,
    /// The object's name, when not given as `KIND/NAME`.
    pub names: Vec<String>,
    /// Which namespace (`-n`, `-A`).
    #[command(flatten)]
    pub ns: target::NamespaceArgs,
    /// What to wait for: `condition=Ready`, `condition=Ready=false`, or `delete`.
    #[arg(long = "for", value_parser = WaitFor::from_str)]
    pub for_: WaitFor,
    /// Give up after this long (`500ms`, `30s`, `5m`).
    #[arg(long, default_value = "30s", value_parser = super::parse_duration)]
    pub timeout: Duration,
}

/// The state `berth wait` waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// A condition with this type has this status (`True` or `False`).
    Condition {
        /// The condition type, e.g. `Ready`.
        type_: String,
        /// The wanted status.
        status: String,
    },
    /// The object is gone.
    Delete,
}

impl FromStr for WaitFor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "delete" {
            return Ok(WaitFor::Delete);
        }
        let Some(cond) = s.strip_prefix("condition=") else {
            return Err(format!(
                "{s:?}: use condition=TYPE, condition=TYPE=false or delete"
            ));
        };
        let (type_, status) = cond.split_once('=').unwrap_or((cond, "true"));
        let status = match status.to_ascii_lowercase().as_str() {
            "true" => "True",
            "false" => "False",
            other => return Err(format!("condition status {other:?}: use true or false")),
        };
        if type_.is_empty() {
            return Err("the condition type is missing: condition=Ready".into());
        }
        Ok(WaitFor::Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
        })
    }
}

impl WaitFor {
    fn describe(&self) -> String {
        match self {
            WaitFor::Delete => "deletion".into(),
            WaitFor::Condition { type_, status } => format!("condition {type_}={status}"),
        }
    }

    fn holds(&self, obj: &Value) -> bool {
        match self {
            WaitFor::Delete => false,
            WaitFor::Condition { type_, status } => {
                condition(obj, type_)
                    .and_then(|c| c.get("status"))
                    .and_then(Value::as_str)
                    == Some(status.as_str())
            }
        }
    }
}

/// Runs `berth wait`.
pub async fn run(client: &Client, args: &WaitArgs, default_ns: Option<&str>) -> Result<ExitCode> {
    let (info, names) = target::kind_and_names(&args.kind, &args.names)?;
    let [name] = names.as_slice() else {
        return Err(Error::Usage("wait needs exactly one KIND/NAME".into()));
    };
    let ns = target::namespace(info, args.ns.namespace.as_deref(), false, default_ns)?;
    until(client, info, ns.as_deref(), name, &args.for_, args.timeout).await?;
    let shown = name_of(info, &serde_json::json!({"metadata": {"name": name}}));
    match args.for_ {
        WaitFor::Delete => println!("{shown} deleted"),
        WaitFor::Condition { .. } => println!("{shown} condition met"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits until `what` holds for the object, or `timeout` passes.
pub async fn until(
    client: &Client,
    info: &'static KindInfo,
    ns: Option<&str>,
    name: &str,
    what: &WaitFor,
    timeout: Duration,
) -> Result<()> {
    let params = ListParams {
        labels: None,
        name: Some(name.to_owned()),
    };
    let missing = || {
        Error::Api(Box::new(ApiStatus {
            message: format!("{} {name:?} not found", info.plural),
            reason: "NotFound".into(),
            code: 404,
            details: None,
        }))
    };
    let watching = follow(client, info, ns, &params, |seen| {
        let done = match (seen, what) {
            (Seen::Listed(items), WaitFor::Delete) => items.is_empty(),
            (Seen::Listed([]), WaitFor::Condition { .. }) => return Err(missing()),
            (Seen::Listed(items), _) => items.iter().any(|o| what.holds(o)),
            (Seen::Event("DELETED", _), WaitFor::Delete) => true,
            (Seen::Event("DELETED", _), _) => return Err(missing()),
            (Seen::Event(_, obj), _) => what.holds(obj),
        };
        Ok(if done {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    });
    match tokio::time::timeout(timeout, watching).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout(format!(
            "{} on {}/{name} ({timeout:?})",
            what.describe(),
            info.singular
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn for_values_parse() {
        assert_eq!("delete".parse::<WaitFor>(), Ok(WaitFor::Delete));
        let ready = |status: &str| WaitFor::Condition {
            type_: "Ready".into(),
            status: status.into(),
        };
        assert_eq!("condition=Ready".parse::<WaitFor>(), Ok(ready("True")));
        assert_eq!("condition=Ready=false".parse::<WaitFor>(), Ok(ready("False")));
        assert_eq!("condition=Ready=True".parse::<WaitFor>(), Ok(ready("True")));
        assert!("condition=Ready=maybe".parse::<WaitFor>().is_err());
        assert!("ready".parse::<WaitFor>().is_err());
        assert!("condition=".parse::<WaitFor>().is_err());
    }

    #[test]
    fn conditions_match_on_type_and_status() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert!("condition=Ready=false".parse::<WaitFor>().unwrap().holds(&obj));
        assert!(!"condition=Ready".parse::<WaitFor>().unwrap().holds(&obj));
        assert!(!"condition=Synced=false".parse::<WaitFor>().unwrap().holds(&obj));
    }
}
