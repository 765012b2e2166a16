//! The platform file's `policy:`: what a serviceset may ask of the host.
//!
//! Kubernetes decides this with Pod Security admission; here the platform
//! team writes it beside its sidecar templates. Each rule limits only what
//! it names, and with no `policy:` nothing is limited. It applies to what
//! the serviceset itself asks for: its containers' `docker:` fields, and a
//! bind a sidecar template builds from a value the serviceset passed
//! (`logrotate: {file: …}`). The templates themselves are the platform's
//! and are trusted.
//!
//! [`check`] is the decision, pure: a container's request and the policy in,
//! the first rule it breaks out. Paths are compared lexically normalized,
//! component by component (`/var/log` does not allow `/var/logs-evil`), and
//! again where the symbolic links on the host lead ([`check`] is handed the
//! lookup), since Docker follows them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, de};

use super::bind::{Bind, normalize};
use crate::yaml::{Value, scalar_to_string};

/// `policy:` of the platform file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Host paths under which binds may be made; absent: any.
    pub host_paths: Option<Vec<HostPath>>,
    /// `false`: no bind of a container runtime's socket, or of a directory
    /// holding one (whoever holds it is root on the host).
    pub docker_socket: Option<bool>,
    /// `false`: no `privileged: true`, nor a bind that propagates mounts
    /// back to the host (`shared`, `rshared`).
    pub privileged: Option<bool>,
    /// The capabilities `cap_add` may name; absent: any.
    #[serde(default, deserialize_with = "capabilities")]
    pub cap_add: Option<Vec<String>>,
    /// `false`: no `user` that is root (`root`, uid 0).
    pub run_as_root: Option<bool>,
    /// `false`: the serviceset may not set `cgroup_parent` (the platform's
    /// `defaults.cgroup_parent` holds).
    pub cgroup_parent: Option<bool>,
}

/// An allowed host path prefix: `/var/log`, or `{path: /etc/ssl, read_only: true}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPath {
    pub path: PathBuf,
    pub read_only: bool,
}

/// The sockets that hand out the host: Docker's and containerd's.
const RUNTIME_SOCKETS: [&str; 4] = [
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
];

/// What one container asks of the host, as far as the policy looks.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub privileged: bool,
    pub cap_add: &'a [String],
    pub user: Option<&'a str>,
    pub cgroup_parent: bool,
    /// The binds the serviceset asked for (not those of a template).
    pub binds: Vec<&'a Bind>,
}

/// A rule a request broke: which field it concerns, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's key under `policy:`.
    pub rule: &'static str,
    /// The `docker:` field that asked for it.
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the platform's policy does not allow it (rule `{}`)",
            self.message, self.rule
        )
    }
}

/// The first rule `request` breaks. `real` says where a host path leads
/// once symbolic links are followed (`None`: nowhere else known).
pub fn check(
    policy: &Policy,
    request: &Request,
    real: &dyn Fn(&Path) -> Option<PathBuf>,
) -> Result<(), Violation> {
    let violation = |rule, field, message: String| {
        Err(Violation {
            rule,
            field,
            message,
        })
    };
    if policy.privileged == Some(false) && request.privileged {
        return violation("privileged", "privileged", "`privileged: true`".into());
    }
    if let Some(allowed) = &policy.cap_add {
        for cap in request.cap_add {
            let name = capability(cap);
            if !allowed.iter().any(|a| *a == name || a == "ALL") {
                return violation(
                    "cap_add",
                    "cap_add",
                    format!(
                        "capability `{cap}` (allowed: {})",
                        list_or_none(allowed.iter().map(String::as_str))
                    ),
                );
            }
        }
    }
    if policy.run_as_root == Some(false)
        && let Some(user) = request.user.filter(|u| is_root(u))
    {
        return violation(
            "run_as_root",
            "user",
            format!("`user: {user}` runs as root (uid 0): name a user other than root"),
        );
    }
    if policy.cgroup_parent == Some(false) && request.cgroup_parent {
        return violation(
            "cgroup_parent",
            "cgroup_parent",
            "`cgroup_parent` is the platform's to set (`defaults.cgroup_parent`)".into(),
        );
    }
    for bind in &request.binds {
        check_bind(policy, bind, real)?;
    }
    Ok(())
}

