//! `start`, `rollback` and `restart`: the operations that converge to a
//! plan and keep the record.

use super::converge::{Converged, converge, converge_from};
use super::journal::Journal;
use super::{Ctx, Early, Error, Target, put_back_secrets, recorded_specs, specs_of};
use crate::engine::pull::Policy;
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::plan;
use crate::plan::gc::GcPolicy;
use crate::platform::Expanded;
use crate::state::{HistoryEntry, Operation, Record};

/// Converge to `expanded` (as loaded from the file `record` describes),
/// once the images it pulls fit on Docker's data root (`images`: the
/// platform's image settings); on success, record it — unless a no-op
/// start of the same deploy, which leaves the record (and its fsync) alone,
/// and the deploy log too — and clean up images, still under the lock.
pub async fn start(
    ctx: &mut Ctx<'_>,
    early: Option<Early>,
    expanded: &Expanded,
    graph: &Graph,
    record: Record,
    pull: Policy,
    images: GcPolicy,
) -> Result<Converged, Error> {
    let name = record.serviceset.clone();
    // Locked before the file was loaded, with the list under way: use both.
    let (_lock, first) = match early.filter(|e| e.name == name) {
        Some(Early {
            lock, observing, ..
        }) => (lock, Some(observing)),
        None => (ctx.lock(&name, "start", ctx.deadline).await?, None),
    };
    let journal = Journal::begin(
        &ctx.state,
        &name,
        Operation::Start,
        record.commit.as_deref(),
        record.deploy_id.as_deref(),
    );
    ctx.journal = Some(journal.clone());
    // The record is read once: for the plan, and to tell a no-op of the same deploy.
    let (same_deploy, recorded) = match ctx.state.load(&name) {
        Ok(Some(previous)) => (Ok(previous.same_deploy(&record)), specs_of(previous)),
        Ok(None) => (Ok(false), Default::default()),
        Err(err) => (Err(err), Default::default()),
    };
    let done = converge_from(
        ctx,
        first,
        expanded,
        graph,
        pull,
        Some((&name, images)),
        |observed| plan::plan(expanded, graph, observed, &recorded),
    )
    .await;
    ctx.journal = None;
    let mut unchanged = false;
    let done = match done {
        Ok(done) if done.ok() => {
            keep_record(ctx, &journal, &record, &done, same_deploy).map(|same| {
                unchanged = same;
                done
            })
        }
        other => other,
    };
    journal.finish(&done, unchanged).await;
    if let Ok(done) = &done {
        super::gc::after_start(ctx, &name, done, images).await;
    }
    done
}

/// Record a successful start — unless a no-op of the same deploy, which
/// leaves the record (and its fsync) alone: then `true` — and note in its
/// `journal` entry which record it wrote.
fn keep_record(
    ctx: &Ctx<'_>,
    journal: &Journal,
    record: &Record,
    done: &Converged,
    same_deploy: Result<bool, crate::state::Error>,
) -> Result<bool, Error> {
    let unchanged = done.plan.is_noop() && same_deploy?;
    if !unchanged {
        journal.applied(ctx.state.save(record)?);
    }
    Ok(unchanged)
}

/// Re-apply the record before the current one, through the same path as
/// `start`. It leaves the history only once the rollback succeeded. `env`
/// (the caller's `-e`) may carry secret values the record keeps as digests.
pub async fn rollback(
    ctx: &mut Ctx<'_>,
    name: &ServicesetName,
    env: &[(String, String)],
) -> Result<Converged, Error> {
    let _lock = ctx.lock(name, "rollback", ctx.deadline).await?;
    let Some(previous) = ctx.state.previous(name)? else {
        return Err(Error::NoEarlierRecord(name.clone()));
    };
    let journal = Journal::begin(
        &ctx.state,
        name,
        Operation::Rollback,
        previous.record.commit.as_deref(),
        previous.record.deploy_id.as_deref(),
    );
    ctx.journal = Some(journal.clone());
    let done = roll_back_to(ctx, name, env, previous).await;
    ctx.journal = None;
    journal.finish(&done, false).await;
    done
}

async fn roll_back_to(
    ctx: &mut Ctx<'_>,
    name: &ServicesetName,
    env: &[(String, String)],
    previous: HistoryEntry,
) -> Result<Converged, Error> {
    let mut expanded = previous.record.expanded.clone();
    let graph = Graph::build(&expanded)?;
    let recorded = recorded_specs(&ctx.state, name);
    let observed = ctx.engine.list(None).await?;
    let first = plan::plan(&expanded, &graph, &observed, &recorded)?;
    put_back_secrets(ctx, name, &mut expanded, &first, Some(env)).await?;
    let done = converge(ctx, &expanded, &graph, Policy::Missing, None, |observed| {
        plan::plan(&expanded, &graph, observed, &recorded)
    })
    .await?;
    if done.ok() {
        let seq = ctx.state.rolled_back(previous)?;
        if let Some(journal) = &ctx.journal {
            journal.applied(seq);
        }
    }
    Ok(done)
}

/// Restart `container` (all when `None`) and, in order, what depends on
/// it; the serviceset is no longer "stopped on purpose". `env` (the
/// caller's `-e`, `None` for the daemon) may carry secret values for a
/// target taken from the record.
pub async fn restart(
    ctx: &mut Ctx<'_>,
    target: &Target,
    container: Option<&str>,
    env: Option<&[(String, String)]>,
) -> Result<Converged, Error> {
    restart_for(ctx, target, container, env, None).await
}

/// [`restart`]; the daemon's passes the `cause` its deploy log entry names.
pub(super) async fn restart_for(
    ctx: &mut Ctx<'_>,
    target: &Target,
    container: Option<&str>,
    env: Option<&[(String, String)]>,
    cause: Option<&str>,
) -> Result<Converged, Error> {
    let Target { name, graph, .. } = target;
    if let Some(c) = container
        && !graph.contains(c)
    {
        return Err(Error::NotAContainer {
            serviceset: name.clone(),
            container: c.to_owned(),
        });
    }
    let _lock = ctx.lock(name, "restart", ctx.deadline).await?;
    let journal = Journal::begin(&ctx.state, name, Operation::Restart, None, None);
    if let (Some(cause), Some(c)) = (cause, container) {
        journal.repairing(c, cause);
    }
    ctx.journal = Some(journal.clone());
    let done = restart_locked(ctx, target, container, env).await;
    ctx.journal = None;
    journal.finish(&done, false).await;
    done
}

async fn restart_locked(
    ctx: &mut Ctx<'_>,
    target: &Target,
    container: Option<&str>,
    env: Option<&[(String, String)]>,
) -> Result<Converged, Error> {
    let Target {
        name,
        graph,
        from_record,
        ..
    } = target;
    let mut expanded = target.expanded.clone();
    if *from_record {
        // A container to create needs its secret values back.
        let observed = ctx.engine.list(None).await?;
        let first = plan::restart(&expanded, graph, &observed, container);
        put_back_secrets(ctx, name, &mut expanded, &first, env).await?;
    }
    let done = converge(ctx, &expanded, graph, Policy::Missing, None, |observed| {
        Ok(plan::restart(&expanded, graph, observed, container))
    })
    .await?;
    ctx.state.set_stopped(name, false)?;
    Ok(done)
}
