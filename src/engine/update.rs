//! `docker update`: setting a running container's memory limit, CPU quota,
//! cpuset and restart policy, and reading them back from `inspect`
//! (`platform::Updatable`). Which containers are updated, and to what, is
//! `plan::in_place`'s decision.

use bollard::models::{ContainerUpdateBody, RestartPolicy as ApiRestartPolicy};

use super::{Engine, Error, status_is};
use crate::platform::{RestartPolicy, Updatable};

impl Error {
    /// Docker answered that the container is not there (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Docker { source, .. } if status_is(source, 404))
    }
}

impl Engine {
    /// Set `to` on container `id` (`name` for messages). A memory limit
    /// goes with a swap limit of twice it, as Docker sets one at create:
    /// Docker refuses a memory limit above the swap limit set before.
    pub async fn update(&self, id: &str, name: &str, to: &Updatable) -> Result<(), Error> {
        let policy: ApiRestartPolicy = serde_json::from_value(
            serde_json::to_value(&to.restart_policy).expect("a restart policy serializes"),
        )
        .expect("telefig's restart policy is the Engine API's");
        let body = ContainerUpdateBody {
            memory: to.memory,
            memory_swap: to.memory.map(|m| m.saturating_mul(2)),
            nano_cpus: to.nano_cpus,
            cpuset_cpus: to.cpuset_cpus.clone(),
            restart_policy: Some(policy),
            ..Default::default()
        };
        self.call("update", name, self.docker.update_container(id, body))
            .await?
            .map_err(Self::err("update", name))
    }

    /// What container `id` runs with now, of the settings an update changes.
    pub async fn read_updatable(&self, id: &str) -> Result<Updatable, Error> {
        let host = self
            .call("inspect", id, self.docker.inspect_container(id, None))
            .await?
            .map_err(Self::err("inspect", id))?
            .host_config
            .unwrap_or_default();
        let policy = host.restart_policy.unwrap_or_default();
        Ok(Updatable::from_inspect(
            host.memory,
            host.nano_cpus,
            host.cpuset_cpus,
            RestartPolicy {
                name: policy.name.map(|n| n.to_string()).unwrap_or_default(),
                maximum_retry_count: policy.maximum_retry_count,
            },
        ))
    }
}