fn check_bind(
    policy: &Policy,
    bind: &Bind,
    real: &dyn Fn(&Path) -> Option<PathBuf>,
) -> Result<(), Violation> {
    let violation = |rule, message: String| {
        Err(Violation {
            rule,
            field: "volumes",
            message,
        })
    };
    if policy.privileged == Some(false) && bind.propagates_to_host() {
        return violation(
            "privileged",
            format!(
                "bind `{}` propagates mounts to the host, which only a privileged container may",
                bind.docker()
            ),
        );
    }
    // Only the host path rules below look at where the path leads.
    if policy.docker_socket != Some(false) && policy.host_paths.is_none() {
        return Ok(());
    }
    let source = bind.source.as_path();
    let leads_to = real(source).filter(|r| r != source);
    // The path as written and where its links lead, each must pass.
    let seen: Vec<&Path> = std::iter::once(source).chain(leads_to.as_deref()).collect();
    let shown = |path: &Path| match &leads_to {
        Some(to) if path == to => format!(
            "bind source `{}` (a symbolic link to `{}`)",
            source.display(),
            to.display()
        ),
        _ => format!("bind source `{}`", source.display()),
    };
    if policy.docker_socket == Some(false) {
        for path in &seen {
            if let Some(socket) = RUNTIME_SOCKETS
                .iter()
                .find(|s| Path::new(s).starts_with(path))
            {
                return violation(
                    "docker_socket",
                    format!(
                        "{} gives the container runtime's socket `{socket}`, and with it the whole host",
                        shown(path)
                    ),
                );
            }
        }
    }
    let Some(allowed) = &policy.host_paths else {
        return Ok(());
    };
    for path in &seen {
        let under = |p: &HostPath| {
            path.starts_with(&p.path)
                || real(&p.path).is_some_and(|r| !r.as_os_str().is_empty() && path.starts_with(r))
        };
        let matching: Vec<&HostPath> = allowed.iter().filter(|p| under(p)).collect();
        if matching.is_empty() {
            return violation(
                "host_paths",
                format!(
                    "{} is not under a host path the platform allows ({})",
                    shown(path),
                    list_or_none(allowed.iter().map(|p| p.path.to_str().unwrap_or("?")))
                ),
            );
        }
        if !bind.read_only() && matching.iter().all(|p| p.read_only) {
            return violation(
                "host_paths",
                format!("{} may only be mounted read-only: add `:ro`", shown(path)),
            );
        }
    }
    Ok(())
}

/// `root`, or uid 0, with or without a group.
fn is_root(user: &str) -> bool {
    let uid = user.split(':').next().unwrap_or(user).trim();
    uid == "root" || (!uid.is_empty() && uid.bytes().all(|b| b == b'0'))
}

/// A capability as Docker compares it: `cap_net_admin` is `NET_ADMIN`.
fn capability(text: &str) -> String {
    let upper = text.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_owned()
}

