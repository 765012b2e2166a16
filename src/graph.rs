//! `graph`: the dependency DAG of an expanded serviceset, and its walk.
//!
//! Nodes are containers; an edge runs from a dependency to its dependent and
//! carries the gate the dependent waits for (started, healthy, completed).
//! [`Graph::build`] rejects cycles, naming every container in one.
//! [`Walk`] is the single scheduler used in both directions: going
//! [`Direction::Start`], a node is ready once each dependency has reached
//! its gate; going [`Direction::Stop`], once each dependent has stopped. It
//! does no I/O — the engine asks it what is ready and tells it what happened.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::platform::Expanded;
pub use crate::platform::Gate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The containers of a cycle, each depending on the next; the last
    /// depends on the first.
    #[error("dependency cycle: {}; remove one of these depends_on entries or sidecar orders", cycle_text(.0))]
    Cycle(Vec<String>),
}

fn cycle_text(cycle: &[String]) -> String {
    let mut parts: Vec<String> = cycle
        .windows(2)
        .map(|w| format!("`{}` depends on `{}`", w[0], w[1]))
        .collect();
    if let (Some(last), Some(first)) = (cycle.last(), cycle.first()) {
        parts.push(format!("`{last}` depends on `{first}`"));
    }
    parts.join(", ")
}

#[derive(Debug, Clone)]
pub struct Graph {
    dag: DiGraph<String, Gate>,
    index: HashMap<String, NodeIndex>,
    /// A topological order, ties broken by declaration order (deterministic).
    order: Vec<NodeIndex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Start,
    Stop,
}

/// What a container has reached during a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    Started,
    Healthy,
    Completed,
    Stopped,
}

impl Graph {
    pub fn build(expanded: &Expanded) -> Result<Graph, Error> {
        let edges = expanded.containers.iter().flat_map(|c| {
            c.depends_on
                .iter()
                .map(move |d| (d.name.as_str(), c.name.as_str(), d.gate))
        });
        Graph::from_edges(expanded.containers.iter().map(|c| c.name.as_str()), edges)
    }

    /// Nodes in declaration order; edges as (dependency, dependent, gate).
    /// Edges naming unknown nodes are ignored (`platform` rejects them first).
    pub fn from_edges<'a>(
        nodes: impl IntoIterator<Item = &'a str>,
        edges: impl IntoIterator<Item = (&'a str, &'a str, Gate)>,
    ) -> Result<Graph, Error> {
        let mut dag = DiGraph::new();
        let mut index = HashMap::new();
        for name in nodes {
            index
                .entry(name.to_owned())
                .or_insert_with(|| dag.add_node(name.to_owned()));
        }
        for (from, to, gate) in edges {
            if let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) {
                dag.add_edge(a, b, gate);
            }
        }
        let order = kahn_order(&dag).map_err(|stuck| Error::Cycle(find_cycle(&dag, &stuck)))?;
        Ok(Graph { dag, index, order })
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Dependencies first.
    pub fn start_order(&self) -> Vec<&str> {
        self.order.iter().map(|&n| self.dag[n].as_str()).collect()
    }

    /// Dependents first: the start order reversed.
    pub fn stop_order(&self) -> Vec<&str> {
        self.order
            .iter()
            .rev()
            .map(|&n| self.dag[n].as_str())
            .collect()
    }

    /// For each node, how many stops must follow its own, one after the
    /// other: the longest chain of what it depends on (0 when it depends on
    /// nothing). When a stop walk cannot start every ready stop at once, the
    /// longest chains go first: they decide when the walk ends, and what
    /// still runs meanwhile (a service and its health probes) costs the host.
    pub fn chains_below(&self) -> HashMap<&str, usize> {
        let mut below = vec![0; self.dag.node_count()];
        for &n in &self.order {
            below[n.index()] = self
                .dag
                .neighbors_directed(n, Incoming)
                .map(|d| below[d.index()] + 1)
                .max()
                .unwrap_or(0);
        }
        self.order
            .iter()
            .map(|&n| (self.dag[n].as_str(), below[n.index()]))
            .collect()
    }

    /// What `name` waits for, with the gate.
    pub fn dependencies(&self, name: &str) -> Vec<(&str, Gate)> {
        self.neighbours(name, Incoming)
    }

    /// What waits for `name`, with the gate.
    pub fn dependents(&self, name: &str) -> Vec<(&str, Gate)> {
        self.neighbours(name, Outgoing)
    }

    fn neighbours(&self, name: &str, dir: petgraph::Direction) -> Vec<(&str, Gate)> {
        let Some(&n) = self.index.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<(&str, Gate)> = self
            .dag
            .edges_directed(n, dir)
            .map(|e| {
                let other = if dir == Incoming {
                    e.source()
                } else {
                    e.target()
                };
                (self.dag[other].as_str(), *e.weight())
            })
            .collect();
        out.sort_by_key(|(name, _)| self.position(name));
        out
    }

    /// `name` and everything that depends on it, directly or not.
    pub fn downstream(&self, name: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack: Vec<NodeIndex> = self.index.get(name).copied().into_iter().collect();
        while let Some(n) = stack.pop() {
            if seen.insert(self.dag[n].clone()) {
                stack.extend(self.dag.neighbors_directed(n, Outgoing));
            }
        }
        seen
    }

    fn position(&self, name: &str) -> usize {
        let n = self.index[name];
        self.order
            .iter()
            .position(|&m| m == n)
            .unwrap_or(usize::MAX)
    }

    /// A walk over every node.
    pub fn walk(&self, direction: Direction) -> Walk<'_> {
        self.walk_subset(direction, |_| true)
    }

    /// A walk over the nodes `include` accepts; edges to other nodes are
    /// treated as already satisfied.
    pub fn walk_subset(&self, direction: Direction, include: impl Fn(&str) -> bool) -> Walk<'_> {
        let n = self.dag.node_count();
        let included: Vec<bool> = (0..n)
            .map(|i| include(&self.dag[NodeIndex::new(i)]))
            .collect();
        Walk {
            graph: self,
            direction,
            included,
            reached: vec![Reached::default(); n],
            launched: vec![false; n],
        }
    }
}

