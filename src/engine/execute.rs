//! The executor: carries out a [`Plan`] and decides nothing the plan did not.
//!
//! `start` runs in phases, so that nothing running is touched before every
//! image is present: (1) pull; (2) remove orphans; (3) a stop walk, reverse
//! order, over the containers to recreate or restart — a recreated one is
//! stopped and renamed aside, kept until its successor passes; (4) a start
//! walk over every container, each launched the moment its dependencies meet
//! their gates; (5) on failure, restore what was kept aside and re-gate it,
//! with the dependents stopped in (3); (6) drop the kept-aside versions.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

mod rollback;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::gate::Monitor;
use super::pull::{self, Policy, Pulled};
use super::{Deadline, Engine, Error, status_is};
use crate::graph::{Direction, Graph, Milestone};
use crate::plan::{self, ActionKind, GateWait, Plan, Readiness};
use crate::platform::{ContainerSpec, Expanded};

pub struct Options {
    pub pull: Policy,
    /// Bounds the whole operation.
    pub deadline: Instant,
    /// Flips to true on SIGTERM/SIGINT.
    pub abort: watch::Receiver<bool>,
}

/// Progress, reported as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Pulled(Pulled),
    Removed {
        container: String,
        why: String,
    },
    Stopped {
        container: String,
    },
    /// The previous version, stopped and renamed, kept until its successor passes.
    KeptAside {
        container: String,
        aside: String,
    },
    Created {
        container: String,
    },
    Started {
        container: String,
    },
    Passed {
        container: String,
        gate: &'static str,
        millis: u128,
    },
    Failed {
        container: String,
        why: String,
    },
    /// The version kept aside has its name back (its gate is waited for next).
    PutBack {
        container: String,
    },
    RolledBack {
        container: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Unchanged,
    Created,
    Recreated,
    Started,
    Restarted,
    Removed,
    Failed,
    RolledBack,
    NotStarted,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub container: String,
    pub action: ActionKind,
    pub reason: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_gate_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub serviceset: String,
    pub pulled: Vec<Pulled>,
    pub containers: Vec<ContainerReport>,
    /// A one-line summary of what failed, if anything did.
    pub failure: Option<String>,
    /// Every failure was the kind a fresh plan may fix (see `NodeResult`).
    #[serde(skip)]
    pub retryable: bool,
}

/// What the start walk does at a node.
#[derive(Debug, Clone)]
enum Step {
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
}

#[derive(Debug, Clone)]
enum NodeResult {
    Passed {
        millis: u128,
    },
    Failed {
        created: Option<String>,
        why: String,
        /// A fresh plan may succeed: the container vanished or changed
        /// under us, rather than failing its gate.
        retryable: bool,
    },
}

type NodeFuture<'a> = Pin<Box<dyn Future<Output = (String, NodeResult)> + Send + 'a>>;

type Sink<'a> = &'a (dyn Fn(Event) + Sync);

