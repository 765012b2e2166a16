//! Kubernetes' name rules: a Pod name is a DNS-1123 subdomain, a container
//! name a DNS-1123 label. A name that breaks them is an [`Error::Name`]
//! saying how to fix it.

use super::Error;

#[derive(Clone, Copy)]
pub(super) enum NameKind {
    Pod,
    Container,
}

/// Pod names are DNS-1123 subdomains, container names DNS-1123 labels.
pub(super) fn check_name(name: &str, kind: NameKind) -> Result<(), Error> {
    let (what, max, rule, fix, dots) = match kind {
        NameKind::Pod => (
            "Pod",
            253,
            "lowercase letters, digits, `-` and `.`, at most 253, starting and ending with a letter or digit",
            "pass --name with such a name",
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
