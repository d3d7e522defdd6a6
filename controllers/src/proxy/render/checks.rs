//! The checks that keep user input from breaking out of a Traefik rule or the YAML.
//!
//! # Guarantees
//! - Each check accepts a strict allow-list of bytes; anything else is refused, never
//!   escaped into place (except [`regex_escape`], applied after [`safe_host`]).

/// Whether `host` is a plain lowercase DNS name (what admission allows), safe in a rule.
pub(super) fn safe_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// Whether `path` is an absolute URL path without rule or YAML metacharacters.
pub(super) fn safe_path(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~' | b'%'))
}

/// Whether `name` is a Docker container name safe in a URL host.
pub(super) fn safe_container(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Escapes regex metacharacters (hosts are checked, this is belt and braces).
pub(super) fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Parses htpasswd content into `user:hash` lines; refuses lines that are not.
pub(super) fn htpasswd_users(content: &str) -> Result<Vec<String>, String> {
    let users: Vec<String> = content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if users.is_empty() {
        return Err("holds no htpasswd line".to_owned());
    }
    for line in &users {
        match line.split_once(':') {
            Some((user, hash)) if !user.is_empty() && !hash.is_empty() && !user.contains(' ') => {}
            _ => return Err("holds a line that is not `user:hash`".to_owned()),
        }
    }
    Ok(users)
}
