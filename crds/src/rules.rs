//! Single-value rules: DNS names, label keys, hostnames, cron, durations, quantities, URLs.
//!
//! Each rule takes a string and returns a [`RuleResult`]; [`crate::validation::check`] turns
//! a failure into a [`crate::validation::FieldError`] at the caller's path.
//!
//! # Caveats
//! - Hostnames and path prefixes end up inside Traefik rules (`Host(`...`)`): the rules here
//!   are deliberately strict (ASCII letters, digits, `-`, `.` for hosts) so that no value can
//!   break out of a rule expression.

use std::time::Duration;

use crate::validation::{FieldErrorKind, RuleResult};

fn invalid(message: impl Into<String>) -> RuleResult {
    Err((FieldErrorKind::Invalid, message.into()))
}

fn too_long(max: usize) -> RuleResult {
    Err((
        FieldErrorKind::TooLong,
        format!("must be no more than {max} characters"),
    ))
}

/// Maximum length of a DNS-1123 label.
pub const DNS1123_LABEL_MAX: usize = 63;
/// Maximum length of a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;

fn is_label(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= max
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// A DNS-1123 label: at most 63 characters of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`; the rule for
/// object names and namespaces.
pub fn dns1123_label(s: &str) -> RuleResult {
    if s.len() > DNS1123_LABEL_MAX {
        return too_long(DNS1123_LABEL_MAX);
    }
    if !is_label(s, DNS1123_LABEL_MAX) {
        return invalid(format!(
            "{s:?} is not a DNS-1123 label: lowercase letters, digits and '-', starting and ending \
             with a letter or digit (e.g. 'my-app')"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> RuleResult {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return too_long(DNS1123_SUBDOMAIN_MAX);
    }
    if s.is_empty() || !s.split('.').all(|l| is_label(l, DNS1123_LABEL_MAX)) {
        return invalid(format!(
            "{s:?} is not a DNS-1123 subdomain: dot-separated lowercase labels (e.g. 'example.com')"
        ));
    }
    Ok(())
}

/// The name part of a qualified name: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, ≤ 63.
fn qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

/// A Kubernetes qualified name (label and annotation keys, finalizers): an optional
/// DNS-1123 subdomain prefix and `/`, then a name of at most 63 characters.
pub fn qualified_name(s: &str) -> RuleResult {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix
        && dns1123_subdomain(p).is_err()
    {
        return invalid(format!("prefix of {s:?} must be a DNS-1123 subdomain"));
    }
    if !qualified_name_part(name) {
        return invalid(format!(
            "{s:?} is not a qualified name: at most 63 alphanumerics, '-', '_' or '.', starting \
             and ending with an alphanumeric, optionally prefixed by a DNS subdomain and '/'"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]`.
pub fn label_value(s: &str) -> RuleResult {
    if s.len() > 63 {
        return too_long(63);
    }
    if !s.is_empty() && !qualified_name_part(s) {
        return invalid(format!(
            "{s:?} is not a valid label value: alphanumerics, '-', '_' or '.', starting and \
             ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// A fully qualified host name served through the proxy, e.g. `app.example.com`: lowercase
/// DNS-1123 labels with at least one dot; no wildcards, ports, spaces or rule syntax.
pub fn hostname(s: &str) -> RuleResult {
    dns1123_subdomain(s).map_err(|(kind, _)| {
        (
            kind,
            format!(
                "{s:?} is not a valid host name: lowercase letters, digits, '-' and '.' only \
                 (e.g. 'app.example.com')"
            ),
        )
    })?;
    if !s.contains('.') {
        return invalid(format!(
            "{s:?} must be a fully qualified domain name (e.g. 'app.example.com')"
        ));
    }
    Ok(())
}

/// A URL path prefix: starts with `/`, unreserved URL characters and `%`-escapes only.
pub fn path_prefix(s: &str) -> RuleResult {
    if s.len() > 1024 {
        return too_long(1024);
    }
    let ok = s.starts_with('/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '.' | '_' | '~' | '%'));
    if !ok {
        return invalid(format!(
            "{s:?} must start with '/' and contain only letters, digits, '/', '-', '.', '_', '~' or '%'"
        ));
    }
    Ok(())
}

/// A five-field cron expression (`minute hour day-of-month month day-of-week`) or a
/// nickname such as `@daily`.
pub fn cron_schedule(s: &str) -> RuleResult {
    let trimmed = s.trim();
    if !trimmed.starts_with('@') && trimmed.split_whitespace().count() != 5 {
        return invalid(format!(
            "{s:?} must have exactly 5 fields: minute hour day-of-month month day-of-week (e.g. '0 3 * * *')"
        ));
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build();
    match parser.parse(trimmed) {
        Ok(_) => Ok(()),
        Err(e) => invalid(format!(
            "{s:?} is not a valid cron expression: {}",
            e.to_string().to_lowercase()
        )),
    }
}

/// An IANA time zone name such as `UTC` or `Europe/Berlin`.
pub fn time_zone(s: &str) -> RuleResult {
    match s.parse::<chrono_tz::Tz>() {
        Ok(_) => Ok(()),
        Err(_) => invalid(format!(
            "{s:?} is not an IANA time zone name (e.g. 'UTC', 'Europe/Berlin')"
        )),
    }
}

/// Parses a duration such as `90s`, `1m`, `1h30m`, `7d` or `2w` (units `ms`, `s`, `m`, `h`,
/// `d`, `w`; a bare `0` is zero).
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let millis: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return None,
        };
        total = total.checked_add(Duration::from_millis(n.checked_mul(millis)?))?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A duration string accepted by [`parse_duration`].
pub fn duration(s: &str) -> RuleResult {
    match parse_duration(s) {
        Some(_) => Ok(()),
        None => invalid(format!(
            "{s:?} is not a duration: a number and a unit (ms, s, m, h, d, w), e.g. '30s', '1h30m', '7d'"
        )),
    }
}

/// Parses a byte quantity: a decimal number with an optional suffix `k`, `M`, `G`, `T`, `P`
/// (powers of 1000) or `Ki`, `Mi`, `Gi`, `Ti`, `Pi` (powers of 1024), e.g. `512Mi`, `10G`.
pub fn parse_quantity(s: &str) -> Option<u64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let factor: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Pi" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let bytes = value * factor;
    (bytes.is_finite() && bytes < 9.0e18).then_some(bytes as u64)
}

/// A byte quantity accepted by [`parse_quantity`].
pub fn quantity(s: &str) -> RuleResult {
    match parse_quantity(s) {
        Some(_) => Ok(()),
        None => invalid(format!(
            "{s:?} is not a size: a number with an optional suffix k, M, G, T, Ki, Mi, Gi, Ti (e.g. '512Mi', '10G')"
        )),
    }
}

/// A CPU amount: a positive decimal number of CPUs (`0.5`, `2`) or millicores (`500m`).
pub fn cpus(s: &str) -> RuleResult {
    let value = match s.strip_suffix('m') {
        Some(milli) if !milli.is_empty() && milli.bytes().all(|c| c.is_ascii_digit()) => {
            milli.parse::<f64>().ok().map(|m| m / 1000.0)
        }
        Some(_) => None,
        None if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.') => s.parse::<f64>().ok(),
        None => None,
    };
    match value {
        Some(v) if v > 0.0 && v.is_finite() => Ok(()),
        _ => invalid(format!(
            "{s:?} is not a CPU amount: a positive number of CPUs ('0.5', '2') or millicores ('500m')"
        )),
    }
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_.-]*`.
pub fn env_var_name(s: &str) -> RuleResult {
    let ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return invalid(format!(
            "{s:?} is not a valid environment variable name: letters, digits, '_', '.', '-', not starting with a digit"
        ));
    }
    Ok(())
}

/// A key of a Secret's data: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub fn secret_key(s: &str) -> RuleResult {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return too_long(DNS1123_SUBDOMAIN_MAX);
    }
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return invalid(format!(
            "{s:?} is not a valid secret key: letters, digits, '-', '.' or '_'"
        ));
    }
    Ok(())
}

/// A Docker network or volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters.
pub fn docker_name(s: &str) -> RuleResult {
    if s.len() > 128 {
        return too_long(128);
    }
    let ok = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return invalid(format!(
            "{s:?} is not a valid Docker name: letters, digits, '_', '.', '-'"
        ));
    }
    Ok(())
}

/// A container image reference such as `nginx`, `ghcr.io/org/app:1.2` or `app@sha256:...`.
pub fn image_reference(s: &str) -> RuleResult {
    if s.len() > 512 {
        return too_long(512);
    }
    let ok = !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | ':' | '.' | '_' | '-' | '@'));
    if !ok {
        return invalid(format!(
            "{s:?} is not a valid image reference (e.g. 'nginx:1.27', 'ghcr.io/org/app:v1')"
        ));
    }
    Ok(())
}

