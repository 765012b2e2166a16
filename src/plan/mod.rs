//! `plan`: desired containers + what Docker has → actions, each with a reason.
//!
//! A pure function over data: [`plan`] takes the expanded serviceset, the
//! graph, the containers one list call returned, and the create bodies
//! recorded by the last `start` (for naming changed fields), and decides
//! what `start` will do. `telefig plan` prints exactly this; the engine
//! executes it and decides nothing. Tests feed literal observed state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

pub mod bake;
mod conflict;
mod drain;
pub mod evidence;
mod gates;
pub mod gc;
mod in_place;
mod observed;
mod own_events;
mod readiness;
mod reason;
pub mod recovery;
mod repair;
pub mod rollback;
pub mod space;
mod stop;

pub use conflict::{NameConflict, name_conflict};
pub use drain::{DEFAULT_PERIOD as DEFAULT_DRAIN_PERIOD, Drain, drain_for, is_registered};
pub use gates::{
    GateFailure, GateStatus, GateWait, STARTED_BUDGET, gates, is_retryable, judge_gate, passed_as,
    status_ok,
};
pub use in_place::{Undo, to_read, undo_updates};
pub use observed::{Health, Observed, RunState, Timing};
pub use own_events::{Change, NotDrift, OwnEvents, RepairId};
pub use readiness::Readiness;
pub use reason::{Reason, RemoveReason, reason_and_code, why_and_code};
pub use repair::{reorder_after_boot, restart};
pub use stop::{AfterStop, StopAction, StopPlan, StopReason, aside_name, regate, stop};

use crate::graph::Gate;
use crate::graph::Graph;
use crate::platform::{ContainerSpec, Expanded};
use in_place::Difference;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Running with the wanted config: only its gate is checked.
    Keep,
    Create,
    /// Config changed: the old one is stopped and kept aside until the new one passes.
    Recreate,
    /// Right config, not running.
    Start,
    /// Right config, but a `healthy` dependency is recreated: stop before it, start after.
    Restart,
    Remove,
    /// Only settings Docker changes on a running container differ: `docker
    /// update`, no restart (`plan::in_place`).
    Update,
}

impl ActionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionKind::Keep => "keep",
            ActionKind::Create => "create",
            ActionKind::Recreate => "recreate",
            ActionKind::Start => "start",
            ActionKind::Restart => "restart",
            ActionKind::Remove => "remove",
            ActionKind::Update => "update",
        }
    }
    /// Whether the action changes anything in Docker.
    pub fn mutates(&self) -> bool {
        *self != ActionKind::Keep
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub container: String,
    pub action: ActionKind,
    #[serde(flatten)]
    pub reason: Reason,
    /// The container Docker has under this name now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_id: Option<String>,
    /// A previous version kept aside (from an interrupted run), to roll back to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// For a kept container: whether it meets its gate now, or what the
    /// start walk waits for before its dependents may start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    /// For a recreate or restart of a running container: wait before its stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub serviceset: String,
    /// One per desired container in start order, then removals.
    pub actions: Vec<Action>,
    /// What a deploy keeps watching once every gate passed (`bake::assign`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bake: Vec<bake::BakeWatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "container name `{name}` is taken by a container telefig did not create (id {id}); rename or remove it yourself, telefig will not touch it"
    )]
    NameTakenByForeign { name: String, id: String },
    #[error(
        "container name `{name}` belongs to serviceset `{owner}` (id {id}); a serviceset never changes another's containers: rename one of them"
    )]
    NameTakenByOther {
        name: String,
        owner: String,
        id: String,
    },
}

