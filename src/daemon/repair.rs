//! The daemon's side of repair: it calls [`ops::repair`], [`ops::regate`]
//! and [`ops::restart_unhealthy`] — the same operations, lock and record
//! as the CLI's — and logs their events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::Error;
use crate::engine::Engine;
use crate::name::ServicesetName;
use crate::ops::{self, Ctx, Event};
use crate::plan::{self, OwnEvents};
use crate::platform::Expanded;
use crate::state::StateDir;

/// The most a repair's gates may add to its deadline (a job's run, a long
/// healthcheck): past this, the repair is abandoned and tried again.
const MOST_GATE_TIME: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Repairer {
    pub engine: Engine,
    pub state: StateDir,
    pub abort: watch::Receiver<bool>,
    /// What this daemon's repairs announced, for telling drift from their echo.
    pub own: Arc<Mutex<OwnEvents>>,
    /// What a Docker call may take beyond the gates' budgets
    /// (`--docker-timeout`): so that a dockerd that stops answering does not
    /// wedge a repair, and with it the serviceset, forever.
    pub margin: Duration,
}

/// How long a repair of `expanded` may take, lock wait included: every
/// container's gates one after the other (at most [`MOST_GATE_TIME`]) and
/// every stop's grace period, plus `margin` for the Docker calls around them.
pub fn repair_budget(expanded: Option<&Expanded>, margin: Duration) -> Duration {
    let Some(expanded) = expanded else {
        return margin;
    };
    let gates = expanded
        .containers
        .iter()
        .flat_map(|c| plan::gates(c).into_iter().map(|g| g.budget))
        .fold(Duration::ZERO, Duration::saturating_add)
        .min(MOST_GATE_TIME);
    let graces = expanded
        .containers
        .iter()
        .map(|c| c.stop_grace)
        .fold(Duration::ZERO, Duration::saturating_add)
        .min(MOST_GATE_TIME);
    gates.saturating_add(graces).saturating_add(margin)
}

/// The daemon's sink: one log line per event.
fn log_event(serviceset: &str, event: Event) {
    match event {
        Event::Step(e) => info!(
            serviceset,
            "{}",
            serde_json::to_string(&e).unwrap_or_default()
        ),
        Event::WaitingForLock { holder, .. } => {
            info!(serviceset, "waiting for the lock, held by {holder}")
        }
        Event::Retrying { attempt, of, why } => {
            warn!(serviceset, "retrying (attempt {attempt} of {of}): {why}")
        }
        Event::NoRecord { .. } => {}
        Event::Drift {
            container,
            action,
            reason,
        } => warn!(
            serviceset,
            container = %container,
            reason_code = reason.code(),
            "drift: {action} ({reason})"
        ),
        Event::ImageRemoved { reference } => info!(serviceset, "removed image {reference}"),
        Event::PullSpace { space, fit } => info!(serviceset, "pull: {space} ({fit:?})"),
        Event::Warning { message } => warn!(serviceset, "{message}"),
    }
}

impl Repairer {
    /// A context whose every Docker call, gate and lock wait ends within
    /// the repair budget of `name`'s record.
    fn ctx<'a>(&self, name: &ServicesetName, sink: ops::Sink<'a>) -> Ctx<'a> {
        let record = self.state.load(name).ok().flatten();
        let budget = repair_budget(record.as_ref().map(|r| &r.expanded), self.margin);
        let options = ops::Options {
            timeout: Some(budget),
            no_drain: false,
        };
        Ctx::with_engine(
            self.engine.clone(),
            self.state.clone(),
            options,
            self.abort.clone(),
            sink,
        )
    }

    /// Bring `serviceset` back to its record (see [`ops::repair`]);
    /// `cause_nanos` is the time of the newest Docker event it answers.
    /// Returns the plan's summary when something was done.
    pub async fn repair(
        &self,
        serviceset: &str,
        boot: bool,
        cause_nanos: Option<i64>,
        seen: Option<&ops::Seen>,
    ) -> Result<Option<String>, Error> {
        // A label that is no valid name cannot have a record.
        let Ok(name) = ServicesetName::parse(serviceset) else {
            return Ok(None);
        };
        let sink = |e| log_event(serviceset, e);
        let mut ctx = self.ctx(&name, &sink);
        match ops::repair(&mut ctx, &name, boot, cause_nanos, &self.own, seen).await? {
            None => Ok(None),
            Some(done) => match done.report.failure {
                None => Ok(Some(done.plan.summary())),
                Some(why) => Err(Error::RepairFailed {
                    serviceset: serviceset.to_owned(),
                    why,
                }),
            },
        }
    }

    /// `dependency` died or turned unhealthy: stop its `healthy`
    /// dependents now (see [`ops::regate`]). Returns what was stopped.
    pub async fn regate(&self, serviceset: &str, dependency: &str) -> Result<Vec<String>, Error> {
        let Ok(name) = ServicesetName::parse(serviceset) else {
            return Ok(Vec::new());
        };
        let sink = |e| log_event(serviceset, e);
        Ok(ops::regate(&self.ctx(&name, &sink), &name, dependency).await?)
    }

    /// Restart a container that stayed unhealthy past its budget, and its
    /// dependents in order (see [`ops::restart_unhealthy`]).
    pub async fn restart_unhealthy(
        &self,
        serviceset: &str,
        container: &str,
    ) -> Result<bool, Error> {
        let Ok(name) = ServicesetName::parse(serviceset) else {
            return Ok(false);
        };
        let sink = |e| log_event(serviceset, e);
        let mut ctx = self.ctx(&name, &sink);
        match ops::restart_unhealthy(&mut ctx, &name, container).await? {
            None => Ok(false),
            Some(done) => match done.report.failure {
                None => Ok(true),
                Some(why) => Err(Error::RepairFailed {
                    serviceset: serviceset.to_owned(),
                    why,
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{Platform, expand};
    use crate::serviceset::{Vars, parse};

    fn expanded(serviceset: &str) -> Expanded {
        let platform = Platform::parse(std::path::Path::new("p.yaml"), "{}").unwrap();
        let vars = Vars::new([("BUILD_COMMIT".into(), "c1".into())], []);
        let set = parse(std::path::Path::new("s.conf"), serviceset, &vars).unwrap();
        expand(&set, "shop", &platform, &vars).unwrap()
    }

    #[test]
    fn a_repair_gets_its_gates_and_stops_plus_the_margin_and_never_forever() {
        let margin = Duration::from_secs(7);
        assert_eq!(repair_budget(None, margin), margin);
        // Healthcheck 10s interval, 2s timeout, 3 retries, 5s start period:
        // running within 60 s, healthy within 5 + 3 × (10 + 2) = 41 s; 4 s grace.
        let one = expanded(
            "web:\n  docker:\n    image: w\n    stop_grace_period: 4s\n    healthcheck: {test: [CMD, 'true'], interval: 10s, timeout: 2s, retries: 3, start_period: 5s}\n",
        );
        let healthy = one.containers[0].health.unwrap().deadline();
        assert_eq!(
            repair_budget(Some(&one), margin),
            Duration::from_secs(60) + healthy + Duration::from_secs(4) + margin
        );
        // A job may run as long as it likes; the repair still ends.
        let job = expanded("migrate:\n  kind: job\n  docker: {image: m}\n");
        let budget = repair_budget(Some(&job), margin);
        assert!(budget <= 2 * MOST_GATE_TIME + margin, "{budget:?}");
    }
}
