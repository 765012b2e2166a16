//! Facts about the Docker host, for `telefig doctor`: what the daemon says
//! about itself (versions, live-restore, its clock) and the restart policy
//! each telefig container actually carries. This file gathers; the doctor
//! command judges. It does not touch a container.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::InspectContainerOptions;
use serde::Serialize;

use super::status::rfc3339_nanos;
use super::{Engine, Error, status_is};
use crate::platform::{LABEL_ROLE, LABEL_SERVICESET};

/// Where the Docker Engine is: `DOCKER_HOST`, else the local socket.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// What `doctor` needs to know about the daemon.
#[derive(Debug, Clone, Serialize)]
pub struct HostFacts {
    /// The Engine's version (`docker version`'s "Server").
    pub server_version: String,
    /// The newest Engine API version the daemon speaks.
    pub api_version: String,
    /// The oldest Engine API version the daemon still accepts.
    pub min_api_version: Option<String>,
    /// The API version telefig agreed on with the daemon, and speaks.
    pub negotiated_api_version: String,
    pub operating_system: Option<String>,
    pub live_restore_enabled: bool,
    /// The daemon's clock, RFC 3339 as Docker reports it.
    pub system_time: Option<String>,
    /// The local clock halfway through the `info` call that read `system_time`.
    #[serde(skip)]
    pub observed_at: SystemTime,
    /// Every container telefig created (backups left by an interrupted
    /// `start` excluded), with the restart policy Docker holds for it.
    pub containers: Vec<ContainerRestart>,
}

/// One telefig container's restart policy, as Docker holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRestart {
    pub name: String,
    pub serviceset: String,
    /// The `telefig.role` label: `main`, `sidecar` or `job`.
    pub role: String,
    /// `HostConfig.RestartPolicy.Name`; `no` when Docker reports none.
    pub policy: String,
}

impl ContainerRestart {
    /// The policy telefig gives this role when the serviceset sets no `restart`.
    pub fn default_policy(&self) -> &'static str {
        crate::platform::default_restart_policy(&self.role)
    }
}

impl HostFacts {
    /// The daemon's clock minus the local one, when the daemon reported a
    /// time this can read. Positive: the daemon is ahead.
    pub fn clock_skew(&self) -> Option<SignedDuration> {
        let daemon = rfc3339_nanos(self.system_time.as_deref()?)?;
        let local =
            i64::try_from(self.observed_at.duration_since(UNIX_EPOCH).ok()?.as_nanos()).ok()?;
        Some(SignedDuration(daemon - local))
    }
}

/// A difference between two clocks, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedDuration(pub i64);

impl SignedDuration {
    pub fn abs(self) -> Duration {
        Duration::from_nanos(self.0.unsigned_abs())
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl Engine {
    /// `docker version`, `docker info`, and an inspect of every telefig
    /// container for its restart policy.
    pub async fn host_facts(&self) -> Result<HostFacts, Error> {
        let version = self.docker.version().await.map_err(daemon_err("version"))?;
        let before = SystemTime::now();
        let info = self.docker.info().await.map_err(daemon_err("info"))?;
        let after = SystemTime::now();
        let observed_at = before + after.duration_since(before).unwrap_or_default() / 2;
        let negotiated = self.docker.client_version();
        Ok(HostFacts {
            server_version: version
                .version
                .or(info.server_version)
                .unwrap_or_else(|| "unknown".into()),
            api_version: version.api_version.unwrap_or_else(|| "unknown".into()),
            min_api_version: version.min_api_version,
            negotiated_api_version: format!(
                "{}.{}",
                negotiated.major_version, negotiated.minor_version
            ),
            operating_system: info.operating_system,
            live_restore_enabled: info.live_restore_enabled.unwrap_or(false),
            system_time: info.system_time,
            observed_at,
            containers: self.restart_policies().await?,
        })
    }

    async fn restart_policies(&self) -> Result<Vec<ContainerRestart>, Error> {
        let mut out = Vec::new();
        for o in self.list(Some(LABEL_SERVICESET)).await? {
            if o.is_backup() {
                continue;
            }
            let inspect = self
                .docker
                .inspect_container(&o.id, None::<InspectContainerOptions>);
            let inspected = match self.call("inspect", &o.name, inspect).await? {
                Ok(r) => r,
                // Removed between the list and the inspect: nothing to check.
                Err(e) if status_is(&e, 404) => continue,
                Err(source) => {
                    return Err(Error::Docker {
                        op: "inspect",
                        target: o.name,
                        source,
                    });
                }
            };
            let policy = inspected
                .host_config
                .and_then(|h| h.restart_policy)
                .and_then(|p| p.name)
                .map(|n| n.to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "no".into());
            out.push(ContainerRestart {
                serviceset: o.serviceset().unwrap_or_default().to_owned(),
                role: o.labels.get(LABEL_ROLE).cloned().unwrap_or_default(),
                name: o.name,
                policy,
            });
        }
        out.sort_by(|a, b| (&a.serviceset, &a.name).cmp(&(&b.serviceset, &b.name)));
        Ok(out)
    }
}

fn daemon_err(op: &'static str) -> impl FnOnce(bollard::errors::Error) -> Error {
    move |source| Error::Docker {
        op,
        target: "daemon".into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_time_with_and_without_an_offset() {
        let utc = rfc3339_nanos("2026-11-23T21:54:57.5Z").unwrap();
        assert_eq!(rfc3339_nanos("2026-11-23T22:54:57.5+01:00"), Some(utc));
        assert_eq!(rfc3339_nanos("2026-11-23T16:24:57.5-05:30"), Some(utc));
        assert_eq!(
            rfc3339_nanos("2026-11-23T21:54:57Z"),
            Some(utc - 500_000_000)
        );
        assert_eq!(rfc3339_nanos("yesterday"), None);
    }

    #[test]
    fn skew_is_daemon_minus_local() {
        let facts = HostFacts {
            server_version: "27.0.0".into(),
            api_version: "1.46".into(),
            min_api_version: None,
            negotiated_api_version: "1.46".into(),
            operating_system: None,
            live_restore_enabled: true,
            system_time: Some("1970-01-01T00:00:10Z".into()),
            observed_at: UNIX_EPOCH + Duration::from_secs(4),
            containers: vec![],
        };
        let skew = facts.clock_skew().unwrap();
        assert_eq!(skew, SignedDuration(6_000_000_000));
        assert_eq!(skew.abs(), Duration::from_secs(6));
    }

    #[test]
    fn jobs_default_to_no_restart() {
        let mut c = ContainerRestart {
            name: "migrate".into(),
            serviceset: "shop".into(),
            role: "job".into(),
            policy: "no".into(),
        };
        assert_eq!(c.default_policy(), "no");
        c.role = "sidecar".into();
        assert_eq!(c.default_policy(), "unless-stopped");
    }
}
