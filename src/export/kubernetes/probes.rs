//! A Docker healthcheck as Kubernetes probes: readiness and liveness from
//! the test, interval, timeout and retries; `start_period` as a startup
//! probe, or as liveness' initial delay where a startup probe would hold
//! a dependent back longer than telefig does.

use k8s_openapi::api::core::v1::{ExecAction, Probe};

use crate::platform::HealthConfig;

/// The command a probe runs: `CMD a b` → `[a, b]`, `CMD-SHELL s` → `sh -c s`;
/// `NONE` (a disabled healthcheck) → none.
pub(super) fn exec_command(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// Nanoseconds to whole seconds, rounded up, at least 1.
fn seconds(ns: i64) -> i32 {
    let secs = (ns.max(0) as u64).div_ceil(1_000_000_000).max(1);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// What a container's startup probe would hold back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Startup {
    /// Nothing: a regular container, which no other container waits for.
    HoldsNothing,
    /// A native sidecar whose dependent waits for it to be healthy: the
    /// startup probe is that wait.
    HoldsDependents,
    /// A native sidecar whose dependents wait only for it to start: a
    /// startup probe would hold them longer than telefig does.
    MustNotHold,
}

/// (readiness, liveness, startup) from a healthcheck.
pub(super) fn probes(
    hc: &HealthConfig,
    startup: Startup,
) -> (Option<Probe>, Option<Probe>, Option<Probe>) {
    let Some(command) = exec_command(&hc.test) else {
        return (None, None, None);
    };
    // The Engine API's 0 means "Docker's default": 3 retries.
    let retries = if hc.retries > 0 {
        i32::try_from(hc.retries).unwrap_or(i32::MAX)
    } else {
        3
    };
    let period = seconds(hc.interval);
    let base = Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(seconds(hc.timeout)),
        failure_threshold: Some(retries),
        ..Default::default()
    };
    let mut liveness = base.clone();
    let start_period = (hc.start_period > 0).then(|| seconds(hc.start_period));
    let startup_probe = match (startup, start_period) {
        (Startup::MustNotHold, _) => {
            liveness.initial_delay_seconds = start_period;
            None
        }
        (Startup::HoldsNothing, None) => None,
        (_, grace) => Some(Probe {
            failure_threshold: Some(
                grace
                    .map_or(0, |g| (g + period - 1) / period)
                    .saturating_add(retries),
            ),
            ..base.clone()
        }),
    };
    (Some(base), Some(liveness), startup_probe)
}