struct Run<'a> {
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

    let mut kept_aside = run.stop_phase(plan).await?;
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
                _ => Step::StartExisting { id: existing },
            };
            (a.container.clone(), step)
        })
        .collect();
    let results = run.start_walk(&steps).await;
    // Created ahead but never reached (the walk stopped at a failure): never
    // leave a container created but not started behind. This cleanup gets a
    // moment past the deadline, should that have ended the walk.
    let cleanup = run
        .engine
        .with_deadline(Deadline::after(Duration::from_secs(10)));
    for (name, id) in &precreated {
        if !results.contains_key(name) {
            let _ = cleanup.remove(id, name).await;
        }
    }

    let mut report = Report {
        serviceset: expanded.serviceset.clone(),
        pulled,
        containers: Vec::new(),
        failure: None,
        retryable: false,
    };
    let failed: Vec<(&String, &String)> = results
        .iter()
        .filter_map(|(n, r)| match r {
            NodeResult::Failed { why, .. } => Some((n, why)),
            _ => None,
        })
        .collect();
    let mut rolled_back = HashSet::new();
    report.retryable = !failed.is_empty()
        && results.values().all(|r| {
            !matches!(
                r,
                NodeResult::Failed {
                    retryable: false,
                    ..
                }
            )
        });
    if !failed.is_empty() {
        report.failure = Some(
            failed
                .iter()
                .map(|(n, why)| format!("{n}: {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
        rolled_back = run.roll_back(plan, &results, &kept_aside).await;
    }
    // Versions kept aside whose successor passed are no longer needed.
    for (name, backup) in &kept_aside {
        if !rolled_back.contains(name)
            && matches!(results.get(name), Some(NodeResult::Passed { .. }))
        {
            run.engine.remove(backup, name).await?;
        }
    }
    for a in &plan.actions {
        let result = results.get(&a.container);
        let (outcome, millis, error) = match (a.action, result) {
            (ActionKind::Remove, _) => (Outcome::Removed, None, None),
            (_, _) if rolled_back.contains(&a.container) => (Outcome::RolledBack, None, None),
            (_, Some(NodeResult::Failed { why, .. })) => (Outcome::Failed, None, Some(why.clone())),
            (kind, Some(NodeResult::Passed { millis, .. })) => {
                (passed_outcome(kind), Some(*millis), None)
            }
            (_, None) => (Outcome::NotStarted, None, None),
        };
        report.containers.push(ContainerReport {
            container: a.container.clone(),
            action: a.action,
            reason: a.reason.to_string(),
            outcome,
            time_to_gate_ms: millis,
            error,
        });
    }
    Ok(report)
}

fn passed_outcome(kind: ActionKind) -> Outcome {
    match kind {
        ActionKind::Keep => Outcome::Unchanged,
        ActionKind::Create => Outcome::Created,
        ActionKind::Recreate => Outcome::Recreated,
        ActionKind::Start => Outcome::Started,
        ActionKind::Restart => Outcome::Restarted,
        ActionKind::Remove => Outcome::Removed,
    }
}

impl Run<'_> {
    fn check_abort(&self) -> Result<(), Error> {
        if *self.opts.abort.borrow() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    fn spec(&self, name: &str) -> &ContainerSpec {
        self.expanded
            .get(name)
            .expect("walked nodes come from the expanded set")
    }

    /// Orphans and leftovers of interrupted runs, all at once.
    async fn remove_unwanted(&self, plan: &Plan) -> Result<(), Error> {
        let removals = plan
            .actions
            .iter()
            .filter(|a| a.action == ActionKind::Remove)
            .map(|a| async move {
                let id = a.existing_id.as_deref().unwrap_or(&a.container);
                self.engine.stop(id, &a.container).await?;
                self.engine.remove(id, &a.container).await?;
                (self.emit)(Event::Removed {
                    container: a.container.clone(),
                    why: a.reason.to_string(),
                });
                Ok::<_, Error>(())
            });
        futures_util::future::try_join_all(removals)
            .await
            .map(|_| ())
    }

    /// Reverse walk over what is recreated or restarted. Returns, for each
    /// recreated container, the id of the old one now kept aside.
    async fn stop_phase(&self, plan: &Plan) -> Result<HashMap<String, String>, Error> {
        let affected: HashMap<&str, (ActionKind, &str)> = plan
            .actions
            .iter()
            .filter(|a| matches!(a.action, ActionKind::Recreate | ActionKind::Restart))
            .map(|a| {
                (
                    a.container.as_str(),
                    (a.action, a.existing_id.as_deref().unwrap_or_default()),
                )
            })
            .collect();
        let mut walk = self
            .graph
            .walk_subset(Direction::Stop, |n| affected.contains_key(n));
        let mut kept_aside = HashMap::new();
        let mut in_flight = FuturesUnordered::new();
        loop {
            for name in walk.ready() {
                let (action, id) = affected[name.as_str()];
                self.check_abort()?;
                in_flight.push(async move {
                    self.engine.stop(id, &name).await?;
                    (self.emit)(Event::Stopped {
                        container: name.clone(),
                    });
                    if action == ActionKind::Recreate {
                        let aside = format!("{name}.previous-{}", &id[..id.len().min(12)]);
                        self.engine.rename(id, &aside).await?;
                        (self.emit)(Event::KeptAside {
                            container: name.clone(),
                            aside,
                        });
                    }
                    Ok::<_, Error>((name, action, id))
                });
            }
            match in_flight.next().await {
                None => break,
                Some(done) => {
                    let (name, action, id) = done?;
                    if action == ActionKind::Recreate {
                        kept_aside.insert(name.clone(), id.to_owned());
                    }
                    walk.reach(&name, Milestone::Stopped);
                }
            }
        }
        Ok(kept_aside)
    }

    /// Forward walk over the nodes in `steps`: each starts the moment its
    /// dependencies meet their gates; a failure stops new launches.
    async fn start_walk(&self, steps: &HashMap<String, Step>) -> HashMap<String, NodeResult> {
        let mut walk = self
            .graph
            .walk_subset(Direction::Start, |n| steps.contains_key(n));
        let (tx, mut milestones) = mpsc::unbounded_channel::<(String, Milestone)>();
        let mut in_flight: FuturesUnordered<NodeFuture<'_>> = FuturesUnordered::new();
        let mut results = HashMap::new();
        let mut failed = false;
        loop {
            // A node may report a milestone and finish in the same poll: apply
            // every queued milestone before deciding that nothing is left.
            while let Ok((name, milestone)) = milestones.try_recv() {
                walk.reach(&name, milestone);
            }
            if !failed {
                for name in walk.ready() {
                    let step = steps[&name].clone();
                    let tx = tx.clone();
                    in_flight.push(Box::pin(async move {
                        let result = self.run_node(&name, step, &tx).await;
                        (name, result)
                    }));
                }
            }
            if in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some((name, milestone)) = milestones.recv() => walk.reach(&name, milestone),
                Some((name, result)) = in_flight.next() => {
                    if let NodeResult::Failed { why, .. } = &result {
                        failed = true;
                        (self.emit)(Event::Failed { container: name.clone(), why: why.clone() });
                    }
                    results.insert(name, result);
                }
            }
        }
        results
    }

    async fn run_node(
        &self,
        name: &str,
        step: Step,
        tx: &mpsc::UnboundedSender<(String, Milestone)>,
    ) -> NodeResult {
        let spec = self.spec(name);
        let started = Instant::now();
        let mut created = None;
        // Whether an exit during the gate wait is a change a fresh plan acts on.
        let mut exit_is_change = false;
        let (id, needs_start) = match step {
            Step::Check {
                readiness: Readiness::Ready,
                ..
            } => {
                let done = if spec.is_job() {
                    Milestone::Completed
                } else {
                    Milestone::Healthy
                };
                let _ = tx.send((name.to_owned(), done));
                return NodeResult::Passed { millis: 0 };
            }
            Step::Check { id, readiness } => {
                exit_is_change = readiness == Readiness::AwaitGates;
                (id, false)
            }
            Step::Create {
                precreated: Some(id),
            } => {
                created = Some(id.clone());
                (id, true)
            }
            Step::Create { precreated: None } => match self.create(spec).await {
                Ok(id) => {
                    created = Some(id.clone());
                    (id, true)
                }
                Err(e) => {
                    return NodeResult::Failed {
                        created: None,
                        why: e.to_string(),
                        retryable: e.is_transient(),
                    };
                }
            },
            Step::StartExisting { id } => (id, true),
        };
        let fail = |why: String, retryable: bool| NodeResult::Failed {
            created: created.clone(),
            why,
            retryable,
        };
        if needs_start {
            if let Err(e) = self.check_abort() {
                // Never leave a container created but not started behind.
                if let Some(c) = &created {
                    let _ = self.engine.remove(c, name).await;
                }
                return NodeResult::Failed {
                    created: None,
                    why: e.to_string(),
                    retryable: false,
                };
            }
            if let Err(e) = self.engine.start(&id, name).await {
                return fail(e.to_string(), e.is_transient());
            }
            (self.emit)(Event::Started {
                container: name.to_owned(),
            });
        }
        let mut abort = self.opts.abort.clone();
        let has_healthcheck = spec.health.is_some();
        let now = Instant::now();
        for wait in plan::gates(spec) {
            let GateWait { gate, budget } = wait;
            let deadline = now
                .checked_add(budget)
                .map_or(self.opts.deadline, |d| d.min(self.opts.deadline));
            let monitor = self
                .monitor
                .get_or_init(|| Monitor::start(self.engine, &self.expanded.serviceset));
            if let Err(failure) = monitor
                .wait(&id, gate, has_healthcheck, deadline, &mut abort)
                .await
            {
                let retryable = plan::is_retryable(&failure, exit_is_change);
                return fail(self.describe(&id, gate, failure, budget).await, retryable);
            }
            let _ = tx.send((name.to_owned(), wait.milestone()));
        }
        let millis = started.elapsed().as_millis();
        let gate = plan::passed_as(spec);
        if needs_start {
            (self.emit)(Event::Passed {
                container: name.to_owned(),
                gate,
                millis,
            });
        }
        NodeResult::Passed { millis }
    }

    /// Create every container the plan creates or recreates, in parallel;
    /// returns the ids of those created.
    async fn create_ahead(&self, plan: &Plan) -> HashMap<String, String> {
        if self.check_abort().is_err() {
            return HashMap::new();
        }
        let creates = plan
            .actions
            .iter()
            .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Recreate))
            .filter_map(|a| self.expanded.get(&a.container))
            .map(|spec| async move {
                self.create(spec)
                    .await
                    .ok()
                    .map(|id| (spec.name.clone(), id))
            });
        futures_util::future::join_all(creates)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Create `spec`; if the name is taken by this serviceset's own
    /// container (a lost answer, a racing caller), keep it when its config
    /// hash matches, else replace it.
    async fn create(&self, spec: &ContainerSpec) -> Result<String, Error> {
        self.check_abort()?;
        let name = &spec.name;
        match self.engine.create(name, &spec.create).await? {
            Ok(id) => {
                (self.emit)(Event::Created {
                    container: name.clone(),
                });
                Ok(id)
            }
            Err(e) if status_is(&e, 409) => {
                let holder = self
                    .engine
                    .list_serviceset(&self.expanded.serviceset)
                    .await?
                    .into_iter()
                    .find(|o| o.name == *name);
                match holder {
                    Some(h) if h.config_hash() == Some(spec.config_hash.as_str()) => Ok(h.id),
                    Some(h) => {
                        self.engine.remove(&h.id, name).await?;
                        let id =
                            self.engine
                                .create(name, &spec.create)
                                .await?
                                .map_err(|source| Error::Docker {
                                    op: "create",
                                    target: name.clone(),
                                    source,
                                })?;
                        (self.emit)(Event::Created {
                            container: name.clone(),
                        });
                        Ok(id)
                    }
                    None => Err(Error::Docker {
                        op: "create",
                        target: name.clone(),
                        source: e,
                    }),
                }
            }
            Err(source) => Err(Error::Docker {
                op: "create",
                target: name.clone(),
                source,
            }),
        }
    }
}
