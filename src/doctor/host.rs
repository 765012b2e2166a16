//! The checks that ask the Docker Engine about itself: reachable, API
//! version, live-restore, and the restart policy each telefig container
//! carries compared with the one it was created with.

use std::collections::BTreeMap;
use std::path::Path;

use super::Check;
use crate::engine::{self, ApiVersion, HostFacts, endpoint};
use crate::state::StateDir;

/// The oldest Engine API telefig works with: healthcheck `StartPeriod`,
/// which every gate deadline relies on, came with 1.29 (Docker 17.05).
const MIN_API: ApiVersion = ApiVersion {
    major: 1,
    minor: 29,
};

pub(super) fn docker(f: &HostFacts) -> Check {
    let os = f
        .operating_system
        .as_deref()
        .map_or(String::new(), |os| format!(" on {os}"));
    Check::ok(
        "docker",
        format!(
            "Docker Engine {}{os} answers at {}, API {}",
            f.server_version,
            endpoint(),
            f.api_version
        ),
    )
}

pub(super) fn docker_unreachable(err: &engine::Error) -> Check {
    match err {
        engine::Error::Connect { endpoint, source } => Check::fail(
            "docker",
            format!("cannot reach the Docker Engine at {endpoint}: {source}"),
            "start dockerd (`systemctl start docker`), or point DOCKER_HOST at it",
        ),
        other => Check::fail(
            "docker",
            other.to_string(),
            "look at dockerd's log (`journalctl -u docker`)",
        ),
    }
}

pub(super) fn api_version(f: &HostFacts) -> Check {
    let range = match &f.min_api_version {
        Some(min) => format!("daemon accepts {min}–{}", f.api_version),
        None => format!("daemon speaks up to {}", f.api_version),
    };
    let detail = format!(
        "API {} ({range}); telefig speaks {}",
        f.api_version, f.negotiated_api_version
    );
    match ApiVersion::parse(&f.negotiated_api_version) {
        Some(v) if v >= MIN_API => Check::ok("api version", detail),
        Some(_) => Check::fail(
            "api version",
            detail,
            format!(
                "upgrade the Docker Engine: telefig needs API {MIN_API} or newer (Docker 17.05+)"
            ),
        ),
        None => Check::warn(
            "api version",
            detail,
            "telefig cannot read this version; run `docker version` and check the Engine",
        ),
    }
}

pub(super) fn live_restore(f: &HostFacts) -> Check {
    if f.live_restore_enabled {
        Check::ok(
            "live-restore",
            "enabled: containers keep running while dockerd restarts",
        )
    } else {
        Check::warn(
            "live-restore",
            "disabled: restarting or upgrading dockerd stops every container on the host",
            "add \"live-restore\": true to /etc/docker/daemon.json and run `systemctl reload docker`",
        )
    }
}

/// Restart policy per (serviceset, container) from the records `start` left.
pub(super) type RecordedPolicies = BTreeMap<(String, String), String>;

pub(super) fn recorded_policies(state_dir: &Path) -> RecordedPolicies {
    // An unreadable record is reported by the state-dir check; here the
    // role's default stands in for it.
    let records = StateDir::new(state_dir).list().unwrap_or_default();
    records
        .iter()
        .flat_map(|r| {
            r.expanded.containers.iter().map(|c| {
                (
                    (r.serviceset.to_string(), c.name.clone()),
                    c.create.host_config.restart_policy.name.clone(),
                )
            })
        })
        .collect()
}

/// Each container should carry the policy it was created with: the one
/// recorded by `start`, else the default for its role.
pub(super) fn restart_policies(f: &HostFacts, recorded: &RecordedPolicies) -> Check {
    let mut wrong = Vec::new();
    for c in &f.containers {
        let expected = recorded
            .get(&(c.serviceset.clone(), c.name.clone()))
            .map_or(c.default_policy(), String::as_str);
        if c.policy != expected {
            wrong.push((c, expected));
        }
    }
    if wrong.is_empty() {
        return Check::ok(
            "restart policies",
            format!(
                "{} telefig container(s) carry the policy they were created with",
                f.containers.len()
            ),
        );
    }
    let detail = wrong
        .iter()
        .map(|(c, expected)| format!("{} has `{}`, expected `{expected}`", c.name, c.policy))
        .collect::<Vec<_>>()
        .join("; ");
    let fix = wrong
        .iter()
        .map(|(c, expected)| format!("docker update --restart={expected} {}", c.name))
        .collect::<Vec<_>>()
        .join(" && ");
    Check::warn("restart policies", detail, format!("run `{fix}`"))
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::doctor::Status;
    use crate::engine::ContainerRestart;

    pub(crate) fn facts() -> HostFacts {
        HostFacts {
            server_version: "27.3.1".into(),
            api_version: "1.47".into(),
            min_api_version: Some("1.24".into()),
            negotiated_api_version: "1.47".into(),
            operating_system: None,
            live_restore_enabled: false,
            logging_driver: None,
            docker_root_dir: None,
            system_time: Some("2026-03-01T12:00:01Z".into()),
            observed_at: UNIX_EPOCH + Duration::from_secs(1_772_366_400),
            containers: vec![],
        }
    }

    #[test]
    fn live_restore_off_warns_with_the_fix() {
        let c = live_restore(&facts());
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("\"live-restore\": true"));
    }

    #[test]
    fn old_api_fails() {
        let mut f = facts();
        assert_eq!(api_version(&f).status, Status::Ok);
        f.negotiated_api_version = "1.25".into();
        assert_eq!(api_version(&f).status, Status::Fail);
    }

    #[test]
    fn restart_policy_expected_from_record_else_role() {
        let mut f = facts();
        let c = |name: &str, role: &str, policy: &str| ContainerRestart {
            name: name.into(),
            serviceset: "shop".into(),
            role: role.into(),
            policy: policy.into(),
        };
        f.containers = vec![
            c("web", "main", "unless-stopped"),
            c("migrate", "job", "no"),
            c("worker", "main", "always"),
            c("web-logging", "sidecar", "no"),
        ];
        let recorded =
            RecordedPolicies::from([(("shop".into(), "worker".into()), "always".into())]);
        let check = restart_policies(&f, &recorded);
        assert_eq!(check.status, Status::Warn);
        assert_eq!(
            check.detail,
            "web-logging has `no`, expected `unless-stopped`"
        );
        assert_eq!(
            check.fix.as_deref(),
            Some("run `docker update --restart=unless-stopped web-logging`")
        );
    }
}
