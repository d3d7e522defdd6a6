//! A compose service whose image is a database engine, as a Database.
//!
//! The member keeps the compose file's own environment verbatim (`injectCredentials:
//! false`): the application members connect with the credentials the file gives them. A
//! login Secret, derived from that same environment, tells berth how to log in for
//! readiness probes and backups, so a BackupSchedule can back the member up.
//!
//! # Guarantees
//! - A member becomes a Database only when the Database spec can express all of it: the
//!   engine's image, at most one named volume at the engine's data directory, at most one
//!   published port, no entrypoint, no files or binds, no container settings a Database
//!   has no field for, and a superuser password in its environment. Otherwise it runs as an
//!   Application, and a notice says why (berth cannot back it up then).
//!
//! # Caveats
//! - The engine is recognised by the image's last path segment (`mariadb`,
//!   `bitnami/postgresql` is not `postgres`); redis-like engines stay Applications (their
//!   password is in the command line, not the environment).
//! - The compose health check is replaced by the engine's own readiness probe.

use std::collections::BTreeMap;

use berth_crds::kinds::database::{DatabaseEngine, DatabaseStorage};
use berth_crds::kinds::{DatabaseSpec, DeletionPolicy};

use super::application::environment;
use super::{Child, Context, Error, Member, unmark};
use crate::model::{ComposeService, MountSource, Notice, Restart};

/// What berth must know of an engine to run a compose member as a Database.
struct EngineFacts {
    engine: DatabaseEngine,
    /// Image names (last path segment, no tag).
    images: &'static [&'static str],
    data_dir: &'static str,
    /// Variables holding the superuser password, first found wins.
    password: &'static [&'static str],
    /// Variables holding the user name of that password, and the default.
    username: (&'static [&'static str], &'static str),
    /// Variables holding the database name; `None` default means the user name.
    database: (&'static [&'static str], Option<&'static str>),
}

const ENGINES: &[EngineFacts] = &[
    EngineFacts {
        engine: DatabaseEngine::Postgresql,
        images: &["postgres"],
        data_dir: "/var/lib/postgresql/data",
        password: &["POSTGRES_PASSWORD"],
        username: (&["POSTGRES_USER"], "postgres"),
        database: (&["POSTGRES_DB"], None),
    },
    EngineFacts {
        engine: DatabaseEngine::Mariadb,
        images: &["mariadb"],
        data_dir: "/var/lib/mysql",
        password: &["MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD"],
        // The password is root's, so the login is root's (MARIADB_USER is the app's).
        username: (&[], "root"),
        database: (&["MARIADB_DATABASE", "MYSQL_DATABASE"], Some("mysql")),
    },
    EngineFacts {
        engine: DatabaseEngine::Mysql,
        images: &["mysql"],
        data_dir: "/var/lib/mysql",
        password: &["MYSQL_ROOT_PASSWORD"],
        username: (&[], "root"),
        database: (&["MYSQL_DATABASE"], Some("mysql")),
    },
    EngineFacts {
        engine: DatabaseEngine::Mongodb,
        images: &["mongo"],
        data_dir: "/data/db",
        password: &["MONGO_INITDB_ROOT_PASSWORD"],
        username: (&["MONGO_INITDB_ROOT_USERNAME"], "root"),
        database: (&["MONGO_INITDB_DATABASE"], Some("admin")),
    },
    EngineFacts {
        engine: DatabaseEngine::Clickhouse,
        images: &["clickhouse-server", "clickhouse"],
        data_dir: "/var/lib/clickhouse",
        password: &["CLICKHOUSE_PASSWORD"],
        username: (&["CLICKHOUSE_USER"], "default"),
        database: (&["CLICKHOUSE_DB"], Some("default")),
    },
];

