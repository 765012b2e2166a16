//! After a start failed its gates or its bake: what the executor puts
//! back, stops, starts and removes ([`recover`]), and how long the
//! rollback may take ([`ROLLBACK_GRACE`]). Pure: from the plan, the graph,
//! and how far each container got; `engine::execute` carries it out.
//!
//! Put back: every container whose previous version was kept aside and
//! whose successor did not pass (a failed gate or bake, or never reached).
//! The dependents that wait for one of them to be `healthy` and run now
//! (they passed: a bake failed after them) are stopped before it goes and
//! started after it is back, as the start's stop walk did for them; the
//! ones stopped for the start and never started again are started. The
//! kept-aside versions of what passed, and what was created ahead and
//! never reached ([`never_started`]), are removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::{ActionKind, Plan};
use crate::graph::{Gate, Graph};

/// The least time a rollback gets, past the operation's deadline if need
/// be: putting back what was kept aside must not fail because the deadline
/// is what failed the start.
pub const ROLLBACK_GRACE: Duration = Duration::from_secs(30);

/// How far a container of the start got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    Passed,
    /// Failed its gate or its bake.
    Failed,
}

/// What the executor does after a failure, by container name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Stopped first, in this order (dependents before what they wait for).
    pub stop: Vec<String>,
    /// The new one removed and the kept-aside one renamed back, in this order.
    pub put_back: Vec<String>,
    /// Started and gated again by a start walk (it orders them).
    pub start: BTreeSet<String>,
    /// Kept-aside versions no longer needed: their successor passed.
    pub drop_aside: Vec<String>,
}

/// The recovery after a start whose containers got as far as `reached`
/// says (a container not in it was never reached), `kept_aside` naming
/// those whose previous version waits aside.
pub fn recover(
    plan: &Plan,
    graph: &Graph,
    reached: &BTreeMap<String, Reached>,
    kept_aside: &BTreeSet<String>,
) -> Recovery {
    let passed = |n: &str| reached.get(n) == Some(&Reached::Passed);
    let failed = reached.values().any(|r| *r == Reached::Failed);
    let mut r = Recovery::default();
    if !failed {
        r.drop_aside = kept_aside.iter().filter(|n| passed(n)).cloned().collect();
        return r;
    }
    let put_back: BTreeSet<&str> = kept_aside
        .iter()
        .map(String::as_str)
        .filter(|n| !passed(n))
        .collect();
    // Running dependents of what goes back: stopped first, started after.
    let mut stop: BTreeSet<&str> = BTreeSet::new();
    for name in &put_back {
        for (dependent, gate) in graph.dependents(name) {
            if gate == Gate::Healthy && passed(dependent) && !put_back.contains(dependent) {
                stop.insert(dependent);
            }
        }
    }
    r.stop = graph
        .stop_order()
        .into_iter()
        .filter(|n| stop.contains(n))
        .map(str::to_owned)
        .collect();
    r.put_back = graph
        .start_order()
        .into_iter()
        .filter(|n| put_back.contains(n))
        .map(str::to_owned)
        .collect();
    r.start = put_back
        .iter()
        .chain(&stop)
        .map(|n| (*n).to_owned())
        .collect();
    for a in &plan.actions {
        if a.action == ActionKind::Restart && !passed(&a.container) && a.existing_id.is_some() {
            r.start.insert(a.container.clone());
        }
    }
    r.drop_aside = kept_aside
        .iter()
        .filter(|n| passed(n) && !put_back.contains(n.as_str()))
        .cloned()
        .collect();
    r
}

/// Of the containers created ahead of the start walk, those it never
/// reached (it stopped at a failure): removed at once, so that nothing is
/// left created but not started.
pub fn never_started(
    created_ahead: &BTreeSet<String>,
    reached: impl Fn(&str) -> bool,
) -> Vec<String> {
    created_ahead
        .iter()
        .filter(|n| !reached(n))
        .cloned()
        .collect()
}

impl fmt::Display for Recovery {
    /// Golden text: one line per kind of step, in the order they run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start: Vec<&str> = self.start.iter().map(String::as_str).collect();
        for (what, names) in [
            ("stop", self.stop.iter().map(String::as_str).collect()),
            (
                "put back",
                self.put_back.iter().map(String::as_str).collect(),
            ),
            ("start", start),
            (
                "drop aside",
                self.drop_aside
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
        ] {
            if !names.is_empty() {
                writeln!(f, "{what}: {}", names.join(", "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::fixture;

    /// `web` (with logging before it, discovery after healthy) recreated,
    /// discovery restarted for it; `api` created.
    fn case() -> (Plan, Graph) {
        fixture::recreate_web_create_api()
    }

    fn run(reached: &[(&str, Reached)], aside: &[&str]) -> String {
        let (plan, graph) = case();
        let reached = reached.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect();
        let aside = aside.iter().map(|n| (*n).to_owned()).collect();
        recover(&plan, &graph, &reached, &aside).to_string()
    }

    use Reached::{Failed, Passed};

    #[test]
    fn the_case_recreates_web_restarts_discovery_and_creates_api() {
        assert_eq!(
            case().0.summary(),
            "1 to create, 1 to recreate, 1 to restart, 1 unchanged"
        );
    }

    #[test]
    fn a_start_that_passed_only_drops_what_was_kept_aside() {
        assert_eq!(
            run(
                &[
                    ("web-logging", Passed),
                    ("web", Passed),
                    ("web-discovery", Passed),
                    ("api", Passed)
                ],
                &["web"]
            ),
            "drop aside: web\n"
        );
    }

    #[test]
    fn a_failed_gate_puts_back_the_failed_one_and_starts_its_stopped_dependents() {
        assert_eq!(
            run(&[("web-logging", Passed), ("web", Failed)], &["web"]),
            "put back: web\nstart: web, web-discovery\n"
        );
    }

    #[test]
    fn a_failed_bake_stops_the_running_dependents_first_and_starts_them_after() {
        assert_eq!(
            run(
                &[
                    ("web-logging", Passed),
                    ("web", Failed),
                    ("web-discovery", Passed),
                    ("api", Passed)
                ],
                &["web"]
            ),
            "stop: web-discovery\nput back: web\nstart: web, web-discovery\n"
        );
    }

    #[test]
    fn what_passed_keeps_its_new_version_when_another_fails() {
        assert_eq!(
            run(
                &[
                    ("web-logging", Passed),
                    ("web", Passed),
                    ("web-discovery", Passed),
                    ("api", Failed)
                ],
                &["web"]
            ),
            "drop aside: web\n"
        );
    }

    #[test]
    fn what_was_created_ahead_and_never_reached_is_removed() {
        let ahead: BTreeSet<String> = ["web", "api"].map(String::from).into();
        assert_eq!(never_started(&ahead, |n| n == "web"), ["api"]);
        assert!(never_started(&ahead, |_| true).is_empty());
    }

    #[test]
    fn a_kept_aside_version_never_reached_is_put_back() {
        assert_eq!(
            run(&[("web-logging", Failed)], &["web"]),
            "put back: web\nstart: web, web-discovery\n"
        );
    }
}
