//! The daemon's operations: bring a serviceset back to its record
//! (`repair`), stop the `healthy` dependents of a dependency that went
//! down (`regate`), restart a container unhealthy past its budget
//! (`restart_unhealthy`). Each takes the host lock like any operation, so
//! it never races a deploy, and re-reads the record under it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::converge::{Converged, converge_known};
use super::journal::Journal;
use super::{Ctx, Error, Event, Target, put_back_secrets};
use crate::clock::now_nanos;
use crate::engine::stop::stop_walk;
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::plan::{self, OwnEvents, RunState};
use crate::platform::{ContainerSpec, Expanded};
use crate::state::Operation;

/// What one list call showed of the host, and when it was asked.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at_nanos: i64,
    pub observed: Vec<plan::Observed>,
}

/// Bring `name` back to its record: recreate what was removed, start what
/// was stopped outside telefig, and — at `boot` — restart dependents Docker
/// started before their dependency met its gate. `cause_nanos`: the time
/// of the newest Docker event (drift) this repair answers, kept in its
/// deploy-log entry. `own` learns what this repair announces, so the
/// daemon tells drift from its echo. `None` when there is no record, it is
/// stopped on purpose, or nothing was to do.
///
/// `seen`: one list of the host the daemon made for every boot repair at
/// once: a serviceset it shows as recorded costs only the reads of its
/// containers' start times; any other looks again under its lock before it
/// acts. (A list of every container for each of 100 servicesets at once
/// held 130 MB and took 10 s at 500 containers.)
pub async fn repair(
    ctx: &mut Ctx<'_>,
    name: &ServicesetName,
    boot: bool,
    cause_nanos: Option<i64>,
    own: &Mutex<OwnEvents>,
    seen: Option<&Seen>,
) -> Result<Option<Converged>, Error> {
    let _lock = ctx.lock(name, "daemon repair", ctx.deadline).await?;
    let Some(record) = ctx.state.load(name)? else {
        return Ok(None);
    };
    if record.stopped {
        return Ok(None);
    }
    let serviceset = name.as_str();
    let expanded = record.expanded;
    let graph = Graph::build(&expanded)?;
    let specs: BTreeMap<String, ContainerSpec> = expanded
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.clone()))
        .collect();
    let looked = |at: i64| {
        if boot {
            own.lock().expect("own events").looked(serviceset, at);
        }
    };
    // At boot, the daemon's one list of the host; otherwise a list now.
    let fresh;
    let observed: &[plan::Observed] = match seen {
        Some(seen) => {
            looked(seen.at_nanos);
            &seen.observed
        }
        None => {
            looked(now_nanos());
            fresh = super::observe::observe_own(&ctx.engine, &expanded).await?;
            &fresh
        }
    };
    // When Docker started each container after a reboot decides which
    // dependents started too early and must start again.
    let mut timings = HashMap::new();
    if boot {
        let ours: Vec<_> = observed
            .iter()
            .filter(|o| o.serviceset() == Some(serviceset) && !o.is_backup())
            .collect();
        let details = join_all(ours.iter().map(|o| ctx.engine.inspect(&o.id))).await;
        let healthy_seen = ctx.state.deploy_log(name).healthy_gates_seen();
        timings = ours
            .iter()
            .zip(details)
            .filter_map(|(o, d)| {
                let mut timing = d.ok()?.timing();
                timing.healthy_seen_at = healthy_seen.get(&o.name).copied();
                Some((o.name.clone(), timing))
            })
            .collect();
    }
    let plan_for = |expanded: &Expanded, observed: &[plan::Observed]| {
        let mut plan = plan::plan(expanded, &graph, observed, &specs)?;
        if boot {
            plan::reorder_after_boot(&mut plan, &graph, &timings);
        }
        Ok(plan)
    };
    let mut first = plan_for(&expanded, observed)?;
    if first.is_noop() {
        return Ok(None);
    }
    if seen.is_some() {
        // Something to do: look again, under the lock, before acting.
        looked(now_nanos());
        let observed = super::observe::observe_own(&ctx.engine, &expanded).await?;
        first = plan_for(&expanded, &observed)?;
        if first.is_noop() {
            return Ok(None);
        }
    }
    let journal = Journal::begin(
        &ctx.state,
        name,
        Operation::Repair,
        record.commit.as_deref(),
        record.deploy_id.as_deref(),
    );
    if let Some(nanos) = cause_nanos {
        journal.caused_by(nanos);
    }
    for a in first.actions.iter().filter(|a| a.action.mutates()) {
        journal.repairing(&a.container, a.reason.code());
    }
    let held = ctx.journal.hold(&journal);
    let done = repair_planned(ctx, name, expanded, &graph, &first, own, plan_for).await;
    drop(held);
    journal.finish(&done, false).await;
    done.map(Some)
}

