//! `start`, `rollback` and `restart`: the operations that converge to a
//! plan and keep the record.

use super::converge::{Converged, converge, converge_known};
use super::journal::Journal;
use super::load::Loaded;
use super::{Ctx, Early, Error, Target, put_back_secrets, recorded_specs, specs_of};
use crate::engine::pull::Policy;
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::plan;
use crate::platform::Expanded;
use std::collections::{BTreeMap, BTreeSet};

use crate::plan::rollback::{Refused, Version};
use crate::platform::Image;
use crate::state::{HistoryEntry, Operation, Record};

/// How `start` runs beyond its context: the pull policy.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    pub pull: Policy,
}

/// Converge to the `loaded` file, once the images it pulls fit on Docker's
/// data root (the platform's image settings); on success, record it —
/// unless a no-op start of the same deploy, which leaves the record (and
/// its fsync) alone, and the deploy log too — and clean up images, still
/// under the lock. `early`: the lock and the list taken while the file
/// was loading ([`Ctx::observe_early`]).
pub async fn start(
    ctx: &mut Ctx<'_>,
    early: Option<Early>,
    loaded: &Loaded,
    options: StartOptions,
) -> Result<Converged, Error> {
    let Loaded {
        expanded,
        graph,
        images,
        vars,
        ..
    } = loaded;
    let (pull, images) = (options.pull, *images);
    let record = Record::new(
        &loaded.name,
        &loaded.file,
        &loaded.env,
        expanded,
        vars.get("BUILD_COMMIT"),
        vars.get("DEPLOY_ID"),
    );
    let name = record.serviceset.clone();
    // Locked before the file was loaded, with the list under way: use both.
    let (_lock, first) = match early.filter(|e| e.name == name) {
        Some(Early {
            lock, observing, ..
        }) => (lock, Some(observing)),
        None => (ctx.lock(&name, "start", ctx.deadline).await?, None),
    };
    // Before any container holds them, the daemon learns to mask them.
    ctx.state.note_secrets(&name, &record.secrets)?;
    let journal = Journal::begin(
        &ctx.state,
        &name,
        Operation::Start,
        record.commit.as_deref(),
        record.deploy_id.as_deref(),
    );
    let held = ctx.journal.hold(&journal);
    // The record is read once: for the plan, and to tell a no-op of the same deploy.
    let (same_deploy, recorded) = match ctx.state.load(&name) {
        Ok(Some(previous)) => (Ok(previous.same_deploy(&record)), specs_of(previous)),
        Ok(None) => (Ok(false), Default::default()),
        Err(err) => (Err(err), Default::default()),
    };
    let no_drain = ctx.no_drain;
    let done = converge(
        ctx,
        first,
        expanded,
        graph,
        pull,
        Some((&name, images)),
        |observed| deploy_plan(expanded, graph, observed, &recorded, no_drain),
    )
    .await;
    drop(held);
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

/// What `start` does given what runs (`observed`) and the last record's
/// containers: the plan, what it bakes, and whether `--no-drain` skips its
/// drains. `start` carries out exactly this; `telefig plan` prints it
/// ([`preview`]).
pub fn deploy_plan(
    expanded: &Expanded,
    graph: &Graph,
    observed: &[plan::Observed],
    recorded: &BTreeMap<String, crate::platform::ContainerSpec>,
    no_drain: bool,
) -> Result<plan::Plan, plan::Error> {
    let mut p = plan::plan(expanded, graph, observed, recorded)?;
    plan::bake::assign(&mut p, expanded);
    if no_drain {
        p.skip_drain();
    }
    Ok(p)
}

/// What `start` would do now, planned as `start` plans it ([`deploy_plan`]:
/// the same record, the same `--no-drain`, the same bake), changing
/// nothing and without the lock: `telefig plan`.
pub async fn preview(ctx: &Ctx<'_>, loaded: &Loaded) -> Result<plan::Plan, Error> {
    let observed = super::observe(&ctx.engine, &loaded.expanded).await?;
    let recorded = recorded_specs(&ctx.state, &loaded.name);
    Ok(deploy_plan(
        &loaded.expanded,
        &loaded.graph,
        &observed,
        &recorded,
        ctx.no_drain,
    )?)
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

/// Re-apply an earlier record, through the same path as `start`: the one
/// before the current, or with `to` the newest with that commit while its
/// images are on the host (`plan::rollback` decides, before anything
/// changes). It leaves the history only once the rollback succeeded.
/// `env` (the caller's `-e`) may carry secret values the record keeps as
/// digests.
pub async fn rollback(
    ctx: &mut Ctx<'_>,
    name: &ServicesetName,
    env: &[(String, String)],
    to: Option<&str>,
) -> Result<Converged, Error> {
    let _lock = ctx.lock(name, "rollback", ctx.deadline).await?;
    let Some(current) = ctx.state.load(name)? else {
        return Err(Error::NoEarlierRecord(name.clone()));
    };
    let mut earlier = ctx.state.history_entries(name)?;
    let versions: Vec<Version> = std::iter::once(&current)
        .chain(earlier.iter().map(|e| &e.record))
        .map(version_of)
        .collect();
    let present = match to {
        Some(_) => images_present(ctx, &earlier).await?,
        None => BTreeSet::new(),
    };
    let chosen = match plan::rollback::decide(&versions, to, &present) {
        Ok(i) => earlier.swap_remove(i - 1),
        Err(Refused::NoEarlier) => return Err(Error::NoEarlierRecord(name.clone())),
        Err(refused) => {
            return Err(Error::Rollback {
                serviceset: name.clone(),
                refused,
            });
        }
    };
    ctx.state.note_secrets(name, &chosen.record.secrets)?;
    let journal = Journal::begin(
        &ctx.state,
        name,
        Operation::Rollback,
        chosen.record.commit.as_deref(),
        chosen.record.deploy_id.as_deref(),
    );
    let held = ctx.journal.hold(&journal);
    let done = roll_back_to(ctx, name, env, chosen).await;
    drop(held);
    if let Ok((_, Some(seq))) = &done {
        journal.applied(*seq);
    }
    let done = done.map(|(done, _)| done);
    journal.finish(&done, false).await;
    done
}

/// What `plan::rollback` knows of a record.
pub(super) fn version_of(record: &Record) -> Version {
    Version {
        commit: record.commit.clone(),
        images: record
            .expanded
            .containers
            .iter()
            .map(|c| c.image.reference.clone())
            .collect(),
    }
}

/// The image references of `entries` that are on the host (one that is
/// pinned by digest, under a mirror's name too).
async fn images_present(
    ctx: &Ctx<'_>,
    entries: &[HistoryEntry],
) -> Result<BTreeSet<String>, Error> {
    let images: BTreeMap<&str, &Image> = entries
        .iter()
        .flat_map(|e| &e.record.expanded.containers)
        .map(|c| (c.image.reference.as_str(), &c.image))
        .collect();
    let mut present = BTreeSet::new();
    for (reference, image) in images {
        if crate::engine::pull::is_present(&ctx.engine, image).await? {
            present.insert(reference.to_owned());
        }
    }
    Ok(present)
}

/// Converge to `previous`; once it passed, make it the current record
/// (returning its new sequence number).
async fn roll_back_to(
    ctx: &mut Ctx<'_>,
    name: &ServicesetName,
    env: &[(String, String)],
    previous: HistoryEntry,
) -> Result<(Converged, Option<u64>), Error> {
    let mut expanded = previous.record.expanded.clone();
    let graph = Graph::build(&expanded)?;
    let recorded = recorded_specs(&ctx.state, name);
    let observed = super::observe(&ctx.engine, &expanded).await?;
    let first = plan::plan(&expanded, &graph, &observed, &recorded)?;
    put_back_secrets(ctx, name, &mut expanded, &first, Some(env)).await?;
    let done = converge_known(ctx, &expanded, &graph, |observed| {
        plan::plan(&expanded, &graph, observed, &recorded)
    })
    .await?;
    let seq = match done.ok() {
        true => Some(ctx.state.rolled_back(previous)?),
        false => None,
    };
    Ok((done, seq))
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
    let held = ctx.journal.hold(&journal);
    let done = restart_locked(ctx, target, container, env).await;
    drop(held);
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
    let done = converge_known(ctx, &expanded, graph, |observed| {
        Ok(plan::restart(&expanded, graph, observed, container))
    })
    .await?;
    ctx.state.set_stopped(name, false)?;
    Ok(done)
}
