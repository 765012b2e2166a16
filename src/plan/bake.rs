//! The bake: after every gate of a deploy passed, which containers telefig
//! keeps watching and for how long ([`assign`]), and whether what Docker
//! then says of one fails the deploy ([`judge_bake`]). Pure: the executor
//! follows the events stream and asks.
//!
//! Watched: what the deploy created or recreated (a kept container was not
//! changed; a job exits by design), each for its `bake_period` (a sidecar
//! for its owner's), counted from the moment the last gate passed. A
//! container that turns unhealthy, exits, restarts, is OOM-killed or
//! removed in that time fails the deploy as a failed gate does.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::{ActionKind, GateStatus, Health, Plan};
use crate::platform::Expanded;

/// One container the bake watches, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BakeWatch {
    pub container: String,
    #[serde(rename = "period_ms", serialize_with = "millis")]
    pub period: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Set what a deploy's plan bakes: every create and recreate of a
/// container that is not a job and has a bake period, in the plan's order.
pub fn assign(plan: &mut Plan, desired: &Expanded) {
    plan.bake = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Recreate))
        .filter_map(|a| desired.get(&a.container))
        .filter(|c| !c.is_job() && !c.bake.is_zero())
        .map(|c| BakeWatch {
            container: c.name.clone(),
            period: c.bake,
        })
        .collect();
}

impl Plan {
    /// How long the bake lasts: its longest watch (zero: no bake).
    pub fn bake_period(&self) -> Duration {
        self.bake.iter().map(|w| w.period).max().unwrap_or_default()
    }
}

/// What happened to a container during its bake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BakeFailure {
    Unhealthy,
    Exited(Option<i64>),
    /// Docker's restart policy started it again after it died.
    Restarted,
    OutOfMemory,
    Removed,
    /// The operation's `--timeout` ended before the bake did.
    Timeout,
    /// SIGTERM or SIGINT during the bake.
    Interrupted,
    /// Docker could not be asked (its message).
    Docker(String),
}

impl fmt::Display for BakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BakeFailure::Unhealthy => f.write_str("turned unhealthy"),
            BakeFailure::Exited(Some(code)) => write!(f, "exited with code {code}"),
            BakeFailure::Exited(None) => f.write_str("exited"),
            BakeFailure::Restarted => f.write_str("died and was restarted by Docker"),
            BakeFailure::OutOfMemory => f.write_str("was killed for running out of memory (OOM)"),
            BakeFailure::Removed => f.write_str("was removed"),
            BakeFailure::Timeout => f.write_str("was still baking when --timeout ended"),
            BakeFailure::Interrupted => f.write_str("was baking when telefig was interrupted"),
            BakeFailure::Docker(e) => write!(f, "could not be watched: {e}"),
        }
    }
}

