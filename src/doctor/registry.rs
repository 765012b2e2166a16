//! The registries check: can dockerd reach each registry the platform pulls
//! from? dockerd resolves a probe reference on each (the Engine API's
//! distribution inspect), so the check speaks TLS as a pull does and takes
//! dockerd's network path, proxy and credentials — not this process's.
//! Any answer from the registry, even "no such image" or "log in first",
//! proves it reachable; only no answer counts against it.

use std::path::Path;
use std::time::Duration;

use super::Check;
use crate::engine::{Engine, RegistryAnswer};
use crate::platform::Platform;

/// How long dockerd gets to ask one registry (DNS, TLS, token included).
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The image asked for: any name works, as a registry that does not have
/// it still answers (404), which is all this check needs.
const PROBE_IMAGE: &str = "telefig-doctor/probe:latest";

/// Where a registry sits in the platform's pull order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegistryRole {
    Primary,
    Mirror,
}

/// What became of asking dockerd about one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    Answer(RegistryAnswer),
    /// dockerd did not answer within [`REGISTRY_TIMEOUT`], or erred itself.
    Failed(String),
    /// The Docker Engine is unreachable: nothing could be asked.
    NotRun,
}

pub(super) async fn registries(engine: Option<&Engine>, platform: Option<&Path>) -> Vec<Check> {
    let platform = match Platform::load(platform) {
        Ok(p) => p,
        Err(e) => {
            return vec![Check::fail(
                "registry",
                format!("cannot load the platform file: {e}"),
                "fix the platform file, or pass --platform FILE",
            )];
        }
    };
    let r = &platform.registries;
    let hosts: Vec<(RegistryRole, String)> = std::iter::once(&r.primary)
        .filter(|p| !p.is_empty())
        .map(|p| (RegistryRole::Primary, p.clone()))
        .chain(r.mirrors.iter().map(|m| (RegistryRole::Mirror, m.clone())))
        .collect();
    let probes =
        futures_util::future::join_all(hosts.iter().map(|(_, host)| probe(engine, host))).await;
    let results: Vec<_> = hosts
        .into_iter()
        .zip(probes)
        .map(|((role, host), probe)| (role, host, probe))
        .collect();
    registry_checks(&platform.source, &results)
}

async fn probe(engine: Option<&Engine>, host: &str) -> Probe {
    let Some(engine) = engine else {
        return Probe::NotRun;
    };
    let reference = format!("{host}/{PROBE_IMAGE}");
    match tokio::time::timeout(REGISTRY_TIMEOUT, engine.inspect_distribution(&reference)).await {
        Ok(Ok(answer)) => Probe::Answer(answer),
        Ok(Err(e)) => Probe::Failed(e.to_string()),
        Err(_) => Probe::Failed(format!(
            "dockerd got no answer within {}s",
            REGISTRY_TIMEOUT.as_secs()
        )),
    }
}

/// How a registry answered, or why it counts as unreachable.
fn reachable(probe: &Probe) -> Option<Result<String, String>> {
    match probe {
        Probe::Answer(RegistryAnswer::Serves { digest }) => Some(Ok(format!(
            "answers through dockerd ({PROBE_IMAGE} is {digest})"
        ))),
        Probe::Answer(RegistryAnswer::Answered { status, message }) => Some(Ok(format!(
            "answers through dockerd (HTTP {status} for {PROBE_IMAGE}: {message})"
        ))),
        Probe::Answer(RegistryAnswer::Unreachable { message }) => Some(Err(message.clone())),
        Probe::Failed(why) => Some(Err(why.clone())),
        Probe::NotRun => None,
    }
}

/// Verdicts from the probes: an unreachable registry is a warning while
/// another one answers (pulls fall back to it), a failure when none does.
fn registry_checks(source: &Path, results: &[(RegistryRole, String, Probe)]) -> Vec<Check> {
    if results.is_empty() {
        return vec![Check::ok(
            "registry",
            format!(
                "the platform ({}) names no registry; images come from where their references say",
                source.display()
            ),
        )];
    }
    let answering: Vec<&str> = results
        .iter()
        .filter(|(_, _, p)| matches!(reachable(p), Some(Ok(_))))
        .map(|(_, h, _)| h.as_str())
        .collect();
    let fix = format!(
        "check dockerd's network path to it (DNS, proxy, firewall, TLS: `docker pull` an image from it) and that the registry runs, or its entry in {}",
        source.display()
    );
    results
        .iter()
        .map(|(role, host, probe)| {
            let what = match role {
                RegistryRole::Primary => "primary",
                RegistryRole::Mirror => "mirror",
            };
            match reachable(probe) {
                Some(Ok(how)) => Check::ok("registry", format!("{what} {host} {how}")),
                Some(Err(why)) if answering.is_empty() => Check::fail(
                    "registry",
                    format!("{what} {host} is unreachable from dockerd ({why}), and no other registry answers: pulls will fail"),
                    fix.clone(),
                ),
                Some(Err(why)) => Check::warn(
                    "registry",
                    format!(
                        "{what} {host} is unreachable from dockerd ({why}); pulls fall back to {}",
                        answering.join(", ")
                    ),
                    fix.clone(),
                ),
                None => Check::warn(
                    "registry",
                    format!("{what} {host} not checked: the check asks dockerd, which does not answer"),
                    "fix the docker check first",
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn an_unreachable_primary_fails_only_without_a_mirror() {
        let src = Path::new("p.yaml");
        let down = || {
            Probe::Answer(RegistryAnswer::Unreachable {
                message: "connection refused".into(),
            })
        };
        let up = || {
            Probe::Answer(RegistryAnswer::Answered {
                status: 401,
                message: "unauthorized: authentication required".into(),
            })
        };
        let alone = registry_checks(src, &[(RegistryRole::Primary, "r:1".into(), down())]);
        assert_eq!(alone[0].status, Status::Fail);
        assert!(
            alone[0]
                .detail
                .starts_with("primary r:1 is unreachable from dockerd (connection refused)")
        );
        let with_mirror = registry_checks(
            src,
            &[
                (RegistryRole::Primary, "r:1".into(), down()),
                (RegistryRole::Mirror, "m:5000".into(), up()),
            ],
        );
        assert_eq!(with_mirror[0].status, Status::Warn);
        assert!(with_mirror[0].detail.ends_with("pulls fall back to m:5000"));
        assert_eq!(with_mirror[1].status, Status::Ok);
        assert!(with_mirror[1].detail.contains("HTTP 401"));
    }

    #[test]
    fn a_timeout_counts_against_the_registry_and_no_docker_checks_nothing() {
        let src = Path::new("p.yaml");
        let slow = Probe::Failed("dockerd got no answer within 10s".into());
        let checks = registry_checks(src, &[(RegistryRole::Primary, "r".into(), slow)]);
        assert_eq!(checks[0].status, Status::Fail);
        let checks = registry_checks(src, &[(RegistryRole::Primary, "r".into(), Probe::NotRun)]);
        assert_eq!(checks[0].status, Status::Warn);
        assert!(checks[0].detail.contains("not checked"), "{checks:?}");
        let serves = Probe::Answer(RegistryAnswer::Serves {
            digest: "sha256:ab".into(),
        });
        let checks = registry_checks(src, &[(RegistryRole::Mirror, "m".into(), serves)]);
        assert_eq!(checks[0].status, Status::Ok);
    }
}
