//! Why the plan does what it does to a container: [`Reason`], data that
//! `Display` renders for people and serde for JSON, with a stable
//! [`Reason::code`] for machines.

use std::fmt;

use serde::Serialize;

use super::RunState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Reason {
    UpToDate,
    Completed,
    /// A job still running: on a retry, its dependents wait for it to exit 0.
    JobRunning,
    Missing,
    /// `fields` is empty when no record of the previous config exists.
    ConfigChanged {
        fields: Vec<String>,
    },
    NotRunning {
        state: RunState,
        exit_code: Option<i64>,
    },
    DependencyRecreated {
        dependency: String,
    },
    Orphan,
    LeftoverBackup {
        of: String,
    },
    Requested,
    DependencyRestarted {
        dependency: String,
    },
    StartedTooEarly {
        dependency: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::UpToDate => f.write_str("up to date"),
            Reason::Completed => f.write_str("job completed"),
            Reason::JobRunning => {
                f.write_str("job still running; its dependents wait for it to exit 0")
            }
            Reason::Missing => f.write_str("no such container"),
            Reason::ConfigChanged { fields } if fields.is_empty() => {
                f.write_str("config hash changed (no record of the previous config to compare)")
            }
            Reason::ConfigChanged { fields } => write!(f, "config changed: {}", fields.join(", ")),
            Reason::NotRunning {
                state,
                exit_code: Some(code),
            } => write!(f, "{} with code {code}", state.as_str()),
            Reason::NotRunning {
                state,
                exit_code: None,
            } => f.write_str(state.as_str()),
            Reason::DependencyRecreated { dependency } => {
                write!(
                    f,
                    "waits for `{dependency}` to be healthy, which is recreated"
                )
            }
            Reason::Orphan => f.write_str("no longer in the serviceset"),
            Reason::LeftoverBackup { of } => {
                write!(f, "previous version of `{of}` left by an interrupted start")
            }
            Reason::StartedTooEarly { dependency } => {
                write!(f, "started before `{dependency}` met its gate")
            }
            Reason::Requested => f.write_str("restart requested"),
            Reason::DependencyRestarted { dependency } => {
                write!(f, "depends on `{dependency}`, which restarts")
            }
        }
    }
}

impl Reason {
    /// A stable machine code: the variant's name, as serde tags it.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::UpToDate => "up_to_date",
            Reason::Completed => "completed",
            Reason::JobRunning => "job_running",
            Reason::Missing => "missing",
            Reason::ConfigChanged { .. } => "config_changed",
            Reason::NotRunning { .. } => "not_running",
            Reason::DependencyRecreated { .. } => "dependency_recreated",
            Reason::Orphan => "orphan",
            Reason::LeftoverBackup { .. } => "leftover_backup",
            Reason::Requested => "requested",
            Reason::DependencyRestarted { .. } => "dependency_restarted",
            Reason::StartedTooEarly { .. } => "started_too_early",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_tag_serde_writes() {
        let dep = || "db".to_owned();
        let all = [
            Reason::UpToDate,
            Reason::Completed,
            Reason::JobRunning,
            Reason::Missing,
            Reason::ConfigChanged { fields: vec![] },
            Reason::NotRunning {
                state: RunState::Exited,
                exit_code: Some(1),
            },
            Reason::DependencyRecreated { dependency: dep() },
            Reason::Orphan,
            Reason::LeftoverBackup { of: dep() },
            Reason::Requested,
            Reason::DependencyRestarted { dependency: dep() },
            Reason::StartedTooEarly { dependency: dep() },
        ];
        for r in all {
            let json = serde_json::to_value(&r).unwrap();
            assert_eq!(json["reason"], r.code(), "{r:?}");
        }
    }
}