/// Carry out a repair planned as `first` (again each attempt, by `plan_for`).
async fn repair_planned(
    ctx: &mut Ctx<'_>,
    name: &ServicesetName,
    mut expanded: Expanded,
    graph: &Graph,
    first: &plan::Plan,
    own: &Mutex<OwnEvents>,
    plan_for: impl Fn(&Expanded, &[plan::Observed]) -> Result<plan::Plan, plan::Error>,
) -> Result<Converged, Error> {
    put_back_secrets(ctx, name, &mut expanded, first, None).await?;
    for a in first.actions.iter().filter(|a| a.action.mutates()) {
        (ctx.sink)(Event::Drift {
            container: a.container.clone(),
            action: a.action.as_str(),
            reason: a.reason.clone(),
        });
    }
    let announced = Mutex::new(Vec::new());
    let done = converge_known(ctx, &expanded, graph, |observed| {
        let plan = plan_for(&expanded, observed)?;
        let id = own.lock().expect("own events").expect(&plan, now_nanos());
        announced.lock().expect("announced").push(id);
        Ok(plan)
    })
    .await;
    let mut own = own.lock().expect("own events");
    for id in announced.into_inner().expect("announced") {
        own.finished(id, now_nanos());
    }
    done
}

/// `dependency` died or turned unhealthy: stop, now, the running
/// containers that wait for it to be healthy (discovery deregisters). The
/// next repair starts them once it is healthy again. Skipped when a deploy
/// holds the lock: that deploy gates them itself. Returns what it stopped.
pub async fn regate(
    ctx: &Ctx<'_>,
    name: &ServicesetName,
    dependency: &str,
) -> Result<Vec<String>, Error> {
    let Ok(_lock) = ctx
        .lock(
            name,
            "daemon regate",
            Instant::now() + Duration::from_millis(200),
        )
        .await
    else {
        return Ok(Vec::new());
    };
    let Some(record) = ctx.state.load(name)? else {
        return Ok(Vec::new());
    };
    let graph = Graph::build(&record.expanded)?;
    let observed = ctx.engine.list_serviceset(name.as_str()).await?;
    let plan = plan::regate(name.as_str(), &graph, &observed, dependency)
        .with_drain(Some(&record.expanded), false);
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let step = ctx.step();
    stop_walk(&ctx.engine, &graph, &plan.actions, None, &step).await?;
    Ok(plan.actions.into_iter().map(|a| a.container).collect())
}

/// Restart a running container that stayed unhealthy past its budget,
/// through [`super::restart`] (so its dependents follow, in order, each
/// waiting for its gate). Skipped — `None` — when another operation holds
/// the lock for more than a moment, the record does not have the
/// container, or it is not running.
pub async fn restart_unhealthy(
    ctx: &mut Ctx<'_>,
    name: &ServicesetName,
    container: &str,
) -> Result<Option<Converged>, Error> {
    let target = {
        let Ok(_lock) = ctx
            .lock(
                name,
                "daemon restart",
                Instant::now() + Duration::from_secs(5),
            )
            .await
        else {
            return Ok(None);
        };
        let Some(record) = ctx.state.load(name)? else {
            return Ok(None);
        };
        if record.stopped || record.expanded.get(container).is_none() {
            return Ok(None);
        }
        let observed = ctx.engine.list_serviceset(name.as_str()).await?;
        if !observed
            .iter()
            .any(|o| o.name == container && o.state == RunState::Running)
        {
            return Ok(None);
        }
        Target::from_record(&ctx.state, name, ctx.sink)?
    };
    super::start::restart_for(ctx, &target, Some(container), None, Some("unhealthy"))
        .await
        .map(Some)
}
