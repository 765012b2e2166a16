//! What the start walk waits for at each container, and how long; whether
//! a gate is met from what Docker says of the container ([`judge_gate`]);
//! whether a failed gate is the kind a fresh plan may fix; whether a
//! container, as `status` sees it, is ok. Pure: the executor and `status`
//! follow these.

use std::time::Duration;

use super::Health;
use crate::graph::{Gate, Milestone};
use crate::platform::ContainerSpec;

/// How long a container may take to be running after `start` returns.
pub const STARTED_BUDGET: Duration = Duration::from_secs(60);

/// One gate the walk waits for at a container, in order, with its budget
/// (from the moment the container was started; `Duration::MAX`: only the
/// operation's deadline bounds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateWait {
    pub gate: Gate,
    pub budget: Duration,
}

impl GateWait {
    /// What its dependents are told once it passes.
    pub fn milestone(&self) -> Milestone {
        match self.gate {
            Gate::Started => Milestone::Started,
            Gate::Healthy => Milestone::Healthy,
            Gate::Completed => Milestone::Completed,
        }
    }
}

/// The gates of `spec`: a job, exited 0 (a run may take as long as the
/// operation allows); anything else, running within a minute, then healthy
/// within its healthcheck's deadline (a minute without one).
pub fn gates(spec: &ContainerSpec) -> Vec<GateWait> {
    if spec.is_job() {
        return vec![GateWait {
            gate: Gate::Completed,
            budget: Duration::MAX,
        }];
    }
    vec![
        GateWait {
            gate: Gate::Started,
            budget: STARTED_BUDGET,
        },
        GateWait {
            gate: Gate::Healthy,
            budget: spec.health.map_or(STARTED_BUDGET, |h| h.deadline()),
        },
    ]
}

/// The word a passed container is reported with: `completed`, `healthy`
/// or, without a healthcheck, `running`.
pub fn passed_as(spec: &ContainerSpec) -> &'static str {
    match (spec.is_job(), spec.health.is_some()) {
        (true, _) => "completed",
        (false, true) => "healthy",
        (false, false) => "running",
    }
}

/// Why a gate failed (the executor adds logs and health output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateFailure {
    Exited(Option<i64>),
    OutOfMemory,
    Unhealthy,
    Removed,
    Timeout,
    Interrupted,
    Docker(String),
}

/// What the events stream (or an inspect) last said of a container, as a
/// gate needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateStatus {
    pub running: bool,
    pub exit_code: Option<i64>,
    pub health: Option<Health>,
    pub oom: bool,
    pub removed: bool,
    /// Start events seen since the container was first looked at: more
    /// than when a bake began means Docker restarted it.
    pub starts: u32,
}

/// Whether `s` meets `gate`: met (`Some(Ok)`), failed (`Some(Err)`), or not
/// yet (`None`). `has_healthcheck` says whether `healthy` means Docker's
/// health state or just running.
pub fn judge_gate(
    s: &GateStatus,
    gate: Gate,
    has_healthcheck: bool,
) -> Option<Result<(), GateFailure>> {
    if s.removed {
        return Some(Err(GateFailure::Removed));
    }
    if !s.running && s.exit_code.is_some() {
        return Some(match (gate, s.exit_code) {
            (Gate::Completed, Some(0)) => Ok(()),
            _ if s.oom => Err(GateFailure::OutOfMemory),
            (_, code) => Err(GateFailure::Exited(code)),
        });
    }
    if !s.running {
        return None;
    }
    match gate {
        Gate::Started => Some(Ok(())),
        Gate::Healthy if !has_healthcheck => Some(Ok(())),
        Gate::Healthy => match s.health {
            Some(Health::Healthy) => Some(Ok(())),
            Some(Health::Unhealthy) => Some(Err(GateFailure::Unhealthy)),
            _ => None,
        },
        Gate::Completed => None,
    }
}

/// Whether a fresh plan may fix `failure`: the container vanished or
/// Docker failed while looking, or a kept container that was not ready
/// (`exit_is_change`: the plan saw it running but not yet healthy) exited
/// — it was seen in a moment of change. A job's exit is its result, not a
/// change; a timeout, unhealthiness or an interrupt is final.
pub fn is_retryable(failure: &GateFailure, exit_is_change: bool) -> bool {
    match failure {
        GateFailure::Removed | GateFailure::Docker(_) => true,
        GateFailure::Exited(_) => exit_is_change,
        _ => false,
    }
}

