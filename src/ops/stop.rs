//! `stop` and `down`: `plan` picks the containers, the engine stops them
//! in reverse order, each with its own grace period; the record says the
//! serviceset is stopped on purpose (`stop`) or is gone (`down`).

use super::{Ctx, Error, Target};
use crate::engine::stop::stop_walk;
use crate::plan::{self, StopPlan};

/// Stop the serviceset's containers; returns what the plan stopped.
pub async fn stop(ctx: &Ctx<'_>, target: &Target) -> Result<StopPlan, Error> {
    let _lock = ctx.lock(&target.name, "stop", ctx.deadline).await?;
    let plan = stop_set(ctx, target, false).await?;
    ctx.state.set_stopped(&target.name, true)?;
    Ok(plan)
}

/// Stop and remove the serviceset's containers and its record; returns
/// what the plan removed.
pub async fn down(ctx: &Ctx<'_>, target: &Target) -> Result<StopPlan, Error> {
    let _lock = ctx.lock(&target.name, "down", ctx.deadline).await?;
    let plan = stop_set(ctx, target, true).await?;
    ctx.state.remove(&target.name)?;
    Ok(plan)
}

async fn stop_set(ctx: &Ctx<'_>, target: &Target, remove: bool) -> Result<StopPlan, Error> {
    let serviceset = &target.expanded.serviceset;
    let observed = ctx.engine.list_serviceset(serviceset).await?;
    let plan = plan::stop(serviceset, &target.graph, &observed, remove)
        .with_drain(Some(&target.expanded), ctx.no_drain);
    let step = ctx.step();
    stop_walk(&ctx.engine, &target.graph, &plan.actions, None, &step).await?;
    Ok(plan)
}
