//! Converging to a plan: observe, plan, execute; on a transient Docker
//! error (or containers that changed under the run), reconnect, observe
//! and plan again — everything before a gate is idempotent, so this
//! converges.

use std::time::Duration;

use serde::Serialize;

use super::{Ctx, Error, Event, Observing};
use crate::engine::execute::{self, Options, Report};
use crate::engine::pull::Policy;
use crate::engine::{self, Engine};
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::plan::{self, Observed, Plan};
use crate::platform::Expanded;
use crate::platform::GcPolicy;

/// How many times a converge is planned afresh after a Docker error that a
/// new look may resolve (a container that vanished or changed under us —
/// the work of a killed earlier run still finishing in dockerd — or dockerd
/// restarting).
const ATTEMPTS: u32 = 3;

/// What a converging operation did: the plan it carried out last and the
/// executor's report (`failure` says what did not pass).
#[derive(Debug, Serialize)]
pub struct Converged {
    pub plan: Plan,
    pub report: Report,
}

impl Converged {
    pub fn ok(&self) -> bool {
        self.report.failure.is_none()
    }
}

/// One converge attempt's failure.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    Plan(#[from] plan::Error),
    #[error(transparent)]
    Room(#[from] Box<Error>),
}

/// Before pulling, make sure the pull fits on Docker's data root (the
/// serviceset and its image settings; see `ops::space`).
pub(super) type RoomFor<'a> = Option<(&'a ServicesetName, GcPolicy)>;

/// Converges on `plan_for`'s plan without pulling what is here already or
/// making room first: a rollback, a restart or a repair puts back versions
/// the host has run.
pub(super) async fn converge_known(
    ctx: &mut Ctx<'_>,
    expanded: &Expanded,
    graph: &Graph,
    plan_for: impl Fn(&[Observed]) -> Result<Plan, plan::Error>,
) -> Result<Converged, Error> {
    converge(ctx, None, expanded, graph, Policy::Missing, None, plan_for).await
}

/// Converges on `plan_for`'s plan; the first look at Docker is `first`
/// when given: a list started under the same lock ([`super::Early`]).
pub(super) async fn converge(
    ctx: &mut Ctx<'_>,
    mut first: Option<Observing>,
    expanded: &Expanded,
    graph: &Graph,
    pull: Policy,
    room: RoomFor<'_>,
    plan_for: impl Fn(&[Observed]) -> Result<Plan, plan::Error>,
) -> Result<Converged, Error> {
    let mut attempt = 1;
    loop {
        let first = first.take();
        let outcome = async {
            let observed = match first {
                Some(observing) => {
                    let mut observed = observing.take(&ctx.engine).await?;
                    super::observe::read_updatable(&ctx.engine, expanded, &mut observed).await?;
                    observed
                }
                // A retry, or the daemon's repair: its own containers and
                // the holders of its names, not the whole host.
                None => super::observe::observe_own(&ctx.engine, expanded).await?,
            };
            let mut plan = plan_for(&observed)?;
            if ctx.no_drain {
                plan.skip_drain();
            }
            if let Some((name, policy)) = room {
                super::space::make_room(ctx, name, expanded, &plan, pull, policy)
                    .await
                    .map_err(Box::new)?;
            }
            let opts = Options {
                pull,
                deadline: ctx.deadline,
                abort: ctx.abort.clone(),
            };
            let step = ctx.step();
            let report = execute::apply(&ctx.engine, expanded, graph, &plan, opts, &step).await?;
            Ok::<_, AttemptError>(Converged { plan, report })
        }
        .await;
        let may_retry = attempt < ATTEMPTS && !*ctx.abort.borrow();
        let why = match outcome {
            Ok(done) if done.report.retryable && may_retry => {
                format!(
                    "containers changed under this run: {}",
                    done.report.failure.unwrap_or_default()
                )
            }
            Ok(done) => return Ok(done),
            Err(AttemptError::Engine(e)) if e.is_transient() && may_retry => e.to_string(),
            Err(AttemptError::Engine(e)) => return Err(e.into()),
            Err(AttemptError::Plan(e)) => return Err(e.into()),
            Err(AttemptError::Room(e)) => return Err(*e),
        };
        (ctx.sink)(Event::Retrying {
            attempt: attempt + 1,
            of: ATTEMPTS,
            why,
        });
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        let (bound, read_bound) = (ctx.engine.deadline(), ctx.engine.read_bound());
        ctx.engine = reconnect(ctx.deadline).await?;
        if let Some(bound) = bound {
            ctx.engine = ctx.engine.with_deadline(bound);
        }
        if let Some(read_bound) = read_bound {
            ctx.engine = ctx.engine.with_read_bound(read_bound);
        }
        attempt += 1;
    }
}

/// Connect again, waiting for dockerd to come back (it restarts in seconds).
async fn reconnect(deadline: tokio::time::Instant) -> Result<Engine, engine::Error> {
    let give_up = deadline.min(tokio::time::Instant::now() + Duration::from_secs(60));
    loop {
        match Engine::connect().await {
            Ok(engine) => return Ok(engine),
            Err(e) if tokio::time::Instant::now() >= give_up => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
