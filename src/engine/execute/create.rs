//! Creating containers: all that a start creates, at once, ahead of the
//! walk; and adopting a container that already holds the name when it is
//! this serviceset's own (a lost answer, a racing caller).

use std::collections::HashMap;

use super::{Event, Run};
use crate::engine::{Error, status_is};
use crate::plan::{ActionKind, Plan};
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

    /// Create `spec`; if the name is taken by this serviceset's own
    /// container (a lost answer, a racing caller), keep it when its config
    /// hash matches, else replace it.
    pub(super) async fn create(&self, spec: &ContainerSpec) -> Result<String, Error> {
        self.check_abort()?;
        let name = &spec.name;
        match self.engine.create(name, &spec.create).await? {
            Ok(id) => {
                (self.emit)(Event::Created {
                    container: name.clone(),
                });
                Ok(id)
            }
            Err(e) if status_is(&e, 409) => {
                let holder = self
                    .engine
                    .list_serviceset(&self.expanded.serviceset)
                    .await?
                    .into_iter()
                    .find(|o| o.name == *name);
                match holder {
                    Some(h) if h.config_hash() == Some(spec.config_hash.as_str()) => Ok(h.id),
                    Some(h) => {
                        self.engine.remove(&h.id, name).await?;
                        let id =
                            self.engine
                                .create(name, &spec.create)
                                .await?
                                .map_err(|source| Error::Docker {
                                    op: "create",
                                    target: name.clone(),
                                    source,
                                })?;
                        (self.emit)(Event::Created {
                            container: name.clone(),
                        });
                        Ok(id)
                    }
                    None => Err(Error::Docker {
                        op: "create",
                        target: name.clone(),
                        source: e,
                    }),
                }
            }
            Err(source) => Err(Error::Docker {
                op: "create",
                target: name.clone(),
                source,
            }),
        }
    }
}
