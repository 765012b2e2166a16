//! The daemon's side of repair: it calls [`ops::repair`], [`ops::regate`]
//! and [`ops::restart_unhealthy`] — the same operations, lock and record
//! as the CLI's — and logs their events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Error;
use crate::engine::Engine;
use crate::name::ServicesetName;
use crate::ops::{self, Ctx, Event};
use crate::plan::OwnEvents;
use crate::state::StateDir;

/// Longest a repair may take, lock wait included.
const REPAIR_DEADLINE: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Repairer {
    pub engine: Engine,
    pub state: StateDir,
    pub abort: watch::Receiver<bool>,
    /// What this daemon's repairs announced, for telling drift from their echo.
    pub own: Arc<Mutex<OwnEvents>>,
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
        } => warn!(serviceset, container = %container, "drift: {action} ({reason})"),
    }
}

impl Repairer {
    fn ctx<'a>(&self, sink: ops::Sink<'a>) -> Ctx<'a> {
        Ctx {
            engine: self.engine.clone(),
            state: self.state.clone(),
            deadline: Instant::now() + REPAIR_DEADLINE,
            abort: self.abort.clone(),
            sink,
            no_drain: false,
            journal: None,
        }
    }

    /// Bring `serviceset` back to its record (see [`ops::repair`]).
    /// Returns the plan's summary when something was done.
    pub async fn repair(&self, serviceset: &str, boot: bool) -> Result<Option<String>, Error> {
        // A label that is no valid name cannot have a record.
        let Ok(name) = ServicesetName::parse(serviceset) else {
            return Ok(None);
        };
        let sink = |e| log_event(serviceset, e);
        let mut ctx = self.ctx(&sink);
        match ops::repair(&mut ctx, &name, boot, &self.own).await? {
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
        Ok(ops::regate(&self.ctx(&sink), &name, dependency).await?)
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
        let mut ctx = self.ctx(&sink);
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
