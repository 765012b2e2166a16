//! Drain before stop: which stops wait, for how long, and on what check.
//!
//! A running declared service with a drain period keeps serving for that
//! period after what depends on it (its discovery sidecar) has stopped and
//! deregistered it; a platform drain check, when there is one, ends the
//! wait early once it passes. This decides it for every stop telefig makes:
//! a recreate or restart during `start` and `restart` ([`assign`]), `stop`,
//! `down` and the daemon's re-gating ([`StopPlan::with_drain`]). `--no-drain`
//! keeps the decision visible but marks it skipped ([`Plan::skip_drain`]),
//! so the output says so. The executor only waits.

use std::time::Duration;

use serde::Serialize;

use super::{ActionKind, Observed, Plan, RunState, StopPlan};
use crate::platform::drain::DrainCheck;
use crate::platform::{ContainerSpec, Expanded};

/// The drain a stop waits for before it signals the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drain {
    #[serde(rename = "period_ms", serialize_with = "millis")]
    pub period: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<DrainCheck>,
    /// `--no-drain`: the stop does not wait, and the output says so.
    pub skipped: bool,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The drain of `spec` when it is stopped now; `None` when it does not
/// drain (no period, or it does not run: nothing to drain).
pub fn drain_for(spec: Option<&ContainerSpec>, running: bool) -> Option<Drain> {
    let spec = spec?;
    if !running || spec.drain.period.is_zero() {
        return None;
    }
    Some(Drain {
        period: spec.drain.period,
        check: spec.drain.check.clone(),
        skipped: false,
    })
}

/// Set the drain of every recreate and restart of a running container.
pub fn assign(plan: &mut Plan, desired: &Expanded, observed: &[Observed]) {
    for a in &mut plan.actions {
        if !matches!(a.action, ActionKind::Recreate | ActionKind::Restart) {
            continue;
        }
        let running = a.existing_id.as_deref().is_some_and(|id| {
            observed
                .iter()
                .any(|o| o.id == id && o.state == RunState::Running)
        });
        a.drain = drain_for(desired.get(&a.container), running);
    }
}

impl Plan {
    /// `--no-drain`: every drain is skipped (and said to be).
    pub fn skip_drain(&mut self) {
        for d in self.actions.iter_mut().filter_map(|a| a.drain.as_mut()) {
            d.skipped = true;
        }
    }

    /// Whether any stop of this plan drains.
    pub fn drains(&self) -> bool {
        self.actions.iter().any(|a| a.drain.is_some())
    }
}

