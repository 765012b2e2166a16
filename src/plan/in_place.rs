//! Update in place or recreate: how a container whose config hash is not
//! the spec's becomes the spec.
//!
//! Docker changes a running container's memory limit, CPU quota, cpuset
//! and restart policy (`docker update`) but not its labels, so after an
//! update the `telefig.config-hash` label still names the body the
//! container was created from. What it runs is that body with the
//! settings `inspect` reads back (`Observed::updatable`). So: a container
//! whose `telefig.fixed-hash` is the spec's (nothing but updatable
//! settings differ, `platform::updatable`) is compared by those settings.
//! Equal: it already is the spec (updated earlier), nothing to do. Else,
//! running, and every change one an update can make (it cannot take a
//! limit away): update it in place. Anything else recreates, as before.
//!
//! [`to_read`] names the containers whose settings the plan needs, so the
//! caller inspects only those (containers updated in place earlier, and
//! those about to be).

use std::collections::HashMap;

use super::{ActionKind, Observed, Plan, Reason, RunState};
use crate::platform::{ContainerSpec, Expanded, Updatable};
use crate::redact::Redactor;

/// How a container differs from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Difference {
    /// It runs exactly the spec (its config hash, or updated in place to it).
    None,
    /// Only updatable settings differ, and an update reaches them.
    Update {
        from: Updatable,
        fields: Vec<String>,
    },
    /// `fields`: empty when nothing tells them (no record of the old config).
    Recreate { fields: Vec<String> },
}

/// Compare the container Docker has under `spec`'s name with `spec`.
/// `recorded`: the spec the last `start` applied, to name changed fields.
pub(super) fn compare(
    spec: &ContainerSpec,
    holder: &Observed,
    recorded: Option<&ContainerSpec>,
    secrets: &Redactor,
) -> Difference {
    if holder.config_hash() == Some(spec.config_hash.as_str()) {
        return Difference::None;
    }
    let same_fixed = spec.fixed_hash().is_some() && holder.fixed_hash() == spec.fixed_hash();
    if let Some(from) = holder.updatable.as_ref().filter(|_| same_fixed) {
        let to = Updatable::of(&spec.create.host_config);
        let fields = from.changed(&to);
        let running = matches!(holder.state, RunState::Running | RunState::Restarting);
        return if fields.is_empty() {
            Difference::None
        } else if running && from.unset_by(&to).is_empty() {
            Difference::Update {
                from: from.clone(),
                fields,
            }
        } else {
            Difference::Recreate { fields }
        };
    }
    let fields = holder
        .config_hash()
        .and(recorded)
        .filter(|r| holder.config_hash() == Some(r.config_hash.as_str()))
        .map(|r| spec.changed_fields(&r.create, secrets))
        .unwrap_or_default();
    Difference::Recreate { fields }
}

/// One container to put back as it was: its id and the settings it ran
/// with before the start updated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo<'p> {
    pub container: &'p str,
    pub id: &'p str,
    pub settings: &'p Updatable,
}

/// After a failed start: every container the plan updates in place that
/// the walk `reached` (updated, or refused: putting back what it ran with
/// is harmless either way), with its previous settings.
pub fn undo_updates<'p>(plan: &'p Plan, reached: impl Fn(&str) -> bool) -> Vec<Undo<'p>> {
    plan.actions
        .iter()
        .filter(|a| a.action == ActionKind::Update && reached(&a.container))
        .filter_map(|a| match (&a.reason, &a.existing_id) {
            (Reason::UpdatableChanged { from, .. }, Some(id)) => Some(Undo {
                container: &a.container,
                id,
                settings: from,
            }),
            _ => None,
        })
        .collect()
}

/// The ids of the containers whose updatable settings [`compare`] needs:
/// this serviceset's, under a desired name, whose config hash differs from
/// the spec's while the fixed hash is the same.
pub fn to_read(desired: &Expanded, observed: &[Observed]) -> Vec<String> {
    let specs: HashMap<&str, &ContainerSpec> = desired
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    observed
        .iter()
        .filter(|o| o.serviceset() == Some(desired.serviceset.as_str()) && !o.is_backup())
        .filter(|o| {
            specs.get(o.name.as_str()).is_some_and(|spec| {
                o.config_hash() != Some(spec.config_hash.as_str())
                    && spec.fixed_hash().is_some()
                    && o.fixed_hash() == spec.fixed_hash()
            })
        })
        .map(|o| o.id.clone())
        .collect()
}
