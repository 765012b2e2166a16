//! What Docker changes on a running container (`docker update`), and the
//! hash of everything else.
//!
//! [`Updatable`] is the part of the create body that the Engine API's
//! `POST /containers/{id}/update` takes and telefig sets: the memory limit,
//! the CPU quota (`NanoCpus`), the cpuset and the restart policy. Docker
//! stores an update in the container's `HostConfig`, so `inspect` reads
//! back what the container runs with; its labels it cannot change.
//!
//! So a container carries two hashes, both fixed at create:
//! `telefig.config-hash` over the whole body (SPEC §7) and
//! `telefig.fixed-hash` ([`fixed_hash`]) over the body with the updatable
//! settings left out. Same fixed hash, other config hash: only updatable
//! settings differ, and `plan` may update in place. After an update the
//! config-hash label names the body it was created from; the container is
//! described exactly by that label's body with the `Updatable` read back
//! from `inspect` (`plan::in_place`). The fixed-hash label is bookkeeping:
//! it is left out of the config hash, so adding it changed no hash.

use serde::{Deserialize, Serialize};

use super::container::{CreateBody, HostConfig, RestartPolicy, config_hash};

pub const LABEL_FIXED_HASH: &str = "telefig.fixed-hash";

/// The settings Docker changes on a running container, as telefig sets
/// them (`None`: not set, Docker's default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updatable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    pub restart_policy: RestartPolicy,
}

impl Updatable {
    /// The updatable settings of a create body's host config.
    pub fn of(host: &HostConfig) -> Updatable {
        Updatable {
            memory: host.memory,
            nano_cpus: host.nano_cpus,
            cpuset_cpus: host.cpuset_cpus.clone(),
            restart_policy: host.restart_policy.clone(),
        }
    }

    /// As Docker reports them in `inspect`'s `HostConfig`, where 0 and ""
    /// mean "not set" and a retry count of 0 "none given".
    pub fn from_inspect(
        memory: Option<i64>,
        nano_cpus: Option<i64>,
        cpuset_cpus: Option<String>,
        restart_policy: RestartPolicy,
    ) -> Updatable {
        Updatable {
            memory: memory.filter(|m| *m != 0),
            nano_cpus: nano_cpus.filter(|c| *c != 0),
            cpuset_cpus: cpuset_cpus.filter(|c| !c.is_empty()),
            restart_policy: RestartPolicy {
                maximum_retry_count: restart_policy.maximum_retry_count.filter(|n| *n != 0),
                ..restart_policy
            },
        }
    }

    /// The create body's names of the settings that differ from `other`
    /// (`HostConfig.Memory`, …), in a fixed order.
    pub fn changed(&self, other: &Updatable) -> Vec<String> {
        let retries = |p: &RestartPolicy| p.maximum_retry_count.unwrap_or(0);
        [
            ("HostConfig.Memory", self.memory == other.memory),
            ("HostConfig.NanoCpus", self.nano_cpus == other.nano_cpus),
            (
                "HostConfig.CpusetCpus",
                self.cpuset_cpus == other.cpuset_cpus,
            ),
            (
                "HostConfig.RestartPolicy",
                self.restart_policy.name == other.restart_policy.name
                    && retries(&self.restart_policy) == retries(&other.restart_policy),
            ),
        ]
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(field, _)| field.to_owned())
        .collect()
    }

    /// The settings that are set in `self` and not in `to`: Docker's
    /// update cannot take a limit away (0 means "leave it as it is").
    pub fn unset_by(&self, to: &Updatable) -> Vec<String> {
        [
            (
                "HostConfig.Memory",
                self.memory.is_some() && to.memory.is_none(),
            ),
            (
                "HostConfig.NanoCpus",
                self.nano_cpus.is_some() && to.nano_cpus.is_none(),
            ),
            (
                "HostConfig.CpusetCpus",
                self.cpuset_cpus.is_some() && to.cpuset_cpus.is_none(),
            ),
        ]
        .into_iter()
        .filter(|(_, unset)| *unset)
        .map(|(field, _)| field.to_owned())
        .collect()
    }
}

/// The config hash of `body` with its updatable settings left out.
pub fn fixed_hash(body: &CreateBody) -> String {
    let mut fixed = body.clone();
    fixed.host_config.memory = None;
    fixed.host_config.nano_cpus = None;
    fixed.host_config.cpuset_cpus = None;
    fixed.host_config.restart_policy = RestartPolicy::default();
    config_hash(&fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> CreateBody {
        let mut body = CreateBody {
            image: "x:1".into(),
            ..Default::default()
        };
        body.host_config.restart_policy.name = "unless-stopped".into();
        body
    }

    #[test]
    fn the_fixed_hash_ignores_what_docker_updates_and_nothing_else() {
        let base = body();
        let mut resized = base.clone();
        resized.host_config.memory = Some(64 << 20);
        resized.host_config.nano_cpus = Some(500_000_000);
        resized.host_config.cpuset_cpus = Some("0".into());
        resized.host_config.restart_policy.name = "always".into();
        assert_eq!(fixed_hash(&resized), fixed_hash(&base));
        assert_ne!(config_hash(&resized), config_hash(&base));
        let mut other = base.clone();
        other.env.push("A=1".into());
        assert_ne!(fixed_hash(&other), fixed_hash(&base));
    }

    #[test]
    fn inspect_zeroes_read_as_not_set() {
        let read = Updatable::from_inspect(
            Some(0),
            Some(0),
            Some(String::new()),
            RestartPolicy {
                name: "no".into(),
                maximum_retry_count: Some(0),
            },
        );
        let mut wanted = Updatable::of(&body().host_config);
        wanted.restart_policy.name = "no".into();
        assert_eq!(read, wanted);
        assert!(read.changed(&wanted).is_empty());
    }

    #[test]
    fn changed_and_unset_name_the_create_body_fields() {
        let from = Updatable {
            memory: Some(64 << 20),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let to = Updatable {
            memory: Some(128 << 20),
            nano_cpus: Some(1_000_000_000),
            ..Default::default()
        };
        assert_eq!(
            from.changed(&to),
            [
                "HostConfig.Memory",
                "HostConfig.NanoCpus",
                "HostConfig.CpusetCpus"
            ]
        );
        assert_eq!(from.unset_by(&to), ["HostConfig.CpusetCpus"]);
        assert!(to.unset_by(&to).is_empty());
    }
}
