//! Checks that need the whole parsed file: names, ports, labels. Each
//! failure points at the container's entry. The values Docker takes for
//! resources (`cpus`, `mem_limit`, `restart`) are read where containers
//! are built, in `platform`, for declared containers and sidecars alike.

use std::collections::HashMap;

use super::Serviceset;
use crate::diagnostic::SourceError;

/// Labels under this prefix belong to telefig (SPEC §5).
pub const RESERVED_LABEL_PREFIX: &str = "telefig.";

pub(super) fn check(set: &Serviceset) -> Result<(), SourceError> {
    if set.containers.is_empty() {
        return Err(SourceError::new(
            &set.file,
            "the serviceset declares no containers: add a top-level key per container",
        ));
    }
    let mut ports: HashMap<(u16, &str), &str> = HashMap::new();
    for c in &set.containers {
        if !is_docker_name(&c.name) {
            return Err(set.error_at(
                &c.name,
                None,
                format!(
                    "`{}` is not a valid container name: use letters, digits, `_`, `.` and `-`, starting with a letter or digit (at least 2 characters)",
                    c.name
                ),
            ));
        }
        let docker = &c.entry.docker;
        if let Some((key, _)) = docker
            .labels
            .0
            .iter()
            .find(|(k, _)| k.starts_with(RESERVED_LABEL_PREFIX))
        {
            return Err(set.error_at(
                &c.name,
                Some("labels"),
                format!("label `{key}` on `{}` is in the `telefig.` namespace, which telefig sets itself; rename it", c.name),
            ));
        }
        for port in &docker.ports {
            let (number, protocol) =
                host_port(&port.0).map_err(|msg| set.error_at(&c.name, Some("ports"), msg))?;
            if let Some(other) = ports.insert((number, protocol), &c.name) {
                let number = match protocol {
                    "tcp" => number.to_string(),
                    _ => format!("{number}/{protocol}"),
                };
                return Err(set.error_at(
                    &c.name,
                    Some("ports"),
                    format!("host port {number} is declared by both `{other}` and `{}`; with host networking only one can bind it", c.name),
                ));
            }
        }
    }
    Ok(())
}

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A declared host port: `8080` or `8080/udp` (tcp, udp or sctp).
fn host_port(text: &str) -> Result<(u16, &str), String> {
    let (number, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    number
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| number.parse::<u16>().ok())
        .flatten()
        .filter(|p| *p > 0)
        .zip(["tcp", "udp", "sctp"].into_iter().find(|p| *p == protocol))
        .ok_or_else(|| {
            format!("`{text}` is not a port number (1-65535), with /tcp, /udp or /sctp if not tcp")
        })
}

/// A port number as text (a sidecar's `port`): 1-65535, digits only.
pub fn is_port(text: &str) -> bool {
    host_port(text).is_ok_and(|(_, protocol)| protocol == "tcp") && !text.contains('/')
}

/// `512m`, `2g`, `1024` (bytes), `1.5g`: exactly a whole number of bytes,
/// at most what Docker's 64-bit field holds.
pub fn parse_bytes(text: &str) -> Result<i64, String> {
    let bad = |why: &str| {
        format!(
            "`{text}` is not a memory size{why}: use bytes or a number with k, m, g or t (\"512m\", \"1.5g\")"
        )
    };
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (number, shift) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 10),
        Some(b'm') => (&t[..t.len() - 1], 20),
        Some(b'g') => (&t[..t.len() - 1], 30),
        Some(b't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return Err(bad(""));
    }
    let too_large = || bad(" Docker can take (more than 8 EiB)");
    let scaled = format!("{whole}{fraction}")
        .parse::<u128>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(too_large)?;
    let per_byte = u32::try_from(fraction.len())
        .ok()
        .and_then(|places| 10u128.checked_pow(places))
        .ok_or_else(|| bad(" (too many decimals)"))?;
    if scaled % per_byte != 0 {
        return Err(bad(" (not a whole number of bytes)"));
    }
    match i64::try_from(scaled / per_byte) {
        Ok(0) => Err(bad(" (it is zero)")),
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(too_large()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names() {
        for ok in ["web", "a1", "vt-ctld_2.x"] {
            assert!(is_docker_name(ok), "{ok}");
        }
        for bad in ["", "a", "-web", "we b", "web/x", "ü1"] {
            assert!(!is_docker_name(bad), "{bad}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("8191p").ok(), None);
        for (bad, why) in [
            ("lots", "is not a memory size:"),
            ("99999999999999999999g", "more than 8 EiB"),
            ("8388608t", "more than 8 EiB"),
            ("1.3k", "not a whole number of bytes"),
            ("1e3m", "is not a memory size:"),
            ("-5m", "is not a memory size:"),
            ("+5m", "is not a memory size:"),
            ("0", "it is zero"),
            ("5.m", "is not a memory size:"),
            ("inf", "is not a memory size:"),
        ] {
            let err = parse_bytes(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn host_ports() {
        assert_eq!(host_port("8080"), Ok((8080, "tcp")));
        assert_eq!(host_port("53/udp"), Ok((53, "udp")));
        for bad in [
            "0", "65536", "70000", "-5", "+80", "8080:80", "80/xyz", "", "80/",
        ] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
        assert!(is_port("18126") && !is_port("53/udp") && !is_port("70000"));
    }
}
