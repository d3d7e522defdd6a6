//! Reading `ports:` and `expose:` entries.
//!
//! # Guarantees
//! - Short syntax: `"3000"`, `"8080:80"`, `"127.0.0.1:8080:80"`, `"[::1]:8080:80"`,
//!   `"127.0.0.1::80"` (no host port), each with an optional `/tcp` or `/udp`; ranges
//!   (`"9000-9001:9000-9001"`, `"9000-9001"`) become one entry per port.
//! - Long syntax: `target`, `published`, `host_ip`, `protocol`; `mode`, `name` and
//!   `app_protocol` are read and ignored (they change nothing on one host).
//!
//! # Caveats
//! - A host range for one container port (`"8000-8010:80"`, "any free port of these") and
//!   ranges of different lengths are refused; so is any protocol but `tcp`/`udp`.

use serde_yaml::Value;

use super::scalar;
use super::{ExposedPort, PortMapping, Protocol};
use crate::yaml::kind;

/// One `ports:` entry (a range gives several).
pub(super) fn port(v: &Value) -> Result<Vec<PortMapping>, String> {
    match v {
        Value::Mapping(m) => {
            let mut out = PortMapping::default();
            let mut target = None;
            for (k, val) in m {
                match k.as_str().unwrap_or_default() {
                    "target" => target = Some(number(&scalar::string(val)?)?),
                    "published" => {
                        let p = scalar::string(val)?;
                        if !p.is_empty() {
                            out.host_port = Some(number(&p)?);
                        }
                    }
                    "host_ip" => out.host_ip = Some(scalar::string(val)?),
                    "protocol" => out.protocol = protocol(&scalar::string(val)?)?,
                    "mode" | "name" | "app_protocol" => {}
                    other => return Err(format!("unknown key {other:?} in a long-syntax port")),
                }
            }
            out.container_port = target.ok_or("a long-syntax port needs `target`")?;
            Ok(vec![out])
        }
        Value::String(_) | Value::Number(_) => short(&scalar::string(v)?),
        other => Err(format!("expected a port, found {}", kind(other))),
    }
}

fn short(text: &str) -> Result<Vec<PortMapping>, String> {
    let (spec, proto) = match text.rsplit_once('/') {
        Some((s, p)) => (s, protocol(p)?),
        None => (text, Protocol::Tcp),
    };
    let (host_ip, rest) = if let Some(after) = spec.strip_prefix('[') {
        let (ip, rest) = after
            .split_once("]:")
            .ok_or_else(|| format!("invalid port {text:?}"))?;
        (Some(ip.to_owned()), rest)
    } else {
        match spec.matches(':').count() {
            0 | 1 => (None, spec),
            2 => {
                let (ip, rest) = spec.split_once(':').unwrap_or_default();
                (Some(ip.to_owned()), rest)
            }
            _ => return Err(format!("invalid port {text:?}")),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let containers = range(container).map_err(|_| format!("invalid port {text:?}"))?;
    let hosts = match host {
        None | Some("") => None,
        Some(h) => Some(range(h).map_err(|_| format!("invalid port {text:?}"))?),
    };
    if let Some(hosts) = &hosts
        && hosts.len() != containers.len()
    {
        return Err(format!(
            "port {text:?}: host and container ranges differ in length (berth publishes fixed ports)"
        ));
    }
    Ok(containers
        .iter()
        .enumerate()
        .map(|(i, &c)| PortMapping {
            host_ip: host_ip.clone().filter(|ip| !ip.is_empty()),
            host_port: hosts.as_ref().map(|h| h[i]),
            container_port: c,
            protocol: proto,
        })
        .collect())
}

/// One `expose:` entry (a range gives several).
pub(super) fn expose(v: &Value) -> Result<Vec<ExposedPort>, String> {
    let text = scalar::string(v)?;
    let (spec, proto) = match text.rsplit_once('/') {
        Some((s, p)) => (s, protocol(p)?),
        None => (text.as_str(), Protocol::Tcp),
    };
    let ports = range(spec).map_err(|_| format!("invalid port {text:?}"))?;
    Ok(ports
        .into_iter()
        .map(|port| ExposedPort {
            port,
            protocol: proto,
        })
        .collect())
}

fn protocol(p: &str) -> Result<Protocol, String> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        other => Err(format!("unsupported protocol {other:?}")),
    }
}

fn number(s: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("invalid port {s:?}"))
}

fn range(s: &str) -> Result<Vec<u16>, String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(format!("invalid range {s:?}"));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![number(s)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(ip: Option<&str>, host: Option<u16>, c: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.map(str::to_owned),
            host_port: host,
            container_port: c,
            protocol,
        }
    }

    #[test]
    fn ports() {
        use Protocol::{Tcp, Udp};
        let cases: Vec<(&str, Vec<PortMapping>)> = vec![
            ("3000", vec![pm(None, None, 3000, Tcp)]),
            ("\"8080:80\"", vec![pm(None, Some(8080), 80, Tcp)]),
            ("8080:80", vec![pm(None, Some(8080), 80, Tcp)]),
            (
                "127.0.0.1:8080:80/udp",
                vec![pm(Some("127.0.0.1"), Some(8080), 80, Udp)],
            ),
            ("127.0.0.1::80", vec![pm(Some("127.0.0.1"), None, 80, Tcp)]),
            ("\"[::1]:53:53/udp\"", vec![pm(Some("::1"), Some(53), 53, Udp)]),
            (
                "9000-9001:9000-9001",
                vec![pm(None, Some(9000), 9000, Tcp), pm(None, Some(9001), 9001, Tcp)],
            ),
            (
                "7000-7001",
                vec![pm(None, None, 7000, Tcp), pm(None, None, 7001, Tcp)],
            ),
            (
                "{target: 80, published: '8080', host_ip: 0.0.0.0, protocol: udp, mode: host}",
                vec![pm(Some("0.0.0.0"), Some(8080), 80, Udp)],
            ),
            ("{target: 80}", vec![pm(None, None, 80, Tcp)]),
        ];
        for (input, want) in cases {
            let v: Value = serde_yaml::from_str(input).unwrap();
            assert_eq!(port(&v).unwrap(), want, "{input}");
        }
        for bad in [
            "80:x",
            "8000-8010:80",
            "1:2:3:4",
            "80/sctp",
            "{published: 80}",
            "0",
            "70000",
            "[1]",
        ] {
            let v: Value = serde_yaml::from_str(bad).unwrap();
            assert!(port(&v).is_err(), "{bad}");
        }
    }

    #[test]
    fn exposes() {
        let v: Value = serde_yaml::from_str("3000-3001/udp").unwrap();
        assert_eq!(
            expose(&v).unwrap(),
            vec![
                ExposedPort {
                    port: 3000,
                    protocol: Protocol::Udp
                },
                ExposedPort {
                    port: 3001,
                    protocol: Protocol::Udp
                }
            ]
        );
        assert_eq!(expose(&Value::from(80)).unwrap()[0].port, 80);
    }
}