/// Decide what `start` does. `observed` is every container on the host (one
/// list call); `recorded` holds the containers the last `start` applied.
pub fn plan(
    desired: &Expanded,
    graph: &Graph,
    observed: &[Observed],
    recorded: &BTreeMap<String, ContainerSpec>,
) -> Result<Plan, Error> {
    let ours = |o: &&Observed| o.serviceset() == Some(desired.serviceset.as_str());
    // Looked up once per desired container: indexed, not searched (a host
    // can hold hundreds of containers). The first one seen wins, as a
    // search would have it.
    let mut by_name: HashMap<&str, &Observed> = HashMap::with_capacity(observed.len());
    let mut backups: HashMap<&str, &Observed> = HashMap::new();
    for o in observed {
        by_name.entry(o.name.as_str()).or_insert(o);
        if let Some(c) = o.container().filter(|_| o.is_backup() && ours(&o)) {
            backups.entry(c).or_insert(o);
        }
    }
    let specs: HashMap<&str, &ContainerSpec> = desired
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let mut actions = Vec::new();
    for name in graph.start_order() {
        let spec = specs
            .get(name)
            .copied()
            .expect("the graph is built from the expanded set");
        let holder = by_name.get(name).copied();
        if let Some(h) = holder {
            conflict::check_holder(&desired.serviceset, name, h)?;
        }
        let backup = backups.get(name).copied();
        let difference =
            holder.map(|h| in_place::compare(spec, h, recorded.get(name), &desired.secrets));
        let (action, reason) = match (holder, difference) {
            (None, _) => (ActionKind::Create, Reason::Missing),
            // Created by a run that never started it: Docker may hold a
            // task for it that no start will clear (a dockerd restart
            // between create and start), so a new one replaces it,
            // whatever its config: there is nothing in it to keep aside.
            (Some(h), _) if h.state == RunState::Created => {
                (ActionKind::Recreate, Reason::NeverStarted)
            }
            (_, Some(Difference::Recreate { fields })) => {
                (ActionKind::Recreate, Reason::ConfigChanged { fields })
            }
            (_, Some(Difference::Update { from, fields })) => (
                ActionKind::Update,
                Reason::UpdatableChanged { fields, from },
            ),
            // A job a killed earlier run left running: never "completed" yet.
            (Some(h), _)
                if spec.is_job() && matches!(h.state, RunState::Running | RunState::Restarting) =>
            {
                (ActionKind::Keep, Reason::JobRunning)
            }
            // Restarting: Docker's restart policy is at work; telefig does not fight it.
            (Some(h), _) if matches!(h.state, RunState::Running | RunState::Restarting) => {
                (ActionKind::Keep, Reason::UpToDate)
            }
            (Some(h), _)
                if spec.is_job() && h.state == RunState::Exited && h.exit_code == Some(0) =>
            {
                (ActionKind::Keep, Reason::Completed)
            }
            (Some(h), _) => (
                ActionKind::Start,
                Reason::NotRunning {
                    state: h.state,
                    exit_code: h.exit_code,
                },
            ),
        };
        let readiness = holder
            .filter(|_| matches!(action, ActionKind::Keep | ActionKind::Update))
            .map(|h| Readiness::of_kept(spec.is_job(), h));
        actions.push(Action {
            container: name.to_owned(),
            action,
            reason,
            existing_id: holder.map(|h| h.id.clone()),
            backup_id: backup.filter(|_| holder.is_none()).map(|b| b.id.clone()),
            readiness,
            drain: None,
        });
    }
    regate_healthy_dependents(graph, &mut actions);

    let wanted: HashSet<&str> = graph.start_order().into_iter().collect();
    for o in observed.iter().filter(ours) {
        let reason = match o.container() {
            Some(c) if o.is_backup() && wanted.contains(c) => {
                let claimed = actions
                    .iter()
                    .any(|a| a.backup_id.as_deref() == Some(o.id.as_str()));
                if claimed {
                    continue;
                }
                Reason::LeftoverBackup { of: c.to_owned() }
            }
            Some(c) if wanted.contains(c) => continue,
            _ => Reason::Orphan,
        };
        actions.push(Action {
            container: o.name.clone(),
            action: ActionKind::Remove,
            reason,
            existing_id: Some(o.id.clone()),
            backup_id: None,
            readiness: None,
            drain: None,
        });
    }
    let mut plan = Plan {
        serviceset: desired.serviceset.clone(),
        actions,
        bake: Vec::new(),
    };
    drain::assign(&mut plan, desired, observed);
    Ok(plan)
}

/// A container that waits for a recreated one to be `healthy` (discovery,
/// say) is stopped before it and started after it passes again.
fn regate_healthy_dependents(graph: &Graph, actions: &mut [Action]) {
    // One never started was nobody's healthy dependency: nothing to re-gate.
    let recreated: Vec<String> = actions
        .iter()
        .filter(|a| a.action == ActionKind::Recreate && a.reason != Reason::NeverStarted)
        .map(|a| a.container.clone())
        .collect();
    for dependency in recreated {
        for (dependent, gate) in graph.dependents(&dependency) {
            if gate != Gate::Healthy {
                continue;
            }
            if let Some(a) = actions
                .iter_mut()
                .find(|a| a.container == dependent && a.action == ActionKind::Keep)
            {
                a.action = ActionKind::Restart;
                a.readiness = None;
                a.reason = Reason::DependencyRecreated {
                    dependency: dependency.clone(),
                };
            }
        }
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.actions.iter().all(|a| !a.action.mutates())
    }

    pub fn get(&self, container: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.container == container)
    }

    /// "2 to create, 1 to keep", in a fixed order.
    pub fn summary(&self) -> String {
        let kinds = [
            (ActionKind::Create, "to create"),
            (ActionKind::Recreate, "to recreate"),
            (ActionKind::Update, "to update in place"),
            (ActionKind::Start, "to start"),
            (ActionKind::Restart, "to restart"),
            (ActionKind::Remove, "to remove"),
            (ActionKind::Keep, "unchanged"),
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter_map(|(k, label)| {
                let n = self.actions.iter().filter(|a| a.action == *k).count();
                (n > 0).then(|| format!("{n} {label}"))
            })
            .collect();
        parts.join(", ")
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "serviceset {}: {}", self.serviceset, self.summary())?;
        let width = self
            .actions
            .iter()
            .map(|a| a.container.len())
            .max()
            .unwrap_or(0);
        for a in &self.actions {
            write!(
                f,
                "  {:<8} {:<width$}  {}",
                a.action.as_str(),
                a.container,
                a.reason
            )?;
            match &a.drain {
                Some(d) if d.skipped => writeln!(f, "; not drained (--no-drain)")?,
                Some(d) => writeln!(f, "; drains up to {:.1} s first", d.period.as_secs_f64())?,
                None => writeln!(f)?,
            }
        }
        if !self.bake.is_empty() {
            let watched: Vec<String> = self
                .bake
                .iter()
                .map(|w| format!("{} {:.1} s", w.container, w.period.as_secs_f64()))
                .collect();
            writeln!(f, "  bake: {} after every gate passed", watched.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
