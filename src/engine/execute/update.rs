//! Updating in place: the start walk's `docker update` of a container the
//! plan updates (`ActionKind::Update`), and, when the start fails, the
//! settings it ran with before put back on every container updated.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::{NodeResult, Run};
use crate::engine::{Deadline, Error, Event};
use crate::plan::{self, Plan};
use crate::platform::Updatable;

/// The least time putting the previous settings back gets, past the
/// operation's deadline if need be (as a rollback).
const UNDO_GRACE: Duration = Duration::from_secs(30);

impl Run<'_> {
    /// Update `id` (the container `name`) to its spec's settings. A refusal
    /// fails the node; a fresh plan helps only if the container went away
    /// (Docker's refusal of a value stays a refusal).
    pub(super) async fn update_in_place(&self, name: &str, id: &str) -> Result<(), NodeResult> {
        let failed = |e: Error| NodeResult::Failed {
            created: None,
            retryable: e.is_not_found(),
            why: e.to_string(),
            evidence: None,
        };
        self.check_abort().map_err(failed)?;
        let spec = self.expanded.get(name).expect("updated nodes are expanded");
        let to = Updatable::of(&spec.create.host_config);
        self.engine.update(id, name, &to).await.map_err(failed)?;
        (self.emit)(Event::Updated {
            container: name.to_owned(),
        });
        Ok(())
    }

    /// After a failed start: the containers `plan::undo_updates` names get
    /// their previous settings back. Returns their names.
    pub(super) async fn undo_updates(
        &self,
        plan: &Plan,
        results: &HashMap<String, NodeResult>,
    ) -> HashSet<String> {
        let engine = self.engine.with_deadline(Deadline::after(UNDO_GRACE));
        let mut undone = HashSet::new();
        for undo in plan::undo_updates(plan, |c| results.contains_key(c)) {
            let container = undo.container.to_owned();
            if engine
                .update(undo.id, undo.container, undo.settings)
                .await
                .is_ok()
            {
                (self.emit)(Event::PutBack {
                    container: container.clone(),
                });
                (self.emit)(Event::RolledBack {
                    container: container.clone(),
                });
                undone.insert(container);
            }
        }
        undone
    }
}