/// Kahn's algorithm; the smallest declaration index goes first among the
/// ready nodes. On a cycle, returns the nodes that never became ready.
fn kahn_order(dag: &DiGraph<String, Gate>) -> Result<Vec<NodeIndex>, Vec<NodeIndex>> {
    let mut indegree: Vec<usize> = dag
        .node_indices()
        .map(|n| dag.edges_directed(n, Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<NodeIndex>> = dag
        .node_indices()
        .filter(|n| indegree[n.index()] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(dag.node_count());
    while let Some(Reverse(n)) = ready.pop() {
        order.push(n);
        for next in dag.neighbors_directed(n, Outgoing) {
            indegree[next.index()] -= 1;
            if indegree[next.index()] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    if order.len() == dag.node_count() {
        Ok(order)
    } else {
        Err(dag
            .node_indices()
            .filter(|n| indegree[n.index()] > 0)
            .collect())
    }
}

/// One cycle among `stuck`, as a list where each depends on the next.
fn find_cycle(dag: &DiGraph<String, Gate>, stuck: &[NodeIndex]) -> Vec<String> {
    let stuck: HashSet<NodeIndex> = stuck.iter().copied().collect();
    // Every stuck node has a stuck dependency; follow dependencies until one repeats.
    let mut path: Vec<NodeIndex> = Vec::new();
    let mut on_path: HashMap<NodeIndex, usize> = HashMap::new();
    let mut current = *stuck.iter().min().expect("a cycle has nodes");
    loop {
        if let Some(&pos) = on_path.get(&current) {
            return path[pos..].iter().map(|&n| dag[n].clone()).collect();
        }
        on_path.insert(current, path.len());
        path.push(current);
        current = dag
            .neighbors_directed(current, Incoming)
            .filter(|n| stuck.contains(n))
            .min()
            .expect("a stuck node has a stuck dependency");
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Reached {
    started: bool,
    healthy: bool,
    completed: bool,
    stopped: bool,
}

impl Reached {
    fn meets(&self, gate: Gate) -> bool {
        match gate {
            Gate::Started => self.started,
            Gate::Healthy => self.healthy,
            Gate::Completed => self.completed,
        }
    }
}

/// A walk in progress: ask [`Walk::ready`], act, report with [`Walk::reach`].
pub struct Walk<'g> {
    graph: &'g Graph,
    direction: Direction,
    included: Vec<bool>,
    reached: Vec<Reached>,
    launched: Vec<bool>,
}

impl Walk<'_> {
    /// Nodes whose turn has come and that were not handed out before, in
    /// start order (or stop order).
    pub fn ready(&mut self) -> Vec<String> {
        let order: Box<dyn Iterator<Item = &NodeIndex>> = match self.direction {
            Direction::Start => Box::new(self.graph.order.iter()),
            Direction::Stop => Box::new(self.graph.order.iter().rev()),
        };
        let mut out = Vec::new();
        let dag = &self.graph.dag;
        for &n in order {
            let i = n.index();
            if !self.included[i] || self.launched[i] {
                continue;
            }
            let ready = match self.direction {
                Direction::Start => dag.edges_directed(n, Incoming).all(|e| {
                    !self.included[e.source().index()]
                        || self.reached[e.source().index()].meets(*e.weight())
                }),
                Direction::Stop => dag
                    .neighbors_directed(n, Outgoing)
                    .all(|d| !self.included[d.index()] || self.reached[d.index()].stopped),
            };
            if ready {
                self.launched[i] = true;
                out.push(dag[n].clone());
            }
        }
        out
    }

    /// Record that `name` reached `milestone` (healthy implies started).
    pub fn reach(&mut self, name: &str, milestone: Milestone) {
        let Some(&n) = self.graph.index.get(name) else {
            return;
        };
        let r = &mut self.reached[n.index()];
        match milestone {
            Milestone::Started => r.started = true,
            Milestone::Healthy => {
                r.started = true;
                r.healthy = true;
            }
            Milestone::Completed => {
                r.started = true;
                r.completed = true;
            }
            Milestone::Stopped => r.stopped = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> Result<Graph, Error> {
        Graph::from_edges(
            nodes.iter().copied(),
            edges.iter().map(|(a, b)| (*a, *b, Gate::Started)),
        )
    }

    #[test]
    fn card_service_order() {
        // logging, metrics, proxy before web; discovery after web is healthy.
        let g = Graph::from_edges(
            [
                "web",
                "web-logging",
                "web-metrics",
                "web-proxy",
                "web-discovery",
            ],
            [
                ("web-logging", "web", Gate::Started),
                ("web-metrics", "web", Gate::Started),
                ("web-proxy", "web", Gate::Started),
                ("web", "web-discovery", Gate::Healthy),
            ],
        )
        .unwrap();
        assert_eq!(
            g.start_order(),
            [
                "web-logging",
                "web-metrics",
                "web-proxy",
                "web",
                "web-discovery"
            ]
        );
        assert_eq!(
            g.stop_order(),
            [
                "web-discovery",
                "web",
                "web-proxy",
                "web-metrics",
                "web-logging"
            ]
        );
    }

    #[test]
    fn cycle_names_every_member() {
        let err = graph(
            &["a", "b", "c", "d"],
            &[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")],
        )
        .unwrap_err();
        let Error::Cycle(members) = &err;
        let mut sorted = members.clone();
        sorted.sort();
        assert_eq!(sorted, ["a", "b", "c"]);
        assert!(err.to_string().contains("depends on"), "{err}");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        assert_eq!(
            graph(&["a"], &[("a", "a")]).unwrap_err(),
            Error::Cycle(vec!["a".into()])
        );
    }

    #[test]
    fn walk_waits_for_the_gate_on_each_edge() {
        let g = Graph::from_edges(
            ["db", "web", "reg"],
            [("db", "web", Gate::Healthy), ("web", "reg", Gate::Started)],
        )
        .unwrap();
        let mut w = g.walk(Direction::Start);
        assert_eq!(w.ready(), ["db"]);
        w.reach("db", Milestone::Started);
        assert!(w.ready().is_empty(), "web waits for db to be healthy");
        w.reach("db", Milestone::Healthy);
        assert_eq!(w.ready(), ["web"]);
        w.reach("web", Milestone::Started);
        assert_eq!(w.ready(), ["reg"]);
    }

    #[test]
    fn stop_walk_goes_dependents_first_and_subsets_skip_others() {
        let g = graph(&["a", "b", "c"], &[("a", "b"), ("b", "c")]).unwrap();
        let mut w = g.walk_subset(Direction::Stop, |n| n != "c");
        assert_eq!(w.ready(), ["b"]);
        w.reach("b", Milestone::Stopped);
        assert_eq!(w.ready(), ["a"]);
    }

    #[test]
    fn the_longest_chain_below_a_node_counts_the_stops_that_must_follow_it() {
        let g = graph(
            &["log", "proxy", "svc", "discovery", "db", "alone"],
            &[
                ("log", "svc"),
                ("proxy", "svc"),
                ("svc", "discovery"),
                ("db", "proxy"),
            ],
        )
        .unwrap();
        let below = g.chains_below();
        let got: Vec<usize> = ["discovery", "svc", "proxy", "log", "db", "alone"]
            .iter()
            .map(|n| below[n])
            .collect();
        assert_eq!(got, [3, 2, 1, 0, 0, 0]);
    }

    /// A random DAG: edges only go from a lower to a higher rank in a
    /// shuffled ranking, so there is never a cycle.
    fn dag_strategy() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
        (1usize..14).prop_flat_map(|n| {
            let edges = proptest::collection::vec((0..n, 0..n), 0..(n * 3));
            let perm = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            (Just(n), edges, perm).prop_map(|(n, edges, perm)| {
                let edges = edges
                    .into_iter()
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| if perm[a] < perm[b] { (a, b) } else { (b, a) })
                    .collect();
                (n, edges)
            })
        })
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    fn build(names: &[String], edges: &[(usize, usize)]) -> Result<Graph, Error> {
        Graph::from_edges(
            names.iter().map(String::as_str),
            edges
                .iter()
                .map(|&(a, b)| (names[a].as_str(), names[b].as_str(), Gate::Started)),
        )
    }

    proptest! {
        #[test]
        fn start_order_respects_every_edge_and_stop_is_its_reverse((n, edges) in dag_strategy()) {
            let names = names(n);
            let g = build(&names, &edges).unwrap();
            let start = g.start_order();
            let pos = |x: &str| start.iter().position(|s| *s == x).unwrap();
            for &(a, b) in &edges {
                prop_assert!(pos(&names[a]) < pos(&names[b]));
            }
            let mut reversed = g.stop_order();
            reversed.reverse();
            prop_assert_eq!(reversed, start);
        }

        #[test]
        fn walks_respect_every_edge_in_both_directions((n, edges) in dag_strategy()) {
            let names = names(n);
            let g = build(&names, &edges).unwrap();
            for direction in [Direction::Start, Direction::Stop] {
                let mut w = g.walk(direction);
                let mut done: Vec<String> = Vec::new();
                loop {
                    let batch = w.ready();
                    if batch.is_empty() { break; }
                    for name in batch {
                        let milestone = if direction == Direction::Start { Milestone::Healthy } else { Milestone::Stopped };
                        w.reach(&name, milestone);
                        done.push(name);
                    }
                }
                prop_assert_eq!(done.len(), n);
                let pos = |x: &str| done.iter().position(|s| s == x).unwrap();
                for &(a, b) in &edges {
                    let (first, second) = if direction == Direction::Start { (a, b) } else { (b, a) };
                    prop_assert!(pos(&names[first]) < pos(&names[second]));
                }
            }
        }

        #[test]
        fn a_back_edge_is_always_found((n, edges) in dag_strategy(), pick in any::<prop::sample::Index>()) {
            prop_assume!(!edges.is_empty());
            let names = names(n);
            let (a, b) = edges[pick.index(edges.len())];
            let mut with_cycle = edges.clone();
            with_cycle.push((b, a));
            let err = build(&names, &with_cycle).unwrap_err();
            let Error::Cycle(members) = err;
            // Every member depends on the next one (and the last on the first).
            for i in 0..members.len() {
                let dependent = &members[i];
                let dependency = &members[(i + 1) % members.len()];
                let di = names.iter().position(|x| x == dependency).unwrap();
                let ti = names.iter().position(|x| x == dependent).unwrap();
                prop_assert!(with_cycle.contains(&(di, ti)));
            }
        }
    }
}
