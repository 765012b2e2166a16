//! What Docker reports about a container, as plain data the planner reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::platform::{
    LABEL_CONFIG_HASH, LABEL_CONTAINER, LABEL_FIXED_HASH, LABEL_SERVICESET, Updatable,
};

/// A container as one list call reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: RunState,
    pub health: Option<Health>,
    pub exit_code: Option<i64>,
    /// The settings `docker update` changes, as `inspect` reads them; only
    /// for the containers `plan::to_read` names (the list call has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updatable: Option<Updatable>,
}

impl Observed {
    pub fn serviceset(&self) -> Option<&str> {
        self.labels.get(LABEL_SERVICESET).map(String::as_str)
    }
    pub fn container(&self) -> Option<&str> {
        self.labels.get(LABEL_CONTAINER).map(String::as_str)
    }
    pub fn config_hash(&self) -> Option<&str> {
        self.labels.get(LABEL_CONFIG_HASH).map(String::as_str)
    }
    pub fn fixed_hash(&self) -> Option<&str> {
        self.labels.get(LABEL_FIXED_HASH).map(String::as_str)
    }
    /// A previous version kept aside under another name by an interrupted `start`.
    pub fn is_backup(&self) -> bool {
        self.container().is_some_and(|c| c != self.name)
    }
}

#[cfg(test)]
impl Observed {
    /// A test's container `name` as one list call reports it: id
    /// `id-<name>`, image `img`, running, these labels.
    pub(crate) fn listed(name: &str, labels: &[(&str, &str)]) -> Observed {
        Observed {
            id: format!("id-{name}"),
            name: name.into(),
            image: "img".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            state: RunState::Running,
            health: None,
            exit_code: None,
            updatable: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl RunState {
    pub fn parse(state: &str) -> RunState {
        match state {
            "created" => RunState::Created,
            "running" => RunState::Running,
            "paused" => RunState::Paused,
            "restarting" => RunState::Restarting,
            "removing" => RunState::Removing,
            "dead" => RunState::Dead,
            _ => RunState::Exited,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Restarting => "restarting",
            RunState::Removing => "removing",
            RunState::Exited => "exited",
            RunState::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// When a container reached each gate, in nanoseconds since the epoch
/// (from inspect; used only by the boot repair).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    pub started_at: Option<i64>,
    /// The end of its first passing health probe still in Docker's log.
    pub healthy_since: Option<i64>,
    pub finished_at: Option<i64>,
    pub has_healthcheck: bool,
    /// When telefig itself saw it pass its `healthy` gate (the deploy
    /// log). It counts only if it falls in this run.
    pub healthy_seen_at: Option<i64>,
}
