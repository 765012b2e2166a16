//! Plans that stop: which of a serviceset's containers `stop`, `down` and
//! the daemon's re-gating stop, and which they remove; and the stops a
//! start makes before it recreates or restarts ([`Plan::stops_first`]).
//!
//! Every stop waits the container's own grace period (its `StopTimeout`,
//! which telefig sets from `stop_grace_period` at create) before Docker
//! kills it: a container whose file telefig no longer has — no record, an
//! orphan, a version kept aside — is stopped as it was configured, never
//! with a fixed number. The engine walks the graph in stop order over the
//! containers listed here; those the graph does not know stop alongside.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::{ActionKind, Observed, Plan, Reason, RemoveReason, RunState};
use crate::graph::Gate;
use crate::graph::Graph;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum StopReason {
    /// `stop` or `down` asked for the whole serviceset.
    Requested,
    /// It waits for a dependency to be healthy, which went down.
    DependencyDown,
    /// A start recreates it: the old one makes way, kept aside.
    Recreate,
    /// A start recreates one that never started: removed, there is
    /// nothing to keep.
    NeverStarted,
    /// A start restarts it (see the plan's reason).
    Restart,
}

/// What follows a container's stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterStop {
    /// It stays, stopped.
    Nothing,
    /// Removed once stopped (`down`); at once if it was not running.
    Remove,
    /// Renamed to `aside` and kept until its successor passes (a recreate).
    KeepAside { aside: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopAction {
    pub container: String,
    pub id: String,
    /// Running (or paused, restarting): stopped with its own grace period.
    pub stop: bool,
    pub then: AfterStop,
    #[serde(flatten)]
    pub reason: StopReason,
    /// Wait before the stop (set by [`StopPlan::with_drain`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<super::Drain>,
    /// How many stops must follow this one, one after the other
    /// ([`Graph::chains_below`]). When more stops are ready than may run at
    /// once, the longest chains go first: they decide when the walk ends,
    /// and a service still running meanwhile keeps the host busy with its
    /// health probes (bench/NOTES-stop.md). Ties keep the plan's order. A
    /// stop of chain 0 lets no other begin: the engine gives those only a
    /// share of its stops while one that others wait for is under way.
    #[serde(skip)]
    pub chain: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopPlan {
    pub serviceset: String,
    /// In stop order; containers the graph does not know come last.
    pub actions: Vec<StopAction>,
    /// For `DependencyDown`: the dependency that went down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
}

/// Whether Docker would have to stop it (it has a process, or will soon).
fn live(o: &Observed) -> bool {
    !matches!(
        o.state,
        RunState::Exited | RunState::Created | RunState::Dead
    )
}

impl StopAction {
    /// Stop (and with `remove`, remove) the observed container `o`; no
    /// drain until `plan::drain` decides one.
    fn of(
        o: &Observed,
        stop: bool,
        remove: bool,
        reason: StopReason,
        chains: &HashMap<&str, usize>,
    ) -> StopAction {
        StopAction {
            container: o.name.clone(),
            id: o.id.clone(),
            stop,
            then: if remove {
                AfterStop::Remove
            } else {
                AfterStop::Nothing
            },
            reason,
            drain: None,
            chain: chains.get(o.name.as_str()).copied().unwrap_or(0),
        }
    }

    /// Why the plan removes it, if it does: a stop plan removes for `down`;
    /// a start's stops remove only a container that never started.
    pub fn removal(&self) -> Option<RemoveReason> {
        match (&self.then, self.reason) {
            (AfterStop::Remove, StopReason::NeverStarted) => Some(Reason::NeverStarted.into()),
            (AfterStop::Remove, _) => Some(RemoveReason::Down),
            _ => None,
        }
    }
}

/// The name a recreated container's previous version is kept aside under
/// until its successor passes: `{name}.previous-{first 12 of its id}`.
pub fn aside_name(container: &str, id: &str) -> String {
    format!("{container}.previous-{}", &id[..id.len().min(12)])
}

impl Plan {
    /// The stops a start makes before its start walk, in the plan's order:
    /// each container it recreates (then kept aside under [`aside_name`];
    /// one that never started is removed instead) or restarts (left
    /// stopped), draining first where the plan says.
    pub fn stops_first(&self, graph: &Graph) -> Vec<StopAction> {
        let chains = graph.chains_below();
        self.actions
            .iter()
            .filter_map(|a| {
                let id = a.existing_id.clone().unwrap_or_default();
                let (then, reason) = match a.action {
                    ActionKind::Recreate if a.reason == Reason::NeverStarted => {
                        (AfterStop::Remove, StopReason::NeverStarted)
                    }
                    ActionKind::Recreate => (
                        AfterStop::KeepAside {
                            aside: aside_name(&a.container, &id),
                        },
                        StopReason::Recreate,
                    ),
                    ActionKind::Restart => (AfterStop::Nothing, StopReason::Restart),
                    _ => return None,
                };
                let stop = reason != StopReason::NeverStarted;
                Some(StopAction {
                    container: a.container.clone(),
                    id,
                    stop,
                    then,
                    reason,
                    drain: a.drain.clone().filter(|_| stop),
                    chain: chains.get(a.container.as_str()).copied().unwrap_or(0),
                })
            })
            .collect()
    }
}

/// `stop` (`remove: false`) or `down` (`remove: true`) of every container
/// of `serviceset` in `observed`, known to the graph or not.
pub fn stop(serviceset: &str, graph: &Graph, observed: &[Observed], remove: bool) -> StopPlan {
    let ours: Vec<&Observed> = observed
        .iter()
        .filter(|o| o.serviceset() == Some(serviceset))
        .filter(|o| remove || live(o))
        .collect();
    let chains = graph.chains_below();
    StopPlan {
        serviceset: serviceset.to_owned(),
        actions: in_stop_order(graph, ours)
            .map(|o| StopAction::of(o, live(o), remove, StopReason::Requested, &chains))
            .collect(),
        dependency: None,
    }
}

/// `dependency` died or turned unhealthy: the running containers that wait
/// for it to be healthy, and what depends on them, stop now (discovery
/// deregisters); a later repair starts them once it passes again.
pub fn regate(
    serviceset: &str,
    graph: &Graph,
    observed: &[Observed],
    dependency: &str,
) -> StopPlan {
    let waiting: Vec<String> = graph
        .dependents(dependency)
        .into_iter()
        .filter(|(_, gate)| *gate == Gate::Healthy)
        .flat_map(|(d, _)| graph.downstream(d))
        .collect();
    let ours: Vec<&Observed> = observed
        .iter()
        .filter(|o| o.serviceset() == Some(serviceset) && !o.is_backup())
        .filter(|o| waiting.contains(&o.name) && o.state == RunState::Running)
        .collect();
    let chains = graph.chains_below();
    StopPlan {
        serviceset: serviceset.to_owned(),
        actions: in_stop_order(graph, ours)
            .map(|o| StopAction::of(o, true, false, StopReason::DependencyDown, &chains))
            .collect(),
        dependency: Some(dependency.to_owned()),
    }
}

/// The graph's stop order, then the containers it does not know, by name.
fn in_stop_order<'a>(
    graph: &Graph,
    mut containers: Vec<&'a Observed>,
) -> impl Iterator<Item = &'a Observed> {
    let order = graph.stop_order();
    containers.sort_by_key(|o| {
        let at = order.iter().position(|n| *n == o.name);
        (at.is_none(), at, o.name.clone())
    });
    containers.into_iter()
}

