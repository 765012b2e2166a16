//! Checks that need the whole parsed file: names, ports, labels, values
//! whose set is closed. Each failure points at the container's entry.

use std::collections::HashMap;

use super::Serviceset;
use crate::diagnostic::{SourceError, did_you_mean};

/// Labels under this prefix belong to telefig (SPEC §5).
pub const RESERVED_LABEL_PREFIX: &str = "telefig.";

pub(super) fn check(set: &Serviceset) -> Result<(), SourceError> {
    if set.containers.is_empty() {
        return Err(SourceError::new(
            &set.file,
            "the serviceset declares no containers: add a top-level key per container",
        ));
    }
    let mut ports: HashMap<u16, &str> = HashMap::new();
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
        if let Some(restart) = &docker.restart
            && !is_restart_policy(restart)
        {
            return Err(set
                .error_at(
                    &c.name,
                    Some("restart"),
                    format!("unknown restart policy `{restart}` for `{}`", c.name),
                )
                .with_help(
                    did_you_mean(restart, ["no", "always", "unless-stopped", "on-failure"]).or(
                        Some("use no, always, unless-stopped or on-failure[:N]".into()),
                    ),
                ));
        }
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
        if let Some(cpus) = docker.cpus
            && !(cpus > 0.0 && cpus.is_finite())
        {
            return Err(set.error_at(
                &c.name,
                Some("cpus"),
                format!("cpus of `{}` must be a positive number", c.name),
            ));
        }
        if let Some(mem) = &docker.mem_limit {
            parse_bytes(&mem.0).map_err(|msg| set.error_at(&c.name, Some("mem_limit"), msg))?;
        }
        for port in &docker.ports {
            let number: u16 = port
                .0
                .split(['/', ':'])
                .next()
                .and_then(|p| p.parse().ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    set.error_at(
                        &c.name,
                        Some("ports"),
                        format!("`{}` is not a port number (1-65535)", port.0),
                    )
                })?;
            if let Some(other) = ports.insert(number, &c.name) {
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

fn is_restart_policy(policy: &str) -> bool {
    match policy.split_once(':') {
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        None => matches!(policy, "no" | "always" | "unless-stopped" | "on-failure"),
        _ => false,
    }
}

/// `512m`, `2g`, `1024` (bytes), `1.5g`.
pub fn parse_bytes(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (number, scale) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        Some((i, 't')) => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| *n > 0.0 && n.is_finite())
        .map(|n| (n * scale as f64) as i64)
        .ok_or_else(|| {
            format!("`{text}` is not a memory size: use bytes or a number with k, m, g (\"512m\")")
        })
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
        assert!(parse_bytes("lots").is_err());
    }
}
