//! The start walk (forward), where each node starts the moment its
//! dependencies meet their gates and then waits for its own, as `plan`
//! says; and removing orphans, before it. The stops before it (what is
//! recreated or restarted) are `engine::stop`'s walk.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Event, NodeResult, Run, Step};
use crate::engine::Error;
use crate::engine::gate::Monitor;
use crate::graph::{Direction, Milestone};
use crate::plan::{self, ActionKind, GateWait, Plan, Readiness};
use crate::platform::ContainerSpec;

type NodeFuture<'a> = Pin<Box<dyn Future<Output = (String, NodeResult)> + Send + 'a>>;

/// The milestone a kept container that needs no wait has already reached.
fn already_there(spec: &ContainerSpec, step: &Step) -> Option<Milestone> {
    match step {
        Step::Check {
            readiness: Readiness::Ready,
            ..
        } => Some(if spec.is_job() {
            Milestone::Completed
        } else {
            Milestone::Healthy
        }),
        _ => None,
    }
}

impl Run<'_> {
    pub(super) fn check_abort(&self) -> Result<(), Error> {
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
    pub(super) async fn remove_unwanted(&self, plan: &Plan) -> Result<(), Error> {
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
                    why: a.reason.clone().into(),
                });
                Ok::<_, Error>(())
            });
        futures_util::future::try_join_all(removals)
            .await
            .map(|_| ())
    }

    /// Forward walk over the nodes in `steps`: each starts the moment its
    /// dependencies meet their gates; a failure stops new launches.
    pub(super) async fn start_walk(
        &self,
        steps: &HashMap<String, Step>,
    ) -> HashMap<String, NodeResult> {
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
                    // Already where the plan wants it (most of a no-op): no
                    // node future to build, only the milestone to report.
                    if let Some(done) = already_there(self.spec(&name), &step) {
                        let _ = tx.send((name.clone(), done));
                        in_flight.push(Box::pin(std::future::ready((
                            name,
                            NodeResult::Passed {
                                millis: 0,
                                created: None,
                            },
                        ))));
                        continue;
                    }
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
                    if let NodeResult::Failed { why, evidence, .. } = &result {
                        failed = true;
                        (self.emit)(Event::Failed {
                            container: name.clone(),
                            why: why.clone(),
                            evidence: evidence.clone(),
                        });
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
        // Updated in place, it is then checked as a kept container.
        let step = match step {
            Step::Update { id, readiness } => {
                if let Err(failed) = self.update_in_place(name, &id).await {
                    return failed;
                }
                Step::Check { id, readiness }
            }
            other => other,
        };
        if let Some(done) = already_there(spec, &step) {
            let _ = tx.send((name.to_owned(), done));
            return NodeResult::Passed {
                millis: 0,
                created: None,
            };
        }
        let (id, needs_start) = match step {
            // (An update is a check by now: see above.)
            Step::Check { id, readiness } | Step::Update { id, readiness } => {
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
                        evidence: None,
                        retryable: e.is_transient(),
                    };
                }
            },
            Step::StartExisting { id } => (id, true),
        };
        let fail = |why: String, evidence, retryable: bool| NodeResult::Failed {
            created: created.clone(),
            why,
            evidence,
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
                    evidence: None,
                    retryable: false,
                };
            }
            if let Err(e) = self.engine.start(&id, name).await {
                return fail(e.to_string(), None, e.is_transient());
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
                let (why, evidence) = self.describe(&id, name, gate, failure, budget).await;
                return fail(why, evidence, retryable);
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
        NodeResult::Passed { millis, created }
    }
}