/// Whether `s` fails a bake that began when the container had been
/// started `starts_before` times (the events stream's count): `None` while
/// it still runs as it did.
pub fn judge_bake(s: &GateStatus, starts_before: u32) -> Option<BakeFailure> {
    if s.removed {
        return Some(BakeFailure::Removed);
    }
    if s.oom {
        return Some(BakeFailure::OutOfMemory);
    }
    if s.starts > starts_before {
        return Some(BakeFailure::Restarted);
    }
    if !s.running {
        return Some(BakeFailure::Exited(s.exit_code));
    }
    if s.health == Some(Health::Unhealthy) {
        return Some(BakeFailure::Unhealthy);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::graph::Graph;
    use crate::plan::Observed;
    use crate::platform::{LABEL_CONFIG_HASH, LABEL_CONTAINER, LABEL_SERVICESET, Platform, expand};
    use crate::serviceset::{Vars, parse};

    const PLATFORM: &str = "sidecars:\n  discovery: {image: d:1, order: after_healthy, params: {port: ~}}\n  metrics: {image: m:1}\n";

    fn expanded(platform: &str, serviceset: &str) -> Expanded {
        let platform = Platform::parse(Path::new("p.yaml"), platform).unwrap();
        let vars = Vars::new([("BUILD_COMMIT".into(), "c2".into())], []);
        let set = parse(Path::new("s.conf"), serviceset, &vars).unwrap();
        expand(&set, "shop", &platform, &vars).unwrap()
    }

    /// The bake of a deploy where `changed` run an old config and the rest
    /// the wanted one (`missing` are not there at all).
    fn bake_of(e: &Expanded, changed: &[&str], missing: &[&str]) -> Vec<(String, u64)> {
        let graph = Graph::build(e).unwrap();
        let observed: Vec<Observed> = e
            .containers
            .iter()
            .filter(|c| !missing.contains(&c.name.as_str()))
            .map(|c| {
                let hash = if changed.contains(&c.name.as_str()) {
                    "old"
                } else {
                    &c.config_hash
                };
                Observed::listed(
                    &c.name,
                    &[
                        (LABEL_SERVICESET, "shop"),
                        (LABEL_CONTAINER, &c.name),
                        (LABEL_CONFIG_HASH, hash),
                    ],
                )
            })
            .collect();
        let mut plan = crate::plan::plan(e, &graph, &observed, &BTreeMap::new()).unwrap();
        assign(&mut plan, e);
        plan.bake
            .iter()
            .map(|w| (w.container.clone(), w.period.as_millis() as u64))
            .collect()
    }

    const WEB: &str =
        "web:\n  bake_period: 8s\n  sidecars: {discovery: {port: 1}, metrics: }\napi: {}\n";

    #[test]
    fn a_recreated_service_and_its_sidecars_are_baked_for_its_period() {
        let e = expanded(PLATFORM, WEB);
        assert_eq!(
            bake_of(&e, &["web"], &["web-metrics"]),
            [("web-metrics".into(), 8000), ("web".into(), 8000)],
            "recreated and created are watched; kept ones (discovery) are not"
        );
    }

    #[test]
    fn nothing_is_baked_without_a_period_or_without_a_change() {
        let e = expanded(PLATFORM, WEB);
        assert_eq!(bake_of(&e, &[], &[]), [], "a no-op deploy bakes nothing");
        assert_eq!(bake_of(&e, &["api"], &[]), [], "api has no bake_period");
    }

    #[test]
    fn the_platform_default_bakes_every_service_and_its_own_period_wins() {
        let platform = format!("defaults: {{bake_period: 2s}}\n{PLATFORM}");
        let e = expanded(
            &platform,
            "web:\n  bake_period: 0\napi: {}\nmigrate:\n  kind: job\n",
        );
        assert_eq!(
            bake_of(&e, &["web", "api", "migrate"], &[]),
            [("api".into(), 2000)],
            "web turned it off, a job is never baked"
        );
    }

    #[test]
    fn a_bake_period_over_an_hour_is_refused_at_its_line() {
        let vars = Vars::new([], []);
        let err = parse(
            Path::new("s.conf"),
            "web:\n  docker: {image: w}\n  bake_period: 2h\n",
            &vars,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s.conf:3"), "{err}");
        assert!(err.contains("give at most 1h"), "{err}");
        let err = parse(Path::new("s.conf"), "web:\n  bake_period: -1\n", &vars)
            .unwrap_err()
            .to_string();
        assert!(err.contains("s.conf:2"), "{err}");
        let err = Platform::parse(Path::new("p.yaml"), "defaults:\n  bake_period: 90m\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.yaml:2"), "{err}");
    }

    #[test]
    fn the_bake_lasts_its_longest_watch() {
        let platform = format!("defaults: {{bake_period: 2s}}\n{PLATFORM}");
        let e = expanded(&platform, "web:\n  bake_period: 8s\napi: {}\n");
        let graph = Graph::build(&e).unwrap();
        let mut plan = crate::plan::plan(&e, &graph, &[], &BTreeMap::new()).unwrap();
        assign(&mut plan, &e);
        assert_eq!(plan.bake_period(), Duration::from_secs(8));
        assert!(
            plan.to_string()
                .contains("bake: web 8.0 s, api 2.0 s after every gate passed"),
            "{plan}"
        );
    }

    #[test]
    fn what_fails_a_bake() {
        let running = GateStatus {
            running: true,
            starts: 1,
            health: Some(Health::Healthy),
            ..GateStatus::default()
        };
        let with = |f: fn(&mut GateStatus)| {
            let mut s = running.clone();
            f(&mut s);
            judge_bake(&s, 1)
        };
        assert_eq!(judge_bake(&running, 1), None);
        assert_eq!(
            with(|s| s.health = Some(Health::Unhealthy)),
            Some(BakeFailure::Unhealthy)
        );
        assert_eq!(
            with(|s| {
                s.running = false;
                s.exit_code = Some(2);
            }),
            Some(BakeFailure::Exited(Some(2)))
        );
        assert_eq!(
            with(|s| s.starts = 2),
            Some(BakeFailure::Restarted),
            "a die and a start, however close, are a restart"
        );
        assert_eq!(
            with(|s| {
                s.oom = true;
                s.running = false;
            }),
            Some(BakeFailure::OutOfMemory)
        );
        assert_eq!(with(|s| s.removed = true), Some(BakeFailure::Removed));
        // Still starting its health checks again is not yet a failure.
        assert_eq!(with(|s| s.health = Some(Health::Starting)), None);
    }
}