/// An absolute URL with one of `schemes`, a host and no whitespace or quoting characters.
pub fn url(s: &str, schemes: &[&str]) -> RuleResult {
    let bad = |why: &str| invalid(format!("{s:?} is not a valid URL: {why}"));
    let Some((scheme, rest)) = s.split_once("://") else {
        return bad(&format!("expected {}://...", schemes.join("|")));
    };
    if !schemes.contains(&scheme) {
        return bad(&format!("scheme must be one of {}", schemes.join(", ")));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '`' | '"' | '<' | '>' | '\\'))
    {
        return bad("contains whitespace or quoting characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() && scheme != "file" {
        return bad("missing host");
    }
    Ok(())
}

/// A Git remote: `https://`, `http://`, `ssh://`, `file://` URLs or scp-like `git@host:path`.
pub fn git_url(s: &str) -> RuleResult {
    if s.contains("://") {
        return url(s, &["https", "http", "ssh", "file"]);
    }
    let scp = s.split_once(':').is_some_and(|(user_host, path)| {
        !user_host.is_empty()
            && !path.is_empty()
            && !user_host.contains('/')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '`')
    });
    if !scp {
        return invalid(format!(
            "{s:?} is not a Git URL: https://, ssh://, file:// or git@host:path"
        ));
    }
    Ok(())
}

