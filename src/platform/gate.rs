//! The gate a dependent waits for at each edge of the graph: its
//! dependency running, healthy, or exited 0. The file says it as
//! `condition:` (`serviceset::Condition`); expansion turns that into this,
//! so `graph`, `plan` and `engine` never see the file's type.

use crate::serviceset;

/// What a dependent waits for at an edge: its dependency running, healthy
/// (Docker health, or running where there is no healthcheck), or exited 0.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    #[default]
    Started,
    Healthy,
    Completed,
}

impl Gate {
    /// The state it asks for, in words: `running`, `healthy`, `completed`.
    pub fn word(self) -> &'static str {
        match self {
            Gate::Started => "running",
            Gate::Healthy => "healthy",
            Gate::Completed => "completed",
        }
    }
}

/// The file's `condition:` as the graph's gate.
impl From<serviceset::Condition> for Gate {
    fn from(c: serviceset::Condition) -> Self {
        match c {
            serviceset::Condition::Started => Gate::Started,
            serviceset::Condition::Healthy => Gate::Healthy,
            serviceset::Condition::Completed => Gate::Completed,
        }
    }
}
