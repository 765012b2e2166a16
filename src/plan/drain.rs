//! Drain before stop: which stops wait, for how long, and on what check.
//!
//! A running declared service with a drain period keeps serving for that
//! period after what depends on it (its discovery sidecar) has stopped and
//! deregistered it; a platform drain check, when there is one, ends the
//! wait early once it passes. A service that a discovery sidecar registers
//! (one ordered `after_healthy`: it registers once its owner is healthy and
//! deregisters before it stops) drains [`DEFAULT_PERIOD`] when neither the
//! serviceset nor the platform sets a period; `drain_period: 0` turns it off. This decides it for every stop telefig makes:
//! a recreate or restart during `start` and `restart` ([`assign`]), `stop`,
//! `down` and the daemon's re-gating ([`StopPlan::with_drain`]). `--no-drain`
//! keeps the decision visible but marks it skipped ([`Plan::skip_drain`]),
//! so the output says so. The executor only waits.

use std::time::Duration;

use serde::Serialize;

use super::{ActionKind, Observed, Plan, RunState, StopPlan};
use crate::graph::Gate;
use crate::platform::drain::DrainCheck;
use crate::platform::{ContainerSpec, Expanded, Role};

/// The drain of a registered service when nothing sets one. Clients learn
/// of a deregistration by re-reading the serverset file: the measured ones
/// keep the list they read for 1 s, and with 2 s no request was dropped
/// where the sidecar writes the file itself. 3 s adds 1 s for a registry
/// (ZooKeeper) to carry the change to the file. A drain check ends it early.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(3);

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
/// drain: it does not run (nothing to drain), it is a sidecar or a job, or
/// its period is zero — set so, or unset on a service that no discovery
/// sidecar registers (`registered`: see [`is_registered`]).
pub fn drain_for(spec: Option<&ContainerSpec>, running: bool, registered: bool) -> Option<Drain> {
    let spec = spec?;
    if !running || spec.role != Role::Main {
        return None;
    }
    let period = match spec.drain.period {
        Some(period) => period,
        None if registered => DEFAULT_PERIOD,
        None => return None,
    };
    if period.is_zero() {
        return None;
    }
    Some(Drain {
        period,
        check: spec.drain.check.clone(),
        skipped: false,
    })
}