/// The image's name without registry, path and tag.
fn image_name(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

/// `svc` as a Database member, or `None` (with a notice when it looked like one) when it
/// must run as an Application.
pub(super) fn try_database(
    ctx: &Context<'_>,
    svc: &ComposeService,
    object: &str,
    secret_env: &mut BTreeMap<String, String>,
    notices: &mut Vec<Notice>,
) -> Result<Option<Member>, Error> {
    let Some(image) = svc.image.as_deref().map(|i| unmark(i).0) else {
        return Ok(None);
    };
    let Some(facts) = ENGINES.iter().find(|e| e.images.contains(&image_name(&image))) else {
        return Ok(None);
    };
    let env_value = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| {
            svc.environment
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .and_then(|(_, v)| v.as_deref())
                .map(|v| unmark(v).0)
                .filter(|v| !v.is_empty())
        })
    };
    let why_not = if svc.entrypoint.is_some() {
        Some("it overrides the entrypoint".to_owned())
    } else if svc.volumes.len() > 1 {
        Some("it mounts more than its data volume".to_owned())
    } else if let Some(m) = svc.volumes.first()
        && !(matches!(m.source, MountSource::Named(_)) && m.target.trim_end_matches('/') == facts.data_dir)
    {
        Some(format!("its volume is not a named volume at {}", facts.data_dir))
    } else if svc.ports.len() > 1
        || svc
            .ports
            .iter()
            .any(|p| p.host_ip.is_some() || p.host_port.is_none())
    {
        Some("its ports are more than one port published on all addresses".to_owned())
    } else if !svc.cap_add.is_empty()
        || !svc.ulimits.is_empty()
        || !svc.sysctls.is_empty()
        || svc.user.is_some()
        || svc.shm_size.is_some()
        || !svc.labels.is_empty()
        || svc.build.is_some()
    {
        Some("it sets container options a Database has no field for".to_owned())
    } else if env_value(facts.password).is_none() {
        Some(format!(
            "no superuser password in its environment ({})",
            facts.password.join(" or ")
        ))
    } else {
        None
    };
    if let Some(why) = why_not {
        notices.push(Notice {
            service: svc.name.clone(),
            key: "image".into(),
            message: format!("runs as an Application, not a Database ({why}): berth cannot back it up"),
        });
        return Ok(None);
    }
    let username = env_value(facts.username.0).unwrap_or_else(|| facts.username.1.to_owned());
    let database = env_value(facts.database.0)
        .or_else(|| facts.database.1.map(str::to_owned))
        .unwrap_or_else(|| username.clone());
    let login = BTreeMap::from([
        ("username".to_owned(), username),
        (
            "password".to_owned(),
            env_value(facts.password).unwrap_or_default(),
        ),
        ("database".to_owned(), database),
    ]);
    let login_secret = format!("{object}-login");
    let mut aliases = vec![svc.name.clone()];
    aliases.extend(svc.aliases.iter().filter(|a| **a != svc.name).cloned());
    let storage = svc.volumes.first().and_then(|m| match &m.source {
        MountSource::Named(key) => Some(DatabaseStorage {
            volume_name: Some(ctx.volume_name(key).0),
            size: None,
        }),
        _ => None,
    });
    let spec = DatabaseSpec {
        engine: facts.engine,
        version: None,
        image: Some(image),
        destination: ctx.destination(),
        storage,
        public_port: svc.ports.first().and_then(|p| p.host_port),
        credentials_secret_ref: Some(login_secret.clone()),
        deletion_policy: ctx.input.spec.deletion_policy,
        env: environment(ctx, svc, secret_env),
        args: svc.command.iter().flatten().map(|a| unmark(a).0).collect(),
        resources: (svc.cpus.is_some() || svc.mem_limit.is_some()).then(|| {
            berth_crds::kinds::application::ResourceLimits {
                cpus: svc.cpus.clone(),
                memory: svc.mem_limit.map(|b| b.to_string()),
            }
        }),
        network_aliases: aliases,
        inject_credentials: false,
    };
    if ctx.input.spec.deletion_policy == DeletionPolicy::Retain && spec.storage.is_none() {
        notices.push(Notice {
            service: svc.name.clone(),
            key: "volumes".into(),
            message: "no data volume: berth gives the Database one of its own".into(),
        });
    }
    if svc.healthcheck.is_some() {
        notices.push(Notice {
            service: svc.name.clone(),
            key: "healthcheck".into(),
            message: "replaced by the engine's own readiness probe".into(),
        });
    }
    Ok(Some(Member {
        service: svc.name.clone(),
        object: object.to_owned(),
        child: Child::Database {
            spec: Box::new(spec),
            login_secret,
            login,
        },
        depends_on: svc.depends_on.clone(),
        excluded: svc.exclude_from_hc || svc.restart == Some(Restart::No),
        urls: Vec::new(),
    }))
}