/// An e-mail address (`local@domain`, no whitespace or angle brackets).
pub fn email(s: &str) -> RuleResult {
    let ok = s.matches('@').count() == 1
        && s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','));
    if !ok {
        return invalid(format!("{s:?} is not an e-mail address"));
    }
    Ok(())
}

/// An absolute path on a host (`/srv/data`), without `..` segments or NUL bytes.
pub fn absolute_path(s: &str) -> RuleResult {
    if !s.starts_with('/') || s.split('/').any(|seg| seg == "..") || s.contains('\0') {
        return invalid(format!("{s:?} must be an absolute path without '..' segments"));
    }
    Ok(())
}

/// A bind-mount source allowed by the server's host root: `path` lies under `root`
/// (whole path segments, no `..`). Without a root, bind mounts are disabled.
pub fn host_path_under(path: &str, root: Option<&std::path::Path>) -> RuleResult {
    absolute_path(path)?;
    let forbidden = |message: String| Err((FieldErrorKind::Forbidden, message));
    match root {
        None => forbidden(format!(
            "{path:?}: bind mounts are disabled on this server (it was started without --host-root)"
        )),
        Some(root) if std::path::Path::new(path).starts_with(root) => Ok(()),
        Some(root) => forbidden(format!(
            "{path:?} is outside the server's host root {:?}",
            root.display().to_string()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_must_lie_under_the_root() {
        let root = Some(std::path::Path::new("/srv/berth"));
        assert!(host_path_under("/srv/berth", root).is_ok());
        assert!(host_path_under("/srv/berth/app/data", root).is_ok());
        for bad in ["/srv/berthx", "/srv", "/etc", "/srv/berth/../etc", "srv/berth/a"] {
            assert!(host_path_under(bad, root).is_err(), "{bad} should be refused");
        }
        let off = host_path_under("/srv/berth/a", None).map_err(|e| e.1);
        assert!(off.is_err_and(|m| m.contains("--host-root")));
    }

    #[test]
    fn dns1123_label_rules() {
        for ok in ["a", "my-app", "app1", "0", "a-b-c", &"a".repeat(63)] {
            assert!(dns1123_label(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", "-a", "a-", "My-App", "a_b", "a.b", "a b", "é"] {
            assert!(dns1123_label(bad).is_err(), "{bad} should be invalid");
        }
        assert_eq!(
            dns1123_label(&"a".repeat(64)).map_err(|e| e.0),
            Err(FieldErrorKind::TooLong)
        );
    }

    #[test]
    fn subdomain_and_qualified_names() {
        assert!(dns1123_subdomain("berth.dev").is_ok());
        assert!(dns1123_subdomain("berth..dev").is_err());
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("Tier_1").is_ok());
        assert!(qualified_name("Bad Prefix/x").is_err());
        assert!(qualified_name("x/").is_err());
        assert!(qualified_name("-x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_beta").is_ok());
        assert!(label_value("has space").is_err());
    }

    #[test]
    fn hostnames_reject_rule_syntax() {
        assert!(hostname("app.example.com").is_ok());
        for bad in [
            "app.example.com`) || Host(`evil.com",
            "app.example.com)",
            "(app.example.com",
            "app example.com",
            "a.com||b.com",
            "*.example.com",
            "App.Example.com",
            "localhost",
            "example.com:8080",
        ] {
            assert!(hostname(bad).is_err(), "{bad} should be rejected");
        }
        assert!(path_prefix("/api/v1").is_ok());
        assert!(path_prefix("api").is_err());
        assert!(path_prefix("/a`)").is_err());
        assert!(path_prefix("/a b").is_err());
    }

    #[test]
    fn cron_and_time_zones() {
        assert!(cron_schedule("0 3 * * *").is_ok());
        assert!(cron_schedule("*/15 * * * 1-5").is_ok());
        assert!(cron_schedule("@daily").is_ok());
        assert!(cron_schedule("0 3 * *").is_err());
        assert!(cron_schedule("0 0 3 * * *").is_err());
        assert!(cron_schedule("61 * * * *").is_err());
        assert!(cron_schedule("every day").is_err());
        assert!(time_zone("Europe/Berlin").is_ok());
        assert!(time_zone("UTC").is_ok());
        assert!(time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn durations_and_quantities() {
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "m", "5", "5x", "1.5h", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_quantity("512Mi"), Some(512 * 1024 * 1024));
        assert_eq!(parse_quantity("10G"), Some(10_000_000_000));
        assert_eq!(parse_quantity("1.5Gi"), Some(1_610_612_736));
        for bad in ["", "Mi", "512m", "1..2", "12 Mi", "-1"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
        assert!(cpus("0.5").is_ok());
        assert!(cpus("500m").is_ok());
        assert!(cpus("0").is_err());
        assert!(cpus("half").is_err());
    }

    #[test]
    fn urls_and_misc() {
        assert!(url("https://acme-v02.api.letsencrypt.org/directory", &["https"]).is_ok());
        assert!(url("http://x", &["https"]).is_err());
        assert!(url("https://", &["https"]).is_err());
        assert!(url("https://a b", &["https"]).is_err());
        assert!(git_url("https://github.com/org/repo.git").is_ok());
        assert!(git_url("git@github.com:org/repo.git").is_ok());
        assert!(git_url("file:///srv/git/repo").is_ok());
        assert!(git_url("repo").is_err());
        assert!(email("ops@example.com").is_ok());
        assert!(email("ops@@example.com").is_err());
        assert!(email("ops example.com").is_err());
        assert!(env_var_name("DATABASE_URL").is_ok());
        assert!(env_var_name("1X").is_err());
        assert!(image_reference("ghcr.io/org/app:v1").is_ok());
        assert!(image_reference("nginx latest").is_err());
        assert!(absolute_path("/srv/data").is_ok());
        assert!(absolute_path("/srv/../etc").is_err());
        assert!(docker_name("berth_net-1").is_ok());
        assert!(docker_name("-net").is_err());
    }
}