/// Whether a discovery sidecar registers `name`: a sidecar of it that
/// waits for it to be healthy (`order: after_healthy`), so it is stopped,
/// and deregisters, first.
pub fn is_registered(desired: &Expanded, name: &str) -> bool {
    desired.containers.iter().any(|c| {
        matches!(&c.role, Role::Sidecar { owner, .. } if owner == name)
            && c.depends_on
                .iter()
                .any(|d| d.name == name && d.gate == Gate::Healthy)
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
        let registered = is_registered(desired, &a.container);
        a.drain = drain_for(desired.get(&a.container), running, registered);
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
            let registered = expanded.is_some_and(|e| is_registered(e, &a.container));
            a.drain = drain_for(
                expanded.and_then(|e| e.get(&a.container)),
                a.stop,
                registered,
            )
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
    use crate::platform::{LABEL_CONFIG_HASH, LABEL_CONTAINER, LABEL_SERVICESET, Platform, expand};
    use crate::serviceset::{Vars, parse};

    const PLATFORM: &str = "defaults: {drain_period: 3s, drain_check: {command: \"! grep -q {{container}}:{{PORT}} /srv/serverset\", interval: 100ms}}\nsidecars:\n  discovery: {image: d:1, order: after_healthy, params: {port: ~}}\n";

    fn expanded(serviceset: &str) -> Expanded {
        expanded_on(PLATFORM, serviceset)
    }

    fn expanded_on(platform: &str, serviceset: &str) -> Expanded {
        let platform = Platform::parse(std::path::Path::new("p.yaml"), platform).unwrap();
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
                state,
                ..Observed::listed(
                    &c.name,
                    &[
                        (LABEL_SERVICESET, "shop"),
                        (LABEL_CONTAINER, &c.name),
                        (LABEL_CONFIG_HASH, hash),
                    ],
                )
            })
            .collect()
    }

    const WEB: &str = "web:\n  docker: {image: web}\n  sidecars: {discovery: {port: 8080}}\n";

    #[test]
    fn the_service_drains_with_the_platform_check_its_sidecars_do_not() {
        let e = expanded(WEB);
        let web = e.get("web").unwrap();
        assert_eq!(web.drain.period, Some(Duration::from_secs(3)));
        let check = web.drain.check.as_ref().unwrap();
        assert_eq!(check.argv[2], "! grep -q web:8080 /srv/serverset");
        assert_eq!(check.interval, Duration::from_millis(100));
        assert_eq!(e.get("web-discovery").unwrap().drain.period, None);
    }

    #[test]
    fn own_drain_period_wins_and_zero_turns_it_off() {
        let e = expanded(&format!("{WEB}  drain_period: 0\n"));
        assert_eq!(e.get("web").unwrap().drain.period, Some(Duration::ZERO));
        assert!(e.get("web").unwrap().drain.check.is_none());
        let e = expanded(&format!("{WEB}  drain_period: 500ms\n"));
        assert_eq!(
            e.get("web").unwrap().drain.period,
            Some(Duration::from_millis(500))
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

    /// A platform that sets no drain, with a discovery sidecar (registers
    /// after healthy) and a metrics one (started before its owner).
    const BARE: &str = "sidecars:\n  discovery: {image: d:1, order: after_healthy, params: {port: ~}}\n  metrics: {image: m:1}\n";

    /// The drain each container's recreate gets, running, from `serviceset` on `platform`.
    fn drains(platform: &str, serviceset: &str) -> BTreeMap<String, Option<Duration>> {
        let e = expanded_on(platform, serviceset);
        let graph = Graph::build(&e).unwrap();
        let obs = observed(&e, RunState::Running, "old");
        let plan = super::super::plan(&e, &graph, &obs, &BTreeMap::new()).unwrap();
        plan.actions
            .iter()
            .map(|a| (a.container.clone(), a.drain.as_ref().map(|d| d.period)))
            .collect()
    }

    #[test]
    fn a_registered_service_drains_the_default_when_nothing_sets_a_period() {
        let d = drains(
            BARE,
            "web:\n  sidecars: {discovery: {port: 8080}, metrics: }\n",
        );
        assert_eq!(d["web"], Some(DEFAULT_PERIOD));
        assert_eq!(DEFAULT_PERIOD, Duration::from_secs(3));
        assert_eq!(d["web-discovery"], None, "a sidecar does not drain");
        assert_eq!(d["web-metrics"], None);
    }

    #[test]
    fn a_service_no_discovery_sidecar_registers_does_not_drain_by_default() {
        let d = drains(BARE, "web:\n  sidecars: {metrics: }\napi: {}\n");
        assert_eq!(d["web"], None);
        assert_eq!(d["api"], None);
        // A job with a discovery sidecar is still a job: it does not drain.
        let d = drains(
            BARE,
            "batch:\n  kind: job\n  sidecars: {discovery: {port: 1}}\n",
        );
        assert_eq!(d["batch"], None);
    }

    #[test]
    fn zero_in_the_serviceset_or_the_platform_turns_the_default_off() {
        let web = "web:\n  sidecars: {discovery: {port: 8080}}\n";
        let d = drains(BARE, &format!("{web}  drain_period: 0\n"));
        assert_eq!(d["web"], None);
        let d = drains(&format!("defaults: {{drain_period: 0}}\n{BARE}"), web);
        assert_eq!(d["web"], None);
        // A period set anywhere wins over the default, either way.
        let d = drains(&format!("defaults: {{drain_period: 10s}}\n{BARE}"), web);
        assert_eq!(d["web"], Some(Duration::from_secs(10)));
        let d = drains(BARE, &format!("{web}  drain_period: 1500ms\n"));
        assert_eq!(d["web"], Some(Duration::from_millis(1500)));
    }

    #[test]
    fn the_default_drain_ends_early_on_the_platform_check() {
        let platform = format!(
            "defaults: {{drain_check: {{command: \"! grep -q {{{{container}}}} /srv/serverset\"}}}}\n{BARE}"
        );
        let e = expanded_on(&platform, "web:\n  sidecars: {discovery: {port: 8080}}\n");
        let graph = Graph::build(&e).unwrap();
        let obs = observed(&e, RunState::Running, "old");
        let mut plan = super::super::plan(&e, &graph, &obs, &BTreeMap::new()).unwrap();
        let d = plan.get("web").unwrap().drain.clone().unwrap();
        assert_eq!(d.period, DEFAULT_PERIOD);
        assert_eq!(
            d.check.unwrap().argv[2],
            "! grep -q web /srv/serverset",
            "the check is templated for the default too"
        );
        // `--no-drain` still stops at once.
        plan.skip_drain();
        assert!(plan.get("web").unwrap().drain.as_ref().unwrap().skipped);
    }

    #[test]
    fn stop_drains_a_registered_service_by_default_from_the_record() {
        let e = expanded_on(BARE, "web:\n  sidecars: {discovery: {port: 8080}}\n");
        let graph = Graph::build(&e).unwrap();
        let obs = observed(&e, RunState::Running, "h");
        let p = super::super::stop("shop", &graph, &obs, false).with_drain(Some(&e), false);
        assert_eq!(
            p.get("web").unwrap().drain.as_ref().unwrap().period,
            DEFAULT_PERIOD
        );
        assert!(p.get("web-discovery").unwrap().drain.is_none());
    }

    /// A record written before the period could be unset says 0 for a
    /// service that set nothing: it keeps stopping at once until the next
    /// deploy writes a new record.
    #[test]
    fn a_record_from_before_the_default_reads_as_an_explicit_zero() {
        let old: crate::platform::drain::DrainSpec =
            serde_json::from_str(r#"{"period":{"secs":0,"nanos":0}}"#).unwrap();
        assert_eq!(old.period, Some(Duration::ZERO));
        let unset: crate::platform::drain::DrainSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(unset.period, None);
    }
}
