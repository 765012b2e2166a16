//! When a start fails: the rollback that puts back what was kept aside and
//! re-gates what was stopped for it (the failure's evidence is
//! `execute::evidence`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{NodeResult, Options, Run, Step};
use crate::engine::pull::Policy;
use crate::engine::{Deadline, Event};
use crate::plan::{ActionKind, Plan};

/// The least time a rollback gets, past the operation's deadline if need be.
const ROLLBACK_GRACE: Duration = Duration::from_secs(30);

impl Run<'_> {
    /// Put back what was kept aside for every container that did not pass,
    /// start the dependents stopped for it, and gate them again. Returns the
    /// names restored.
    pub(super) async fn roll_back(
        &self,
        plan: &Plan,
        results: &HashMap<String, NodeResult>,
        kept_aside: &HashMap<String, String>,
    ) -> HashSet<String> {
        let passed = |n: &str| matches!(results.get(n), Some(NodeResult::Passed { .. }));
        let mut steps = HashMap::new();
        let mut restored = HashSet::new();
        for (name, backup) in kept_aside {
            if passed(name) {
                continue;
            }
            if let Some(NodeResult::Failed {
                created: Some(new_id),
                ..
            }) = results.get(name)
            {
                let _ = self.engine.remove(new_id, name).await;
            } else if let Ok(list) = self.engine.list_serviceset(&self.expanded.serviceset).await
                && let Some(new) = list.iter().find(|o| o.name == *name)
            {
                let _ = self.engine.remove(&new.id, name).await;
            }
            if self.engine.rename(backup, name).await.is_ok() {
                (self.emit)(Event::PutBack {
                    container: name.clone(),
                });
                restored.insert(name.clone());
                steps.insert(name.clone(), Step::StartExisting { id: backup.clone() });
            }
        }
        for a in &plan.actions {
            if a.action == ActionKind::Restart
                && !passed(&a.container)
                && let Some(id) = &a.existing_id
            {
                steps.insert(a.container.clone(), Step::StartExisting { id: id.clone() });
            }
        }
        if steps.is_empty() {
            return restored;
        }
        // A rollback must not be cut short by the abort that caused it. It
        // has what is left of the operation's deadline, and at least
        // ROLLBACK_GRACE to put back what was kept aside when the deadline
        // itself caused the failure.
        let (_keep, abort) = watch::channel(false);
        let deadline = self.opts.deadline.max(Instant::now() + ROLLBACK_GRACE);
        let engine = self.engine.with_deadline(Deadline {
            at: deadline,
            budget: self.engine.deadline().map_or(ROLLBACK_GRACE, |d| d.budget),
        });
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
