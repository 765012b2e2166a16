//! Image references, parsed once: `[registry[:port]/]path[:tag][@digest]`.
//!
//! The one parser for image names in telefig: platform resolution splits
//! tag and digest with it, the engine tags mirrored images and finds the
//! registry whose credentials to send with it. It follows Docker's rules
//! (distribution's `reference` grammar): the first path part is a registry
//! host only when it holds a `.` or a `:`, or is `localhost`; a name
//! without one is on Docker Hub (`docker.io`), where a one-part path lives
//! under `library/`. It does not validate a path's characters beyond
//! that: Docker answers for those.

use std::fmt;

/// Docker Hub's canonical host.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry host as written (with its port), if the name had one.
    pub host: Option<String>,
    /// The repository path as written: `vitess/vtctld`, `busybox`.
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the image name is empty")]
    Empty,
    #[error("`{reference}` has an empty part before `{at}`")]
    EmptyPart { reference: String, at: char },
    #[error(
        "`{tag}` is not a valid image tag: use letters, digits, `_`, `.`, `-` (up to 128, not starting with `.` or `-`)"
    )]
    Tag { tag: String },
    #[error("`{digest}` is not a valid image digest: write `sha256:` and 64 hex digits")]
    Digest { digest: String },
    #[error(
        "`{reference}` is not a valid image name: use lowercase letters, digits, `.`, `_`, `-` and `/`"
    )]
    Name { reference: String },
    #[error(
        "`{host}` is not a registry host: write `name.domain` or an address, with `:port` if needed (no scheme, path or spaces)"
    )]
    Host { host: String },
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let empty = |at| ReferenceError::EmptyPart {
            reference: text.to_owned(),
            at,
        };
        let (rest, digest) = match text.split_once('@') {
            Some(("", _)) => return Err(empty('@')),
            Some((rest, digest)) => (rest, Some(check_digest(digest)?.to_owned())),
            None => (text, None),
        };
        // A tag's `:` comes after the last `/`; a port's comes before it.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(colon) => {
                let at = last_slash + colon;
                (&rest[..at], Some(check_tag(&rest[at + 1..])?.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(empty(':'));
        }
        let (host, path) = match name.split_once('/') {
            Some((first, path)) if is_host(first) => (Some(check_host(first)?.to_owned()), path),
            _ => (None, name),
        };
        let valid_path = !path.is_empty()
            && path.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
        if !valid_path {
            return Err(ReferenceError::Name {
                reference: text.to_owned(),
            });
        }
        Ok(Reference {
            host,
            path: path.to_owned(),
            tag,
            digest,
        })
    }

    /// The registry to pull from and authenticate to: `docker.io` when the
    /// name has no host (or names one of Docker Hub's aliases).
    pub fn registry(&self) -> &str {
        self.host.as_deref().map_or(DOCKER_HUB, registry_of)
    }

    /// Whether the name carries its registry host (else the platform's apply).
    pub fn has_host(&self) -> bool {
        self.host.is_some()
    }

    /// The repository as Docker names it in full: `docker.io/library/busybox`.
    pub fn canonical_repository(&self) -> String {
        format!("{}/{}", self.registry(), self.api_path())
    }

    /// The repository path as the registry's API names it: `library/busybox`
    /// on Docker Hub for a one-part path, else the path as written.
    pub fn api_path(&self) -> String {
        if self.registry() == DOCKER_HUB && !self.path.contains('/') {
            format!("library/{}", self.path)
        } else {
            self.path.clone()
        }
    }

    /// The repository as written: `[host/]path`, for `docker tag`'s `repo`.
    pub fn repository(&self) -> String {
        match &self.host {
            Some(host) => format!("{host}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The same name under another registry host (a mirror's).
    pub fn on_host(&self, host: &str) -> Reference {
        Reference {
            host: Some(host.to_owned()),
            ..self.clone()
        }
    }
}

/// The registry a host names: Docker Hub's aliases (`index.docker.io`,
/// `registry-1.docker.io`) are `docker.io`; any other host is itself.
pub fn registry_of(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
        other => other,
    }
}

/// As written: `[host/]path[:tag][@digest]`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Docker's rule: a first path part is a host when it has a `.` or a `:`,
/// or is `localhost`.
fn is_host(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

/// A registry host as Docker's reference grammar has it: DNS labels
/// (letters, digits, inner `-`) joined by `.`, or an IPv6 address in
/// brackets, then an optional `:port` (1-65535).
pub fn check_host(host: &str) -> Result<&str, ReferenceError> {
    let bad = || ReferenceError::Host {
        host: host.escape_debug().to_string(),
    };
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (address, rest) = v6.split_once(']').ok_or_else(bad)?;
            address.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            match rest {
                "" => (None, None),
                _ => (None, Some(rest.strip_prefix(':').ok_or_else(bad)?)),
            }
        }
        None => match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        },
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let name_ok = name.is_none_or(|n| n.len() <= 253 && n.split('.').all(label));
    let port_ok = port.is_none_or(|p| {
        p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if name_ok && port_ok {
        Ok(host)
    } else {
        Err(bad())
    }
}

/// Docker's tag rule: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<&str, ReferenceError> {
    let mut chars = tag.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(tag)
    } else {
        Err(ReferenceError::Tag {
            tag: tag.to_owned(),
        })
    }
}

