//! Why the plan does what it does to a container: [`Reason`], data that
//! `Display` renders for people and serde for JSON, with a stable
//! [`Reason::code`] for machines; and why one is removed ([`RemoveReason`]).
//! In JSON a reason goes out as its text and its code beside it
//! ([`reason_and_code`], [`why_and_code`]).

use std::fmt;

use serde::Serialize;

use super::RunState;
use crate::platform::Updatable;

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
    /// Only settings `docker update` changes differ; `from` is what the
    /// container runs with now, which a rollback puts back.
    UpdatableChanged {
        fields: Vec<String>,
        from: Updatable,
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
    /// Created and never started: a run was interrupted between its create
    /// and its start (a dockerd restart there can leave a container no
    /// start will ever run). Recreated, the old one removed, not kept.
    NeverStarted,
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
            Reason::UpdatableChanged { fields, .. } => {
                write!(f, "changed in place, no restart: {}", fields.join(", "))
            }
            Reason::Orphan => f.write_str("no longer in the serviceset"),
            Reason::LeftoverBackup { of } => {
                write!(f, "previous version of `{of}` left by an interrupted start")
            }
            Reason::StartedTooEarly { dependency } => {
                write!(f, "started before `{dependency}` met its gate")
            }
            Reason::NeverStarted => f.write_str("created, never started (an interrupted run)"),
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
            Reason::UpdatableChanged { .. } => "updatable_changed",
            Reason::Orphan => "orphan",
            Reason::LeftoverBackup { .. } => "leftover_backup",
            Reason::Requested => "requested",
            Reason::DependencyRestarted { .. } => "dependency_restarted",
            Reason::StartedTooEarly { .. } => "started_too_early",
            Reason::NeverStarted => "never_started",
        }
    }
}

/// Why a container is removed: a start's plan removes what the serviceset
/// no longer has (its [`Reason`]: an orphan, a leftover backup); `down`
/// removes every one (a stop plan's `AfterStop::Remove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveReason {
    Planned(Reason),
    Down,
}

impl From<Reason> for RemoveReason {
    fn from(r: Reason) -> RemoveReason {
        RemoveReason::Planned(r)
    }
}

impl fmt::Display for RemoveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveReason::Planned(r) => r.fmt(f),
            RemoveReason::Down => f.write_str("down"),
        }
    }
}

impl RemoveReason {
    /// A stable machine code: the plan's [`Reason::code`], or `down`.
    pub fn code(&self) -> &'static str {
        match self {
            RemoveReason::Planned(r) => r.code(),
            RemoveReason::Down => "down",
        }
    }
}

/// For `#[serde(flatten, serialize_with = "…")]`: the reason as text under
/// `reason` (as people read it) and `reason_code` beside it.
pub fn reason_and_code<S: serde::Serializer>(r: &Reason, s: S) -> Result<S::Ok, S::Error> {
    text_and_code(s, "reason", r, r.code())
}

/// As [`reason_and_code`], the text under `why` (a progress event's key).
pub fn why_and_code<S: serde::Serializer>(r: &RemoveReason, s: S) -> Result<S::Ok, S::Error> {
    text_and_code(s, "why", r, r.code())
}

fn text_and_code<S: serde::Serializer>(
    s: S,
    key: &'static str,
    text: &dyn fmt::Display,
    code: &'static str,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry(key, &text.to_string())?;
    map.serialize_entry("reason_code", code)?;
    map.end()
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
            Reason::UpdatableChanged {
                fields: vec!["HostConfig.Memory".into()],
                from: Updatable::default(),
            },
            Reason::Orphan,
            Reason::LeftoverBackup { of: dep() },
            Reason::Requested,
            Reason::DependencyRestarted { dependency: dep() },
            Reason::StartedTooEarly { dependency: dep() },
            Reason::NeverStarted,
        ];
        for r in all {
            let json = serde_json::to_value(&r).unwrap();
            assert_eq!(json["reason"], r.code(), "{r:?}");
            let removal = RemoveReason::from(r.clone());
            assert_eq!(
                (removal.to_string(), removal.code()),
                (r.to_string(), r.code())
            );
        }
        assert_eq!(
            (
                RemoveReason::Down.to_string().as_str(),
                RemoveReason::Down.code()
            ),
            ("down", "down")
        );
    }
}
