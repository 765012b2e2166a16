//! What Docker says about a container, read into telefig's terms: the
//! inspect answer ([`ContainerDetails`]) and the list call's status text.

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};

use super::status::rfc3339_nanos;
use crate::plan::{Health, Timing};

/// What `inspect` tells beyond a list entry.
#[derive(Debug, Clone, Default)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    /// The image reference it was created from (the list shows an id once
    /// that tag is gone).
    pub image: Option<String>,
    pub running: bool,
    pub restarting: bool,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub health: Option<Health>,
    pub last_health_output: Option<String>,
    /// Every probe output Docker keeps (the last five), oldest first.
    pub health_outputs: Vec<String>,
    pub restart_count: i64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    /// The end of the earliest passing health probe in Docker's log (ns).
    pub healthy_since: Option<i64>,
}

impl ContainerDetails {
    /// When it reached each gate, for the boot repair.
    pub fn timing(&self) -> Timing {
        let at = |t: &Option<String>| t.as_deref().and_then(rfc3339_nanos);
        Timing {
            started_at: at(&self.started_at),
            healthy_since: self.healthy_since,
            finished_at: at(&self.finished_at),
            has_healthcheck: self.health.is_some(),
            healthy_seen_at: None,
        }
    }
}

pub(super) fn details(r: ContainerInspectResponse) -> ContainerDetails {
    let state = r.state.unwrap_or_default();
    let health = state.health.as_ref();
    ContainerDetails {
        image: r.config.as_ref().and_then(|c| c.image.clone()),
        id: r.id.unwrap_or_default(),
        name: r
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        running: state.running.unwrap_or(false),
        restarting: state.restarting.unwrap_or(false),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        health: health.and_then(|h| match h.status {
            Some(HealthStatusEnum::STARTING) => Some(Health::Starting),
            Some(HealthStatusEnum::HEALTHY) => Some(Health::Healthy),
            Some(HealthStatusEnum::UNHEALTHY) => Some(Health::Unhealthy),
            _ => None,
        }),
        last_health_output: health
            .and_then(|h| h.log.as_ref())
            .and_then(|log| log.last())
            .and_then(|l| l.output.clone())
            .map(|o| o.trim().to_owned()),
        health_outputs: health
            .and_then(|h| h.log.as_ref())
            .map(|log| {
                log.iter()
                    .filter_map(|l| l.output.as_deref())
                    .map(|o| o.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        restart_count: r.restart_count.unwrap_or(0),
        started_at: state.started_at.clone(),
        finished_at: state.finished_at,
        error: state.error.filter(|e| !e.is_empty()),
        healthy_since: health.and_then(|h| h.log.as_ref()).and_then(|log| {
            let started = state.started_at.as_deref().and_then(rfc3339_nanos);
            let at = |t: &Option<String>| t.as_deref().and_then(rfc3339_nanos);
            let probes: Vec<Probe> = log
                .iter()
                .map(|l| Probe {
                    start: at(&l.start),
                    end: at(&l.end),
                    passed: l.exit_code == Some(0),
                })
                .collect();
            first_pass(started, &probes)
        }),
    }
}

/// Docker keeps a container's last five probe results, no more.
const DOCKER_HEALTH_LOG: usize = 5;

/// One entry of Docker's health log (times in ns).
struct Probe {
    start: Option<i64>,
    end: Option<i64>,
    passed: bool,
}

/// When the current run (started at `started`) first passed a probe: the
/// end of its earliest passing probe in Docker's log; the log outlives
/// restarts, so probes of an earlier run do not count. The log is a window
/// of five: once it is full of this run's passes, the first pass may have
/// rolled out of it, and all that is known is that the container was healthy
/// no later than the oldest entry and no earlier than its start. The start
/// is then the answer, so that the boot repair never judges a dependent to
/// have started too early on the window's say-so (it would restart a
/// discovery sidecar, deregistering a healthy service, on every daemon
/// start more than five probes after a deploy).
fn first_pass(started: Option<i64>, log: &[Probe]) -> Option<i64> {
    let run: Vec<&Probe> = log
        .iter()
        .filter(|p| p.start.is_some_and(|t| t >= started.unwrap_or(i64::MIN)))
        .collect();
    let first = run
        .iter()
        .filter(|p| p.passed)
        .filter_map(|p| p.end)
        .min()?;
    let window_lost_it =
        log.len() >= DOCKER_HEALTH_LOG && run.len() == log.len() && run.iter().all(|p| p.passed);
    match started {
        Some(started) if window_lost_it => Some(started),
        _ => Some(first),
    }
}

/// The list call's status text carries health: "Up 3 minutes (healthy)".
pub(super) fn health_from_status(status: &str) -> Option<Health> {
    if status.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    }
}

/// …and the exit code: "Exited (137) 2 seconds ago".
pub(super) fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(start: i64, passed: bool) -> Probe {
        Probe {
            start: Some(start),
            end: Some(start + 5),
            passed,
        }
    }

    #[test]
    fn the_first_pass_of_this_run_or_its_start_once_the_window_lost_it() {
        // Failing, then passing: the first pass of this run.
        let log = [probe(100, false), probe(200, true), probe(300, true)];
        assert_eq!(first_pass(Some(50), &log), Some(205));
        // Probes of an earlier run do not count.
        let log = [probe(10, true), probe(200, false), probe(300, true)];
        assert_eq!(first_pass(Some(150), &log), Some(305));
        // Five passes of this run: the first may have rolled out; the start
        // is the earliest it can have been.
        let log: Vec<Probe> = (1..=5).map(|i| probe(i * 100, true)).collect();
        assert_eq!(first_pass(Some(50), &log), Some(50));
        // Five entries but one failed: the transition is in the window.
        let mut log: Vec<Probe> = (1..=5).map(|i| probe(i * 100, true)).collect();
        log[0].passed = false;
        assert_eq!(first_pass(Some(50), &log), Some(205));
        // No pass at all: not healthy.
        assert_eq!(first_pass(Some(50), &[probe(100, false)]), None);
    }

    #[test]
    fn status_text() {
        assert_eq!(
            health_from_status("Up 3 minutes (healthy)"),
            Some(Health::Healthy)
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)"),
            Some(Health::Starting)
        );
        assert_eq!(health_from_status("Up 1 second"), None);
        assert_eq!(
            exit_code_from_status("Exited (137) 2 seconds ago"),
            Some(137)
        );
        assert_eq!(exit_code_from_status("Up 2 seconds"), None);
    }
}
