//! When a start fails: carrying out the recovery `plan::recovery` decided
//! — stop the running dependents of what goes back, put back what was kept
//! aside, start and re-gate (the failure's evidence is `execute::evidence`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{NodeResult, Options, Run, Step};
use crate::engine::pull::Policy;
use crate::engine::{Deadline, Event};
use crate::plan::Plan;
use crate::plan::recovery::{ROLLBACK_GRACE, Recovery};

impl Run<'_> {
    /// Carry out `recovery` (`plan::recovery` decided it): stop the running
    /// dependents of what goes back, put back what was kept aside, start
    /// and gate again what it says. Returns the names put back.
    pub(super) async fn roll_back(
        &self,
        plan: &Plan,
        recovery: &Recovery,
        results: &HashMap<String, NodeResult>,
        kept_aside: &HashMap<String, String>,
    ) -> HashSet<String> {
        // A rollback must not be cut short by the abort or the deadline
        // that caused it: it has what is left of the operation's deadline,
        // and at least ROLLBACK_GRACE.
        let deadline = self.opts.deadline.max(Instant::now() + ROLLBACK_GRACE);
        let engine = self.engine.with_deadline(Deadline {
            at: deadline,
            budget: self.engine.deadline().map_or(ROLLBACK_GRACE, |d| d.budget),
        });
        // The id a container of this start runs under now.
        let current = |name: &str| match results.get(name) {
            Some(NodeResult::Passed {
                created: Some(id), ..
            }) => Some(id.clone()),
            _ => plan.get(name).and_then(|a| a.existing_id.clone()),
        };
        for name in &recovery.stop {
            if let Some(id) = current(name)
                && engine.stop(&id, name).await.is_ok()
            {
                (self.emit)(Event::Stopped {
                    container: name.clone(),
                });
            }
        }
        let mut restored = HashSet::new();
        for name in &recovery.put_back {
            let Some(backup) = kept_aside.get(name) else {
                continue;
            };
            let new = match results.get(name) {
                Some(NodeResult::Failed {
                    created: Some(id), ..
                }) => Some(id.clone()),
                _ => engine
                    .list_serviceset(&self.expanded.serviceset)
                    .await
                    .ok()
                    .and_then(|list| list.into_iter().find(|o| o.name == *name))
                    .map(|o| o.id),
            };
            if let Some(new) = new {
                let _ = engine.remove(&new, name).await;
            }
            if engine.rename(backup, name).await.is_ok() {
                (self.emit)(Event::PutBack {
                    container: name.clone(),
                });
                restored.insert(name.clone());
            }
        }
        let steps: HashMap<String, Step> = recovery
            .start
            .iter()
            .filter_map(|name| {
                let id = match restored.contains(name) {
                    true => kept_aside.get(name).cloned(),
                    false if recovery.put_back.contains(name) => None,
                    false => current(name),
                }?;
                Some((name.clone(), Step::StartExisting { id }))
            })
            .collect();
        if steps.is_empty() {
            return restored;
        }
        let (_keep, abort) = watch::channel(false);
        let rollback = Run {
            engine: &engine,
            expanded: self.expanded,
            graph: self.graph,
            monitor: OnceLock::new(),
            opts: Options {
                pull: Policy::Never,
                deadline,
                abort,
            },
            emit: self.emit,
        };
        let results = rollback.start_walk(&steps).await;
        for name in &restored {
            if matches!(results.get(name), Some(NodeResult::Passed { .. })) {
                (self.emit)(Event::RolledBack {
                    container: name.clone(),
                });
            }
        }
        restored
    }
}