/// Whether `status` counts a container as ok: a job that exited 0, or is
/// running and not unhealthy; anything else running and healthy (or with
/// no healthcheck).
pub fn status_ok(
    is_job: bool,
    running: bool,
    exit_code: Option<i64>,
    unhealthy: bool,
    healthy_or_none: bool,
) -> bool {
    if is_job {
        exit_code == Some(0) || (running && !unhealthy)
    } else {
        running && healthy_or_none
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::platform::{HealthTiming, Platform, expand};
    use crate::serviceset::{self, Vars};

    fn spec(job: bool, health: Option<HealthTiming>) -> ContainerSpec {
        let text = if job {
            "migrate: {kind: job, docker: {image: m, version: v1}}"
        } else {
            "web: {docker: {image: web, version: v1}}"
        };
        let vars = Vars::new([], []);
        let set = serviceset::parse(Path::new("s.conf"), text, &vars).unwrap();
        let platform =
            Platform::parse(Path::new("p.yaml"), "registries: {primary: reg.test}").unwrap();
        let mut c = expand(&set, "shop", &platform, &vars)
            .unwrap()
            .containers
            .remove(0);
        c.health = health;
        c
    }

    #[test]
    fn a_job_waits_only_for_its_exit() {
        assert_eq!(
            gates(&spec(true, None)),
            vec![GateWait {
                gate: Gate::Completed,
                budget: Duration::MAX
            }]
        );
        assert_eq!(passed_as(&spec(true, None)), "completed");
    }

    #[test]
    fn healthy_budget_comes_from_the_healthcheck() {
        let h = HealthTiming {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            start_period: Duration::from_secs(5),
            retries: 3,
        };
        let g = gates(&spec(false, Some(h)));
        assert_eq!(g[0].gate, Gate::Started);
        assert_eq!(g[0].budget, STARTED_BUDGET);
        assert_eq!(g[1].gate, Gate::Healthy);
        // 5 + 10 × (3 + 1) + 1 + 5
        assert_eq!(g[1].budget, Duration::from_secs(51));
        assert_eq!(passed_as(&spec(false, Some(h))), "healthy");
        let plain = gates(&spec(false, None));
        assert_eq!(plain[1].budget, STARTED_BUDGET);
        assert_eq!(passed_as(&spec(false, None)), "running");
    }

    #[test]
    fn gate_verdicts_from_the_observed_status() {
        use Gate::*;
        let running = |health| GateStatus {
            running: true,
            health,
            ..Default::default()
        };
        let exited = |code, oom| GateStatus {
            exit_code: Some(code),
            oom,
            ..Default::default()
        };
        let removed = GateStatus {
            removed: true,
            running: true,
            ..Default::default()
        };
        let unhealthy = Some(Health::Unhealthy);
        let starting = Some(Health::Starting);
        // (status, gate, has_healthcheck) -> verdict
        let table = [
            (running(None), Started, true, Some(Ok(()))),
            (running(None), Healthy, true, None),
            (running(starting), Healthy, true, None),
            (running(None), Healthy, false, Some(Ok(()))),
            (running(Some(Health::Healthy)), Healthy, true, Some(Ok(()))),
            (
                running(unhealthy),
                Healthy,
                true,
                Some(Err(GateFailure::Unhealthy)),
            ),
            // A running job has not completed, whatever its health.
            (running(None), Completed, false, None),
            (running(Some(Health::Healthy)), Completed, true, None),
            (exited(0, false), Completed, false, Some(Ok(()))),
            (
                exited(0, false),
                Started,
                false,
                Some(Err(GateFailure::Exited(Some(0)))),
            ),
            (
                exited(2, false),
                Completed,
                false,
                Some(Err(GateFailure::Exited(Some(2)))),
            ),
            (
                exited(137, true),
                Healthy,
                true,
                Some(Err(GateFailure::OutOfMemory)),
            ),
            (removed, Started, false, Some(Err(GateFailure::Removed))),
            // Created, not started yet: wait.
            (GateStatus::default(), Started, false, None),
        ];
        for (status, gate, has_healthcheck, want) in table {
            assert_eq!(
                judge_gate(&status, gate, has_healthcheck),
                want,
                "{status:?} {gate:?} healthcheck={has_healthcheck}"
            );
        }
    }

    #[test]
    fn which_gate_failures_a_fresh_plan_may_fix() {
        let table = [
            (GateFailure::Removed, false, true),
            (GateFailure::Docker("gone".into()), false, true),
            (GateFailure::Exited(Some(1)), true, true),
            (GateFailure::Exited(Some(1)), false, false),
            (GateFailure::Timeout, true, false),
            (GateFailure::Unhealthy, true, false),
            (GateFailure::OutOfMemory, true, false),
            (GateFailure::Interrupted, true, false),
        ];
        for (failure, exit_is_change, want) in table {
            assert_eq!(is_retryable(&failure, exit_is_change), want, "{failure:?}");
        }
    }

    #[test]
    fn status_ok_rule() {
        // (job, running, exit, unhealthy, healthy_or_none) -> ok
        let table = [
            (true, false, Some(0), false, false, true),
            (true, false, Some(1), false, false, false),
            (true, true, None, false, true, true),
            (true, true, None, true, false, false),
            (false, true, None, false, true, true),
            (false, true, None, false, false, false),
            (false, false, Some(0), false, true, false),
        ];
        for (job, running, exit, unhealthy, healthy, want) in table {
            assert_eq!(status_ok(job, running, exit, unhealthy, healthy), want);
        }
    }
}