impl StopPlan {
    /// The drains of this plan's stops, from the specs the record holds
    /// (`None` without a record: nothing is known, nothing waits).
    pub fn with_drain(mut self, expanded: Option<&Expanded>, skip: bool) -> StopPlan {
        for a in &mut self.actions {
            a.drain = drain_for(expanded.and_then(|e| e.get(&a.container)), a.stop)
                .map(|d| Drain { skipped: skip, ..d });
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::graph::Graph;
    use crate::platform::{Platform, expand};
    use crate::serviceset::{Vars, parse};

    const PLATFORM: &str = "defaults: {drain_period: 3s, drain_check: {command: \"! grep -q {{container}}:{{PORT}} /srv/serverset\", interval: 100ms}}\nsidecars:\n  discovery: {image: d:1, order: after_healthy, params: {port: ~}}\n";

    fn expanded(serviceset: &str) -> Expanded {
        let platform = Platform::parse(std::path::Path::new("p.yaml"), PLATFORM).unwrap();
        let vars = Vars::new(
            [
                ("BUILD_COMMIT".into(), "c2".into()),
                ("PORT".into(), "8080".into()),
            ],
            [],
        );
        let set = parse(std::path::Path::new("s.conf"), serviceset, &vars).unwrap();
        expand(&set, "shop", &platform, &vars).unwrap()
    }

    fn observed(e: &Expanded, state: RunState, hash: &str) -> Vec<Observed> {
        e.containers
            .iter()
            .map(|c| Observed {
                id: format!("id-{}", c.name),
                name: c.name.clone(),
                image: "img".into(),
                labels: BTreeMap::from([
                    ("telefig.serviceset".into(), "shop".into()),
                    ("telefig.container".into(), c.name.clone()),
                    ("telefig.config-hash".into(), hash.into()),
                ]),
                state,
                health: None,
                exit_code: None,
                updatable: None,
            })
            .collect()
    }

    const WEB: &str = "web:\n  docker: {image: web}\n  sidecars: {discovery: {port: 8080}}\n";

    #[test]
    fn the_service_drains_with_the_platform_check_its_sidecars_do_not() {
        let e = expanded(WEB);
        let web = e.get("web").unwrap();
        assert_eq!(web.drain.period, Duration::from_secs(3));
        let check = web.drain.check.as_ref().unwrap();
        assert_eq!(check.argv[2], "! grep -q web:8080 /srv/serverset");
        assert_eq!(check.interval, Duration::from_millis(100));
        assert!(e.get("web-discovery").unwrap().drain.period.is_zero());
    }

    #[test]
    fn own_drain_period_wins_and_zero_turns_it_off() {
        let e = expanded(&format!("{WEB}  drain_period: 0\n"));
        assert!(e.get("web").unwrap().drain.period.is_zero());
        assert!(e.get("web").unwrap().drain.check.is_none());
        let e = expanded(&format!("{WEB}  drain_period: 500ms\n"));
        assert_eq!(
            e.get("web").unwrap().drain.period,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn recreate_of_a_running_service_drains_after_discovery_stops() {
        let e = expanded(WEB);
        let graph = Graph::build(&e).unwrap();
        let obs = observed(&e, RunState::Running, "old");
        let mut plan = super::super::plan(&e, &graph, &obs, &BTreeMap::new()).unwrap();
        let web = plan.get("web").unwrap();
        assert_eq!(web.action, ActionKind::Recreate);
        let d = web.drain.as_ref().expect("web drains");
        assert_eq!((d.period, d.skipped), (Duration::from_secs(3), false));
        assert!(plan.get("web-discovery").unwrap().drain.is_none());
        assert!(
            plan.to_string().contains("; drains up to 3.0 s first"),
            "{plan}"
        );
        plan.skip_drain();
        assert!(plan.get("web").unwrap().drain.as_ref().unwrap().skipped);
        assert!(
            plan.to_string().contains("; not drained (--no-drain)"),
            "{plan}"
        );
    }

    #[test]
    fn a_stopped_container_or_a_kept_one_does_not_drain() {
        let e = expanded(WEB);
        let graph = Graph::build(&e).unwrap();
        let plan = super::super::plan(
            &e,
            &graph,
            &observed(&e, RunState::Exited, "old"),
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(!plan.drains(), "{plan:?}");
        let same: Vec<Observed> = e
            .containers
            .iter()
            .zip(observed(&e, RunState::Running, ""))
            .map(|(c, mut o)| {
                o.labels
                    .insert("telefig.config-hash".into(), c.config_hash.clone());
                o
            })
            .collect();
        let plan = super::super::plan(&e, &graph, &same, &BTreeMap::new()).unwrap();
        assert!(!plan.drains());
    }

    #[test]
    fn stop_and_down_drain_the_running_service_from_the_record() {
        let e = expanded(WEB);
        let graph = Graph::build(&e).unwrap();
        let obs = observed(&e, RunState::Running, "h");
        let p = super::super::stop("shop", &graph, &obs, true).with_drain(Some(&e), false);
        assert!(p.get("web").unwrap().drain.is_some());
        assert!(p.get("web-discovery").unwrap().drain.is_none());
        let p = super::super::stop("shop", &graph, &obs, false).with_drain(None, false);
        assert!(p.get("web").unwrap().drain.is_none(), "no record: no drain");
        let p = super::super::stop("shop", &graph, &obs, false).with_drain(Some(&e), true);
        assert!(p.get("web").unwrap().drain.as_ref().unwrap().skipped);
        let p = super::super::regate("shop", &graph, &obs, "web").with_drain(Some(&e), false);
        assert!(p.get("web").is_none() && p.get("web-discovery").unwrap().drain.is_none());
    }

    #[test]
    fn restart_drains_the_running_target() {
        let e = expanded(WEB);
        let graph = Graph::build(&e).unwrap();
        let obs = observed(&e, RunState::Running, "h");
        let plan = super::super::restart(&e, &graph, &obs, Some("web"));
        assert!(plan.get("web").unwrap().drain.is_some());
    }
}
