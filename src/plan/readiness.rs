//! Whether a container the plan keeps meets its gate already, decided from
//! what the list call showed; the executor only follows it.

use serde::Serialize;

use super::{Health, Observed, RunState};

/// What the start walk still waits for at a kept container before its
/// dependents may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// Meets its gates now: running and healthy (or without a
    /// healthcheck), or a job that exited 0.
    Ready,
    /// Running but not healthy yet, or being restarted by Docker: the walk
    /// waits for its gates; if it exits meanwhile, a fresh plan acts on it.
    AwaitGates,
    /// A job still running (a killed earlier run started it): the walk waits
    /// for it to exit 0; any other exit fails the start.
    AwaitExit,
}

impl Readiness {
    /// For a container the plan keeps, as the list call showed it.
    pub fn of_kept(is_job: bool, o: &Observed) -> Readiness {
        let exited_0 = o.state == RunState::Exited && o.exit_code == Some(0);
        let running = o.state == RunState::Running;
        match is_job {
            true if exited_0 => Readiness::Ready,
            true => Readiness::AwaitExit,
            false if running && matches!(o.health, None | Some(Health::Healthy)) => {
                Readiness::Ready
            }
            false => Readiness::AwaitGates,
        }
    }
}
