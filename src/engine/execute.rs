//! The executor: carries out a [`Plan`] and decides nothing the plan did not.
//!
//! `start` runs in phases, so that nothing running is touched before every
//! image is present: (1) pull; (2) remove orphans; (3) a stop walk, reverse
//! order (`engine::stop`), over the containers to recreate or restart — a recreated one is
//! stopped and renamed aside, kept until its successor passes; (4) a start
//! walk over every container, each launched the moment its dependencies meet
//! their gates; (5) once all passed, the bake the plan asks for (`bake`):
//! what was created is watched for its period; (6) on failure, restore what
//! was kept aside and re-gate it, with the dependents stopped in (3); (7)
//! drop the kept-aside versions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

mod bake;
mod create;
mod evidence;
mod report;
mod rollback;
mod update;
mod walk;

pub use report::{ContainerReport, Event, Outcome, Report};

use tokio::sync::watch;
use tokio::time::Instant;

use super::gate::Monitor;
use super::pull::{self, Policy};
use super::{Deadline, Engine, Error};
use crate::graph::Graph;
use crate::plan::recovery::{self, Reached};
use crate::plan::{ActionKind, Plan, Readiness};
use crate::platform::Expanded;

pub struct Options {
    pub pull: Policy,
    /// Bounds the whole operation.
    pub deadline: Instant,
    /// Flips to true on SIGTERM/SIGINT.
    pub abort: watch::Receiver<bool>,
}
/// What the start walk does at a node.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Already right: only check its gates, as the plan's readiness says.
    Check {
        id: String,
        readiness: Readiness,
    },
    /// Create it (unless created ahead of the walk: `precreated`), then start it.
    Create {
        precreated: Option<String>,
    },
    StartExisting {
        id: String,
    },
    /// `docker update` it, then check its gates as `Check` does.
    Update {
        id: String,
        readiness: Readiness,
    },
}

#[derive(Debug, Clone)]
pub(super) enum NodeResult {
    Passed {
        millis: u128,
        /// The container it created, if it did (what a bake watches).
        created: Option<String>,
    },
    Failed {
        created: Option<String>,
        why: String,
        /// What Docker said of it when it failed, when it was asked.
        evidence: Option<Box<crate::plan::evidence::Evidence>>,
        /// A fresh plan may succeed: the container vanished or changed
        /// under us, rather than failing its gate.
        retryable: bool,
    },
}

type Sink<'a> = &'a (dyn Fn(Event) + Sync);

pub(super) struct Run<'a> {
    engine: &'a Engine,
    expanded: &'a Expanded,
    graph: &'a Graph,
    /// Started on first use: a no-op start never needs the events stream.
    monitor: OnceLock<Monitor>,
    opts: Options,
    emit: Sink<'a>,
}

/// Carry out `plan`. Fails before changing anything when a pull fails;
/// otherwise returns a report whose `failure` says what did not pass.
pub async fn apply(
    engine: &Engine,
    expanded: &Expanded,
    graph: &Graph,
    plan: &Plan,
    opts: Options,
    emit: Sink<'_>,
) -> Result<Report, Error> {
    let needed = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Recreate))
        .filter_map(|a| expanded.get(&a.container))
        .map(|c| &c.image);
    let pulled = pull::ensure_images(engine, needed, opts.pull).await?;
    for p in &pulled {
        emit(Event::Pulled(p.clone()));
    }
    let run = Run {
        engine,
        expanded,
        graph,
        monitor: OnceLock::new(),
        opts,
        emit,
    };
    run.check_abort()?;
    run.remove_unwanted(plan).await?;

    let stops = plan.stops_first(graph);
    let mut kept_aside =
        super::stop::stop_walk(engine, graph, &stops, Some(&run.opts.abort), emit).await?;
    for a in &plan.actions {
        if let Some(backup) = &a.backup_id {
            kept_aside.insert(a.container.clone(), backup.clone());
        }
    }
    // Create everything new at once, before starting anything: creates are
    // then off the walk's critical path. A failed create is retried by its node.
    let precreated = run.create_ahead(plan).await;
    let steps: HashMap<String, Step> = plan
        .actions
        .iter()
        .filter(|a| graph.contains(&a.container))
        .map(|a| {
            let existing = a.existing_id.clone().unwrap_or_default();
            let step = match a.action {
                ActionKind::Keep => Step::Check {
                    id: existing,
                    readiness: a.readiness.unwrap_or(Readiness::AwaitGates),
                },
                ActionKind::Create | ActionKind::Recreate => Step::Create {
                    precreated: precreated.get(&a.container).cloned(),
                },
                ActionKind::Update => Step::Update {
                    id: existing,
                    readiness: a.readiness.unwrap_or(Readiness::AwaitGates),
                },
                _ => Step::StartExisting { id: existing },
            };
            (a.container.clone(), step)
        })
        .collect();
    let mut results = run.start_walk(&steps).await;
    // Created ahead but never reached (the walk stopped at a failure): never
    // leave a container created but not started behind. This cleanup gets a
    // moment past the deadline, should that have ended the walk.
    let cleanup = run
        .engine
        .with_deadline(Deadline::after(Duration::from_secs(10)));
    let created_ahead: BTreeSet<String> = precreated.keys().cloned().collect();
    for name in recovery::never_started(&created_ahead, |n| results.contains_key(n)) {
        let _ = cleanup.remove(&precreated[&name], &name).await;
    }

    if report::failure(&results).is_none() && !plan.bake.is_empty() {
        // The versions kept aside stay until the bake is over.
        run.bake(plan, &mut results).await;
    }
    let failure = report::failure(&results);
    let reached: BTreeMap<String, Reached> = results
        .iter()
        .map(|(name, r)| {
            let r = match r {
                NodeResult::Passed { .. } => Reached::Passed,
                NodeResult::Failed { .. } => Reached::Failed,
            };
            (name.clone(), r)
        })
        .collect();
    let aside: BTreeSet<String> = kept_aside.keys().cloned().collect();
    let recovery = recovery::recover(plan, graph, &reached, &aside);
    let mut rolled_back = HashSet::new();
    if failure.is_some() {
        rolled_back = run.roll_back(plan, &recovery, &results, &kept_aside).await;
        rolled_back.extend(run.undo_updates(plan, &results).await);
    }
    // Versions kept aside whose successor passed are no longer needed
    // (a moment past the deadline too, should a bake have run to it).
    let cleanup = run.engine.with_deadline(Deadline {
        at: run
            .opts
            .deadline
            .max(Instant::now() + Duration::from_secs(10)),
        budget: Duration::from_secs(10),
    });
    for name in &recovery.drop_aside {
        if let Some(backup) = kept_aside.get(name) {
            cleanup.remove(backup, name).await?;
        }
    }
    Ok(Report {
        serviceset: expanded.serviceset.clone(),
        pulled,
        containers: report::containers(plan, &results, &rolled_back),
        retryable: report::retryable(&results),
        evidence: report::evidence(&results),
        failure,
    })
}