fn list_or_none<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn capabilities<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let names: Vec<String> = Vec::deserialize(d)?;
    names
        .iter()
        .map(|n| {
            let cap = capability(n);
            if cap.is_empty() || !cap.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                Err(de::Error::custom(format!(
                    "`{}` is not a capability name (NET_BIND_SERVICE, CAP_CHOWN, ALL)",
                    n.escape_debug()
                )))
            } else {
                Ok(cap)
            }
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

impl<'de> Deserialize<'de> for HostPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            path: String,
            #[serde(default)]
            read_only: bool,
        }
        let value = Value::deserialize(d)?;
        let (path, read_only) = match value {
            Value::Mapping(_) => {
                let long: Long = crate::yaml::from_value(value).map_err(de::Error::custom)?;
                (long.path, long.read_only)
            }
            other => (
                scalar_to_string(&other).ok_or_else(|| {
                    de::Error::custom("a host path is a path or {path: …, read_only: true}")
                })?,
                false,
            ),
        };
        let checked = Bind::from_parts(&path, "/x", "").map_err(de::Error::custom)?;
        if !checked.source.is_absolute() {
            return Err(de::Error::custom(format!(
                "host path `{path}` is not absolute"
            )));
        }
        Ok(HostPath {
            path: normalize(&checked.source),
            read_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Policy {
        crate::yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn bind(text: &str) -> Bind {
        let mut bind = Bind::parse(text).unwrap();
        bind.source = normalize(&bind.source);
        bind
    }

    /// `/srv/web/escape` → `/etc`; `/var/run` → `/run`; nothing else is a link.
    fn links(path: &Path) -> Option<PathBuf> {
        for (link, to) in [("/srv/web/escape", "/etc"), ("/var/run", "/run")] {
            if let Ok(rest) = path.strip_prefix(link) {
                return Some(Path::new(to).join(rest));
            }
        }
        Some(path.to_path_buf())
    }

    fn binds(policy_yaml: &str, volumes: &[&str]) -> Result<(), Violation> {
        let binds: Vec<Bind> = volumes.iter().map(|v| bind(v)).collect();
        let request = Request {
            binds: binds.iter().collect(),
            ..Default::default()
        };
        check(&policy(policy_yaml), &request, &links)
    }

    #[test]
    fn no_policy_limits_nothing() {
        let request = Request {
            privileged: true,
            cap_add: &["SYS_ADMIN".into()],
            user: Some("root"),
            cgroup_parent: true,
            binds: Vec::new(),
        };
        let everything = bind("/:/host:rshared");
        let mut request = request;
        request.binds.push(&everything);
        assert_eq!(check(&Policy::default(), &request, &links), Ok(()));
        // Without a host path rule, nothing on the host is looked up.
        let no_lookup = |p: &Path| -> Option<PathBuf> { panic!("looked up {}", p.display()) };
        assert_eq!(check(&Policy::default(), &request, &no_lookup), Ok(()));
        let plain = bind("/srv:/srv");
        let request = Request {
            binds: vec![&plain],
            ..Default::default()
        };
        assert_eq!(
            check(&policy("privileged: false"), &request, &no_lookup),
            Ok(())
        );
    }

    #[test]
    fn host_paths_compare_whole_components_after_normalizing() {
        let p = "host_paths: [/var/log, {path: /etc/ssl, read_only: true}, /srv/web/]";
        for (volume, rule, why) in [
            ("/var/log:/l", None, ""),
            ("/var/log/web:/l", None, ""),
            ("/var/log/../log/web:/l", None, ""),
            ("/etc/ssl/certs:/c:ro", None, ""),
            ("/srv/web/data:/d", None, ""),
            (
                "/var/logs-evil:/l",
                Some("host_paths"),
                "is not under a host path",
            ),
            (
                "/var/log/../../etc:/e",
                Some("host_paths"),
                "bind source `/etc`",
            ),
            ("/var:/v", Some("host_paths"), "is not under"),
            ("/:/host", Some("host_paths"), "is not under"),
            ("/etc/ssl:/c", Some("host_paths"), "read-only: add `:ro`"),
            ("/etc/ssl:/c:rw", Some("host_paths"), "read-only"),
            (
                "/srv/web/escape/shadow:/s:ro",
                Some("host_paths"),
                "a symbolic link to `/etc/shadow`",
            ),
        ] {
            let got = binds(p, &[volume]);
            match rule {
                None => assert_eq!(got, Ok(()), "{volume}"),
                Some(rule) => {
                    let v = got.expect_err(volume);
                    assert_eq!((v.rule, v.field), (rule, "volumes"), "{volume}");
                    assert!(v.message.contains(why), "{volume}: {}", v.message);
                }
            }
        }
        // An empty list allows no bind at all.
        assert_eq!(
            binds("host_paths: []", &["/var/log:/l"]).unwrap_err().rule,
            "host_paths"
        );
    }

    #[test]
    fn the_runtime_socket_and_the_directories_above_it() {
        let p = "docker_socket: false";
        assert_eq!(binds(p, &["/var/log:/l", "/run/user:/u"]), Ok(()));
        for volume in [
            "/var/run/docker.sock:/var/run/docker.sock",
            "/run/docker.sock:/s",
            "/run:/r",
            "/var/run:/r",
            "/:/host:ro",
            "/run/containerd:/c",
        ] {
            let v = binds(p, &[volume]).expect_err(volume);
            assert_eq!(v.rule, "docker_socket", "{volume}");
        }
        // Reached through a link: `/var/run/x` is `/run/x`.
        let v = binds(p, &["/var/run/docker.sock:/s"]).unwrap_err();
        assert!(v.message.contains("socket"), "{}", v.message);
        assert_eq!(binds("docker_socket: true", &["/run:/r"]), Ok(()));
    }

    #[test]
    fn privileged_and_shared_propagation() {
        let p = policy("privileged: false");
        let asks = |privileged, volume: Option<&str>| {
            let b = volume.map(bind);
            let request = Request {
                privileged,
                binds: b.iter().collect(),
                ..Default::default()
            };
            check(&p, &request, &links).map_err(|v| v.rule)
        };
        assert_eq!(asks(false, None), Ok(()));
        assert_eq!(asks(true, None), Err("privileged"));
        assert_eq!(asks(false, Some("/a:/b:rslave")), Ok(()));
        assert_eq!(asks(false, Some("/a:/b:rshared")), Err("privileged"));
        let allowed = policy("privileged: true");
        let request = Request {
            privileged: true,
            ..Default::default()
        };
        assert_eq!(check(&allowed, &request, &links), Ok(()));
    }

    #[test]
    fn capabilities_by_docker_names() {
        let p = policy("cap_add: [net_bind_service, CAP_CHOWN]");
        let asks = |caps: &[&str]| {
            let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
            let request = Request {
                cap_add: &caps,
                ..Default::default()
            };
            check(&p, &request, &links).map_err(|v| (v.rule, v.field))
        };
        assert_eq!(asks(&[]), Ok(()));
        assert_eq!(asks(&["NET_BIND_SERVICE", "cap_chown"]), Ok(()));
        assert_eq!(asks(&["SYS_ADMIN"]), Err(("cap_add", "cap_add")));
        assert_eq!(asks(&["ALL"]), Err(("cap_add", "cap_add")));
        let all = policy("cap_add: [ALL]");
        let caps = ["SYS_ADMIN".to_owned()];
        let request = Request {
            cap_add: &caps,
            ..Default::default()
        };
        assert_eq!(check(&all, &request, &links), Ok(()));
        assert!(crate::yaml::from_str::<Policy>("cap_add: [\"NET ADMIN\"]").is_err());
    }

    #[test]
    fn root_users() {
        let p = policy("run_as_root: false");
        for (user, allowed) in [
            ("root", false),
            ("0", false),
            ("00", false),
            ("0:1000", false),
            ("root:root", false),
            ("1000", true),
            ("1000:0", true),
            ("prod", true),
            ("rooty", true),
        ] {
            let request = Request {
                user: Some(user),
                ..Default::default()
            };
            let got = check(&p, &request, &links).map_err(|v| (v.rule, v.field));
            let want = if allowed {
                Ok(())
            } else {
                Err(("run_as_root", "user"))
            };
            assert_eq!(got, want, "{user}");
        }
        let request = Request {
            user: Some("root"),
            ..Default::default()
        };
        assert_eq!(
            check(&policy("run_as_root: true"), &request, &links),
            Ok(())
        );
    }

    #[test]
    fn cgroup_parent_is_the_platforms() {
        let request = Request {
            cgroup_parent: true,
            ..Default::default()
        };
        let got = check(&policy("cgroup_parent: false"), &request, &links);
        assert_eq!(got.unwrap_err().rule, "cgroup_parent");
        assert_eq!(
            check(&policy("cgroup_parent: true"), &request, &links),
            Ok(())
        );
        assert_eq!(
            check(&policy("cgroup_parent: false"), &Request::default(), &links),
            Ok(())
        );
    }

    #[test]
    fn host_paths_must_be_absolute_plain_paths() {
        for bad in [
            "host_paths: [var/log]",
            "host_paths: [\"/a:/b\"]",
            "host_paths: [\"\"]",
            "host_paths: [{path: /a, readonly: true}]",
            "privileged: maybe",
            "host_path: [/a]",
        ] {
            assert!(crate::yaml::from_str::<Policy>(bad).is_err(), "{bad}");
        }
        let p = policy("host_paths: [/var/log/./web/, {path: /etc/ssl, read_only: true}]");
        assert_eq!(
            p.host_paths.unwrap(),
            [
                HostPath {
                    path: "/var/log/web".into(),
                    read_only: false
                },
                HostPath {
                    path: "/etc/ssl".into(),
                    read_only: true
                }
            ]
        );
    }
}