/// `algorithm:hex`; sha256 (the only one registries serve) must have 64 digits.
fn check_digest(digest: &str) -> Result<&str, ReferenceError> {
    let bad = || ReferenceError::Digest {
        digest: digest.to_owned(),
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(bad)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
    let hex_ok = hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !algorithm_ok || !hex_ok || (algorithm == "sha256" && hex.len() != 64) {
        return Err(bad());
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts() {
        for ok in [
            "registry.internal",
            "127.0.0.1:5055",
            "localhost",
            "localhost:5000",
            "my-registry.example.com:443",
            "[::1]:5000",
            "[fe80::1]",
            "REGISTRY.internal",
        ] {
            assert_eq!(check_host(ok), Ok(ok), "{ok}");
        }
        for bad in [
            "http://evil host/../",
            "evil host",
            "http:",
            "a..b",
            "-a.b",
            "a-.b",
            "",
            "a:0",
            "a:70000",
            "a:",
            "a:b",
            "[::1",
            "[not-v6]:1",
            "a/b",
            "a\u{1b}b",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
        assert!(Reference::parse("http://x/y:1").is_err());
        assert!(Reference::parse("my.reg:99999/y:1").is_err());
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// (reference, host, path, tag, digest, registry, canonical repository)
    type Row<'a> = (
        &'a str,
        Option<&'a str>,
        &'a str,
        Option<&'a str>,
        bool,
        &'a str,
        &'a str,
    );

    #[test]
    fn real_references() {
        let rows: &[Row] = &[
            (
                "busybox",
                None,
                "busybox",
                None,
                false,
                "docker.io",
                "docker.io/library/busybox",
            ),
            (
                "busybox:1.36",
                None,
                "busybox",
                Some("1.36"),
                false,
                "docker.io",
                "docker.io/library/busybox",
            ),
            (
                "vitess/vtctld:abc123",
                None,
                "vitess/vtctld",
                Some("abc123"),
                false,
                "docker.io",
                "docker.io/vitess/vtctld",
            ),
            (
                "docker.io/library/nginx:1.25",
                Some("docker.io"),
                "library/nginx",
                Some("1.25"),
                false,
                "docker.io",
                "docker.io/library/nginx",
            ),
            (
                "index.docker.io/nginx",
                Some("index.docker.io"),
                "nginx",
                None,
                false,
                "docker.io",
                "docker.io/library/nginx",
            ),
            (
                "127.0.0.1:5000/a/b:v1",
                Some("127.0.0.1:5000"),
                "a/b",
                Some("v1"),
                false,
                "127.0.0.1:5000",
                "127.0.0.1:5000/a/b",
            ),
            (
                "127.0.0.1:5000/a",
                Some("127.0.0.1:5000"),
                "a",
                None,
                false,
                "127.0.0.1:5000",
                "127.0.0.1:5000/a",
            ),
            (
                "localhost/x:v2",
                Some("localhost"),
                "x",
                Some("v2"),
                false,
                "localhost",
                "localhost/x",
            ),
            (
                "localhost:5000/x",
                Some("localhost:5000"),
                "x",
                None,
                false,
                "localhost:5000",
                "localhost:5000/x",
            ),
            (
                "registry.internal/team/app/web:9f8e7d6",
                Some("registry.internal"),
                "team/app/web",
                Some("9f8e7d6"),
                false,
                "registry.internal",
                "registry.internal/team/app/web",
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/pinterest/api:b-77",
                Some("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
                "pinterest/api",
                Some("b-77"),
                false,
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/pinterest/api",
            ),
            (
                "gcr.io/distroless/static-debian12:nonroot",
                Some("gcr.io"),
                "distroless/static-debian12",
                Some("nonroot"),
                false,
                "gcr.io",
                "gcr.io/distroless/static-debian12",
            ),
            (
                "quay.io/prometheus/node-exporter:v1.8.1",
                Some("quay.io"),
                "prometheus/node-exporter",
                Some("v1.8.1"),
                false,
                "quay.io",
                "quay.io/prometheus/node-exporter",
            ),
            (
                "zk-register-service:latest",
                None,
                "zk-register-service",
                Some("latest"),
                false,
                "docker.io",
                "docker.io/library/zk-register-service",
            ),
            (
                "my_org/my.app__x:_v",
                None,
                "my_org/my.app__x",
                Some("_v"),
                false,
                "docker.io",
                "docker.io/my_org/my.app__x",
            ),
        ];
        for &(text, host, path, tag, _, registry, canonical) in rows {
            let r = Reference::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.host.as_deref(), host, "{text}");
            assert_eq!(r.path, path, "{text}");
            assert_eq!(r.tag.as_deref(), tag, "{text}");
            assert_eq!(r.digest, None, "{text}");
            assert_eq!(r.registry(), registry, "{text}");
            assert_eq!(r.canonical_repository(), canonical, "{text}");
            assert_eq!(r.to_string(), text, "{text} prints as written");
        }
    }

    #[test]
    fn digests() {
        let cases = [
            (format!("busybox@{D}"), None, "busybox", None),
            (
                format!("127.0.0.1:5000/a/b@{D}"),
                Some("127.0.0.1:5000"),
                "a/b",
                None,
            ),
            (
                format!("reg.internal:443/web:v1@{D}"),
                Some("reg.internal:443"),
                "web",
                Some("v1"),
            ),
        ];
        for (text, host, path, tag) in cases {
            let r = Reference::parse(&text).unwrap();
            assert_eq!(r.host.as_deref(), host, "{text}");
            assert_eq!(r.path, path, "{text}");
            assert_eq!(r.tag.as_deref(), tag, "{text}");
            assert_eq!(r.digest.as_deref(), Some(D), "{text}");
            assert_eq!(r.to_string(), text);
        }
        let moved = Reference::parse(&format!("reg.internal/web@{D}"))
            .unwrap()
            .on_host("mirror.internal:5000");
        assert_eq!(moved.to_string(), format!("mirror.internal:5000/web@{D}"));
    }

    #[test]
    fn rejected() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("  ", "empty"),
            (":v1", "empty part"),
            ("@sha256:00", "empty part"),
            ("web:", "not a valid image tag"),
            ("web:-x", "not a valid image tag"),
            ("web@sha256:123", "not a valid image digest"),
            ("web@md5", "not a valid image digest"),
            ("Web:v1", "not a valid image name"),
            ("reg.internal//web", "not a valid image name"),
            ("reg.internal/", "not a valid image name"),
            ("a b", "not a valid image name"),
        ];
        for (text, want) in cases {
            let err = Reference::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_one_part_docker_hub_path_is_under_library_in_the_api() {
        let r = Reference::parse("busybox:1").unwrap();
        assert_eq!(r.api_path(), "library/busybox");
        let r = Reference::parse("reg.internal/web:1").unwrap();
        assert_eq!(r.api_path(), "web");
    }
}
