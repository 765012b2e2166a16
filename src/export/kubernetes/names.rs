//! Kubernetes' name rules: object names are DNS-1123 subdomains (CronJobs
//! and Jobs shorter, as their Pods' names and labels are derived from
//! them), container names DNS-1123 labels; label keys and values, and
//! Secret keys, have rules of their own. A name that breaks them is an
//! [`Error::Name`] saying how to fix it; a label that breaks them is moved
//! to an annotation by the caller.

use super::Error;

#[derive(Clone, Copy)]
pub(super) enum NameKind {
    /// A Deployment, Secret or Job: a DNS-1123 subdomain, at most 63
    /// (the Job controller puts the name in a label).
    Object,
    /// A CronJob: at most 52 (its Jobs append 11 characters).
    CronJob,
    Container,
}

pub(super) fn check_name(name: &str, kind: NameKind) -> Result<(), Error> {
    let (what, max, rule, fix, dots) = match kind {
        NameKind::Object => (
            "object",
            63,
            "lowercase letters, digits, `-` and `.`, at most 63, starting and ending with a letter or digit",
            "pass --name with such a name",
            true,
        ),
        NameKind::CronJob => (
            "CronJob",
            52,
            "lowercase letters, digits, `-` and `.`, at most 52, starting and ending with a letter or digit",
            "shorten the serviceset name (--name) or the cron entry's name",
            true,
        ),
        NameKind::Container => (
            "container",
            63,
            "lowercase letters, digits and `-`, at most 63, starting and ending with a letter or digit",
            "rename the container in the serviceset",
            false,
        ),
    };
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = name.len() <= max
        && name.chars().all(allowed)
        && edge(name.chars().next())
        && edge(name.chars().last());
    if valid {
        Ok(())
    } else {
        Err(Error::Name {
            what,
            name: name.to_owned(),
            rule,
            fix,
        })
    }
}

/// A DNS-1123 label made from any text: `VtctldPeriodicMonitoring` →
/// `vtctld-periodic-monitoring`, `/var/log` → `var-log`; at most `max`.
pub(super) fn dns_label(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('-');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        });
    }
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out: String = out.trim_matches('-').chars().take(max).collect();
    out.trim_end_matches('-').to_owned()
}

/// A label name segment: at most 63, alphanumerics, `-`, `_`, `.` inside.
fn is_label_name(name: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(inner)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain.
pub(super) fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            prefix.len() <= 253
                && prefix.split('.').all(|part| {
                    is_label_name(part)
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
                && is_label_name(name)
        }
        None => is_label_name(key),
    }
}

/// A label value: empty, or a label name segment.
pub(super) fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_label_name(value)
}

/// A Secret key: alphanumerics, `-`, `_` and `.`; other characters become `_`.
pub(super) fn secret_key(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
