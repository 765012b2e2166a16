//! Reading what Docker has: the one list call a plan observes (with each
//! container's status text for `status`), inspect, and a container's
//! environment (kept out of the inspect details, for secrets).

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptions;

use super::details::{ContainerDetails, details, exit_code_from_status, health_from_status};
use super::{Engine, Error};
use crate::plan::{Observed, RunState};
use crate::platform::LABEL_SERVICESET;

impl Engine {
    /// Every container on the host, or those with `label` (one list call).
    pub async fn list(&self, label: Option<&str>) -> Result<Vec<Observed>, Error> {
        match self.list_once(label).await {
            // A remembered API version dockerd no longer speaks: agree on one, once.
            Err(e) if self.version_refused(&e) && self.renegotiate().await => {
                self.list_once(label).await
            }
            listed => listed,
        }
    }

    async fn list_once(&self, label: Option<&str>) -> Result<Vec<Observed>, Error> {
        let listed = self.list_with_status(label).await?;
        Ok(listed.into_iter().map(|(o, _)| o).collect())
    }

    /// One list call, all containers (or those with `label`), as Docker
    /// reports them.
    pub(super) async fn list_summaries(
        &self,
        label: Option<&str>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, Error> {
        let filters = label.map(|l| HashMap::from([("label".to_owned(), vec![l.to_owned()])]));
        self.list_filtered(filters).await
    }

    async fn list_filtered(
        &self,
        filters: Option<HashMap<String, Vec<String>>>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, Error> {
        let options = ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        };
        self.call(
            "list",
            "containers",
            self.docker.list_containers(Some(options)),
        )
        .await?
        .map_err(Self::err("list", "containers"))
    }

    /// [`Engine::list`] with each container's status text ("Up 3 minutes
    /// (healthy)"), which `status` reads its uptime from.
    pub(super) async fn list_with_status(
        &self,
        label: Option<&str>,
    ) -> Result<Vec<(Observed, String)>, Error> {
        Ok(self
            .list_summaries(label)
            .await?
            .into_iter()
            .map(listed)
            .collect())
    }

    /// The container that holds `name` now, whoever created it (one list
    /// call, filtered by name).
    pub async fn holder_of(&self, name: &str) -> Result<Option<Observed>, Error> {
        let filters = HashMap::from([("name".to_owned(), vec![format!("^/{name}$")])]);
        Ok(self
            .list_filtered(Some(filters))
            .await?
            .into_iter()
            .map(|s| listed(s).0)
            .find(|o| o.name == name))
    }

    /// The serviceset's containers, backups included.
    pub async fn list_serviceset(&self, serviceset: &str) -> Result<Vec<Observed>, Error> {
        self.list(Some(&format!("{LABEL_SERVICESET}={serviceset}")))
            .await
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerDetails, Error> {
        let r = self
            .call("inspect", id, self.docker.inspect_container(id, None))
            .await?
            .map_err(Self::err("inspect", id))?;
        Ok(details(r))
    }

    /// A container's environment (`KEY=VALUE`), kept out of
    /// [`ContainerDetails`] so that no debug print shows its secrets. Used to
    /// put back the secret values a record keeps only as digests.
    pub async fn environment(&self, id: &str) -> Result<Vec<String>, Error> {
        let r = self
            .call("inspect", id, self.docker.inspect_container(id, None))
            .await?
            .map_err(Self::err("inspect", id))?;
        Ok(r.config.and_then(|c| c.env).unwrap_or_default())
    }

    /// The environment values of every container of `serviceset` (backups
    /// too): the candidates for secret values a record keeps as digests.
    pub async fn serviceset_env_values(&self, serviceset: &str) -> Result<Vec<String>, Error> {
        let mut values = Vec::new();
        for o in self.list_serviceset(serviceset).await? {
            // A container removed meanwhile has nothing to offer.
            if let Ok(env) = self.environment(&o.id).await {
                values.extend(
                    env.into_iter()
                        .filter_map(|e| Some(e.split_once('=')?.1.to_owned())),
                );
            }
        }
        Ok(values)
    }
}

/// A list entry as the planner reads it, with Docker's status text.
fn listed(s: bollard::models::ContainerSummary) -> (Observed, String) {
    let status = s.status.unwrap_or_default();
    let observed = Observed {
        id: s.id.unwrap_or_default(),
        name: s
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        image: s.image.unwrap_or_default(),
        labels: s.labels.unwrap_or_default().into_iter().collect(),
        state: RunState::parse(&s.state.map(|st| st.to_string()).unwrap_or_default()),
        health: health_from_status(&status),
        exit_code: exit_code_from_status(&status),
        updatable: None,
    };
    (observed, status)
}
