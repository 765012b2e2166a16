//! Creating containers: all that a start creates, at once, ahead of the
//! walk; and, when Docker answers that the name is taken (409), carrying
//! out what `plan::name_conflict` decides about the holder.

use std::collections::HashMap;

use super::{Event, Run};
use crate::engine::{Error, status_is};
use crate::plan::{self, ActionKind, NameConflict, Plan};
use crate::platform::ContainerSpec;

impl Run<'_> {
    /// Create every container the plan creates or recreates, in parallel;
    /// returns the ids of those created.
    pub(super) async fn create_ahead(&self, plan: &Plan) -> HashMap<String, String> {
        if self.check_abort().is_err() {
            return HashMap::new();
        }
        let creates = plan
            .actions
            .iter()
            .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Recreate))
            .filter_map(|a| self.expanded.get(&a.container))
            .map(|spec| async move {
                self.create(spec)
                    .await
                    .ok()
                    .map(|id| (spec.name.clone(), id))
            });
        futures_util::future::join_all(creates)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Create `spec`. If the name is taken, the holder Docker reports now
    /// goes to `plan::name_conflict`: adopted, replaced, or refused.
    pub(super) async fn create(&self, spec: &ContainerSpec) -> Result<String, Error> {
        self.check_abort()?;
        let name = &spec.name;
        let taken = match self.engine.create(name, &spec.create).await? {
            Ok(id) => return Ok(self.created(name, id)),
            Err(e) if status_is(&e, 409) => e,
            Err(source) => return Err(docker_create(name, source)),
        };
        let holder = self.engine.holder_of(name).await?;
        match plan::name_conflict(&self.expanded.serviceset, spec, holder.as_ref()) {
            NameConflict::Adopt { id } => Ok(id),
            NameConflict::Replace { id } => {
                self.engine.remove(&id, name).await?;
                let id = (self.engine.create(name, &spec.create).await?)
                    .map_err(|source| docker_create(name, source))?;
                Ok(self.created(name, id))
            }
            NameConflict::Gone => Err(docker_create(name, taken)),
            NameConflict::Refuse(refused) => Err(refused.into()),
        }
    }

    fn created(&self, name: &str, id: String) -> String {
        (self.emit)(Event::Created {
            container: name.to_owned(),
        });
        id
    }
}

fn docker_create(name: &str, source: bollard::errors::Error) -> Error {
    Error::Docker {
        op: "create",
        target: name.to_owned(),
        source,
    }
}