impl StopPlan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn get(&self, container: &str) -> Option<&StopAction> {
        self.actions.iter().find(|a| a.container == container)
    }
}

impl fmt::Display for StopAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.stop, &self.then) {
            (true, AfterStop::Remove) => "stop+rm",
            (true, AfterStop::KeepAside { .. }) => "stop+aside",
            (true, AfterStop::Nothing) => "stop",
            (false, AfterStop::Remove) => "remove",
            (false, _) => "keep",
        };
        write!(f, "{what:<8} {}", self.container)
    }
}

impl fmt::Display for StopPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dependency {
            Some(d) => writeln!(f, "serviceset {}: `{d}` went down", self.serviceset)?,
            None => writeln!(f, "serviceset {}", self.serviceset)?,
        }
        for a in &self.actions {
            writeln!(f, "  {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::platform::{LABEL_CONTAINER, LABEL_SERVICESET};

    fn graph() -> Graph {
        Graph::from_edges(
            ["web-logging", "web", "web-discovery"],
            [
                ("web-logging", "web", Gate::Started),
                ("web", "web-discovery", Gate::Healthy),
            ],
        )
        .unwrap()
    }

    fn container(name: &str, state: RunState) -> Observed {
        Observed {
            id: format!("id-{name}"),
            name: name.into(),
            image: "img".into(),
            labels: BTreeMap::from([
                (LABEL_SERVICESET.into(), "shop".into()),
                (LABEL_CONTAINER.into(), name.into()),
            ]),
            state,
            health: None,
            exit_code: None,
            updatable: None,
        }
    }

    fn observed() -> Vec<Observed> {
        let mut foreign = container("other-web", RunState::Running);
        foreign
            .labels
            .insert(LABEL_SERVICESET.into(), "billing".into());
        vec![
            container("web-logging", RunState::Running),
            container("web", RunState::Running),
            container("web-discovery", RunState::Exited),
            // Not in the graph: the file dropped it, or there is no record.
            container("old-worker", RunState::Running),
            foreign,
        ]
    }

    #[test]
    fn stop_takes_the_running_ones_dependents_first_strays_alongside() {
        let p = stop("shop", &graph(), &observed(), false);
        assert_eq!(
            p.to_string(),
            "serviceset shop\n  stop     web\n  stop     web-logging\n  stop     old-worker\n"
        );
        assert!(p.actions.iter().all(|a| a.removal().is_none()), "{p}");
    }

    #[test]
    fn down_removes_every_one_and_stops_those_running() {
        let p = stop("shop", &graph(), &observed(), true);
        assert_eq!(
            p.to_string(),
            "serviceset shop\n  remove   web-discovery\n  stop+rm  web\n  stop+rm  web-logging\n  stop+rm  old-worker\n"
        );
        let why: Vec<_> = p.actions.iter().map(StopAction::removal).collect();
        assert_eq!(why, vec![Some(RemoveReason::Down); 4]);
    }

    /// Regression: without a record telefig knows no graph and no grace
    /// periods; `down --name` still takes every container of the serviceset.
    #[test]
    fn without_a_record_down_takes_them_all_by_label() {
        let empty = Graph::from_edges([], []).unwrap();
        let p = stop("shop", &empty, &observed(), true);
        assert_eq!(p.actions.len(), 4, "{p}");
    }

    /// Two stacks as the bench builds them: discovery waits for its service
    /// to be healthy, the service for its two sidecars to start.
    fn two_stacks() -> (Graph, Vec<Observed>) {
        let names: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|s| ["log", "proxy", "", "discovery"].map(|k| stack_name(s, k)))
            .collect();
        let mut edges = Vec::new();
        for s in ["a", "b"] {
            for k in ["log", "proxy"] {
                edges.push((stack_name(s, k), stack_name(s, ""), Gate::Started));
            }
            edges.push((stack_name(s, ""), stack_name(s, "discovery"), Gate::Healthy));
        }
        let graph = Graph::from_edges(
            names.iter().map(String::as_str),
            edges.iter().map(|(a, b, g)| (a.as_str(), b.as_str(), *g)),
        )
        .unwrap();
        let observed = names
            .iter()
            .map(|n| container(n, RunState::Running))
            .collect();
        (graph, observed)
    }

    fn stack_name(stack: &str, kind: &str) -> String {
        match kind {
            "" => format!("{stack}-svc"),
            k => format!("{stack}-svc-{k}"),
        }
    }

    /// The order `down` keeps: each container after everything that depends
    /// on it; and how the stop walk carries it out: a container's stop waits
    /// for its own dependents only, never for another stack's (no level
    /// barrier), so independent stops overlap.
    #[test]
    fn down_stops_each_container_after_its_own_dependents_and_no_one_elses() {
        use crate::graph::{Direction, Milestone};
        let (graph, observed) = two_stacks();
        let p = stop("shop", &graph, &observed, true);
        let at = |n: &str| p.actions.iter().position(|a| a.container == n).unwrap();
        for a in &p.actions {
            for (dependent, _) in graph.dependents(&a.container) {
                assert!(
                    at(dependent) < at(&a.container),
                    "{dependent} after {a}\n{p}"
                );
            }
        }
        assert!(
            p.actions
                .iter()
                .all(|a| a.stop && a.then == AfterStop::Remove)
        );

        let mut walk = graph.walk_subset(Direction::Stop, |n| p.get(n).is_some());
        // Both discoveries at once: nothing depends on them.
        assert_eq!(walk.ready(), ["b-svc-discovery", "a-svc-discovery"]);
        walk.reach("a-svc-discovery", Milestone::Stopped);
        // a's service goes while b's discovery is still stopping.
        assert_eq!(walk.ready(), ["a-svc"]);
        walk.reach("a-svc", Milestone::Stopped);
        assert_eq!(walk.ready(), ["a-svc-proxy", "a-svc-log"]);
        walk.reach("b-svc-discovery", Milestone::Stopped);
        assert_eq!(walk.ready(), ["b-svc"]);
        // No sidecar before its service has stopped.
        assert!(walk.ready().is_empty());
    }

    #[test]
    fn regate_stops_what_waits_for_the_dependency_to_be_healthy() {
        let mut obs = observed();
        obs[2].state = RunState::Running;
        let p = regate("shop", &graph(), &obs, "web");
        assert_eq!(
            p.to_string(),
            "serviceset shop: `web` went down\n  stop     web-discovery\n"
        );
        // logging's dependent waits only for it to start: nothing to stop.
        assert!(regate("shop", &graph(), &obs, "web-logging").is_empty());
        // Already stopped: nothing to do.
        assert!(regate("shop", &graph(), &observed(), "web").is_empty());
    }

    #[test]
    fn a_start_stops_first_what_it_recreates_keeping_it_aside_and_what_it_restarts() {
        use super::super::{Action, ActionKind, Reason};
        let action = |name: &str, kind, id: Option<&str>| Action {
            container: name.into(),
            action: kind,
            reason: Reason::Missing,
            existing_id: id.map(Into::into),
            backup_id: None,
            readiness: None,
            drain: None,
        };
        let plan = Plan {
            serviceset: "shop".into(),
            actions: vec![
                action("web-logging", ActionKind::Keep, Some("0123")),
                action("web", ActionKind::Recreate, Some("0123456789abcdef")),
                action("web-discovery", ActionKind::Restart, Some("feed")),
                action("cache", ActionKind::Create, None),
                action("old", ActionKind::Remove, Some("dead")),
            ],
            bake: Vec::new(),
        };
        let stops = plan.stops_first(&graph());
        let got: Vec<(&str, &str, &AfterStop, StopReason)> = stops
            .iter()
            .map(|a| (a.container.as_str(), a.id.as_str(), &a.then, a.reason))
            .collect();
        let aside = AfterStop::KeepAside {
            aside: "web.previous-0123456789ab".into(),
        };
        assert_eq!(
            got,
            vec![
                ("web", "0123456789abcdef", &aside, StopReason::Recreate),
                (
                    "web-discovery",
                    "feed",
                    &AfterStop::Nothing,
                    StopReason::Restart
                ),
            ]
        );
        assert!(stops.iter().all(|a| a.stop));
        // The stops still to follow each: web-logging's after web's; web's
        // and web-logging's after web-discovery's.
        let chains: Vec<usize> = stops.iter().map(|a| a.chain).collect();
        assert_eq!(chains, vec![1, 2]);
        assert_eq!(aside_name("web", "abc"), "web.previous-abc");
    }
}
