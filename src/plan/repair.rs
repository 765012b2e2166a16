//! Plans that repair rather than converge: `restart`, and the boot repair
//! of dependents Docker started before their dependency met its gate.

use std::collections::HashMap;

use super::{Action, ActionKind, Observed, Plan, Reason, Timing};
use crate::graph::Gate;
use crate::graph::Graph;
use crate::platform::Expanded;

/// `restart [target]`: the target (or everything) and, in order, whatever
/// depends on it. Nothing outside that set is touched; a missing member is
/// created from the desired config.
pub fn restart(
    desired: &Expanded,
    graph: &Graph,
    observed: &[Observed],
    target: Option<&str>,
) -> Plan {
    let set = match target {
        Some(t) => graph.downstream(t),
        None => graph.start_order().into_iter().map(str::to_owned).collect(),
    };
    let actions = graph
        .start_order()
        .into_iter()
        .filter(|n| set.contains(*n))
        .map(|name| {
            let holder = observed
                .iter()
                .find(|o| o.name == name && o.serviceset() == Some(desired.serviceset.as_str()));
            let (action, reason) = match (holder, target) {
                (None, _) => (ActionKind::Create, Reason::Missing),
                (Some(_), Some(t)) if t != name => (
                    ActionKind::Restart,
                    Reason::DependencyRestarted {
                        dependency: t.to_owned(),
                    },
                ),
                (Some(_), _) => (ActionKind::Restart, Reason::Requested),
            };
            Action {
                container: name.to_owned(),
                action,
                reason,
                existing_id: holder.map(|h| h.id.clone()),
                backup_id: None,
                readiness: None,
                drain: None,
            }
        })
        .collect();
    let mut plan = Plan {
        serviceset: desired.serviceset.clone(),
        actions,
        bake: Vec::new(),
    };
    super::drain::assign(&mut plan, desired, observed);
    plan
}

/// At boot Docker starts every `unless-stopped` container at once. A
/// dependent that started before its dependency met the gate (discovery
/// registering a service that was not healthy yet) is restarted, in order.
/// `timings` come from inspect. The rule is about what Docker started when:
/// - a dependency this plan (re)starts goes down or comes up now, so a
///   dependent waiting for it to be `healthy` follows it;
/// - otherwise the dependent is too early if it started before the
///   dependency (in its last run) met the gate, or if a running dependency
///   has not met it at all;
/// - a dependency telefig brings back now (missing, or stopped with no
///   earlier start to compare) was not started by Docker at boot: its
///   `started`/`completed` dependents have launched already and keep
///   running — a log shipper's loss does not take the service down.
pub fn reorder_after_boot(plan: &mut Plan, graph: &Graph, timings: &HashMap<String, Timing>) {
    for name in graph.start_order() {
        let Some(index) = plan.actions.iter().position(|a| a.container == name) else {
            continue;
        };
        if plan.actions[index].action != ActionKind::Keep {
            continue;
        }
        let started = timings.get(name).and_then(|t| t.started_at);
        let too_early = graph.dependencies(name).into_iter().find(|(dep, gate)| {
            let acts_now = plan
                .actions
                .iter()
                .find(|a| a.container == *dep)
                .is_some_and(|a| a.action != ActionKind::Keep);
            if acts_now && *gate == Gate::Healthy {
                return true;
            }
            let met = timings.get(*dep).and_then(|t| gate_met_at(t, *gate));
            match (started, met) {
                (Some(s), Some(m)) => s < m,
                (_, None) if acts_now => false,
                _ => true,
            }
        });
        if let Some((dep, _)) = too_early {
            let a = &mut plan.actions[index];
            a.action = ActionKind::Restart;
            a.readiness = None;
            a.reason = Reason::StartedTooEarly {
                dependency: dep.to_owned(),
            };
        }
    }
}

fn gate_met_at(t: &Timing, gate: Gate) -> Option<i64> {
    match gate {
        Gate::Started => t.started_at,
        // Docker's log holds five probes: the first pass may have left it,
        // and a probe that timed out on a busy host since hides the window's
        // passes before it. A pass telefig saw in this run settles it.
        Gate::Healthy if t.has_healthcheck => {
            let seen = t
                .healthy_seen_at
                .filter(|seen| t.started_at.is_some_and(|started| *seen >= started));
            match (t.healthy_since, seen) {
                (Some(docker), Some(seen)) => Some(docker.min(seen)),
                (docker, seen) => docker.or(seen),
            }
        }
        Gate::Healthy => t.started_at,
        Gate::Completed => t.finished_at,
    }
}
