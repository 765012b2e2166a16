//! What a start did, for people and machines: the events reported as they
//! happen, and the report at the end (one entry per action, the failure in
//! one line).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::NodeResult;
use crate::engine::pull::Pulled;
use crate::plan::evidence::Evidence;
use crate::plan::{self, ActionKind, Plan, Reason, RemoveReason};

/// Progress, reported as it happens.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Pulled(Pulled),
    /// In JSON, `why` as text and `reason_code`, as a report's reason.
    Removed {
        container: String,
        #[serde(flatten, serialize_with = "plan::why_and_code")]
        why: RemoveReason,
    },
    Stopped {
        container: String,
    },
    /// Waited before the stop (or not: `--no-drain`).
    Drained {
        container: String,
        millis: u128,
        outcome: crate::engine::drain::DrainOutcome,
    },
    /// The previous version, stopped and renamed, kept until its successor passes.
    KeptAside {
        container: String,
        aside: String,
    },
    Created {
        container: String,
    },
    /// Its settings changed in place (`docker update`), without a restart.
    Updated {
        container: String,
    },
    Started {
        container: String,
    },
    Passed {
        container: String,
        gate: &'static str,
        millis: u128,
    },
    Failed {
        container: String,
        why: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        evidence: Option<Box<Evidence>>,
    },
    /// Every gate passed; what was created is watched for `millis`.
    BakeStarted {
        containers: Vec<String>,
        millis: u128,
    },
    BakePassed {
        millis: u128,
    },
    /// A watched container failed the bake (`why`: what happened); the
    /// deploy fails as with a failed gate.
    BakeFailed {
        container: String,
        why: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        evidence: Option<Box<Evidence>>,
    },
    /// The version kept aside has its name back (its gate is waited for next).
    PutBack {
        container: String,
    },
    RolledBack {
        container: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Unchanged,
    Created,
    Recreated,
    Updated,
    Started,
    Restarted,
    Removed,
    Failed,
    RolledBack,
    NotStarted,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    pub container: String,
    pub action: ActionKind,
    /// The plan's reason; in JSON, `reason` as text (as people read it)
    /// and `reason_code`, stable for machines.
    #[serde(flatten, serialize_with = "plan::reason_and_code")]
    pub reason: Reason,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_gate_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub serviceset: String,
    pub pulled: Vec<Pulled>,
    pub containers: Vec<ContainerReport>,
    /// A one-line summary of what failed, if anything did.
    pub failure: Option<String>,
    /// What Docker said of each failed container, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Every failure was the kind a fresh plan may fix (see `NodeResult`).
    #[serde(skip)]
    pub retryable: bool,
}

/// The failed containers, each with why, in one line.
pub(super) fn failure(results: &HashMap<String, NodeResult>) -> Option<String> {
    let mut failed: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| match r {
            NodeResult::Failed { why, .. } => Some(format!("{n}: {why}")),
            _ => None,
        })
        .collect();
    failed.sort();
    (!failed.is_empty()).then(|| failed.join("; "))
}

/// The evidence of every failed container, by name.
pub(super) fn evidence(results: &HashMap<String, NodeResult>) -> Vec<Evidence> {
    let mut all: Vec<Evidence> = results
        .values()
        .filter_map(|r| match r {
            NodeResult::Failed {
                evidence: Some(e), ..
            } => Some((**e).clone()),
            _ => None,
        })
        .collect();
    all.sort_by(|a, b| a.container.cmp(&b.container));
    all
}

/// Something failed, and every failure was the kind a fresh plan may fix.
pub(super) fn retryable(results: &HashMap<String, NodeResult>) -> bool {
    let failed = || {
        results
            .values()
            .filter(|r| matches!(r, NodeResult::Failed { .. }))
    };
    failed().next().is_some()
        && failed().all(|r| {
            matches!(
                r,
                NodeResult::Failed {
                    retryable: true,
                    ..
                }
            )
        })
}

/// One entry per action, in the plan's order.
pub(super) fn containers(
    plan: &Plan,
    results: &HashMap<String, NodeResult>,
    rolled_back: &HashSet<String>,
) -> Vec<ContainerReport> {
    plan.actions
        .iter()
        .map(|a| {
            let (outcome, millis, error) = match (a.action, results.get(&a.container)) {
                (ActionKind::Remove, _) => (Outcome::Removed, None, None),
                (_, _) if rolled_back.contains(&a.container) => (Outcome::RolledBack, None, None),
                (_, Some(NodeResult::Failed { why, .. })) => {
                    (Outcome::Failed, None, Some(why.clone()))
                }
                (kind, Some(NodeResult::Passed { millis, .. })) => {
                    (passed_outcome(kind), Some(*millis), None)
                }
                (_, None) => (Outcome::NotStarted, None, None),
            };
            ContainerReport {
                container: a.container.clone(),
                action: a.action,
                reason: a.reason.clone(),
                outcome,
                time_to_gate_ms: millis,
                error,
            }
        })
        .collect()
}

fn passed_outcome(kind: ActionKind) -> Outcome {
    match kind {
        ActionKind::Keep => Outcome::Unchanged,
        ActionKind::Create => Outcome::Created,
        ActionKind::Recreate => Outcome::Recreated,
        ActionKind::Start => Outcome::Started,
        ActionKind::Restart => Outcome::Restarted,
        ActionKind::Remove => Outcome::Removed,
        ActionKind::Update => Outcome::Updated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--json` consumers read `reason` as text; the code sits beside it.
    #[test]
    fn a_container_report_serializes_its_reason_as_text_and_code() {
        let r = ContainerReport {
            container: "web".into(),
            action: ActionKind::Recreate,
            reason: Reason::ConfigChanged {
                fields: vec!["env".into()],
            },
            outcome: Outcome::Recreated,
            time_to_gate_ms: Some(12),
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"container":"web","action":"recreate","reason":"config changed: env","reason_code":"config_changed","outcome":"recreated","time_to_gate_ms":12}"#
        );
    }

    /// A removal's event line keeps its `why` text; the code sits beside
    /// it, as in the report.
    #[test]
    fn a_removal_event_serializes_its_reason_as_text_and_code() {
        let removed = |why: RemoveReason| {
            serde_json::to_string(&Event::Removed {
                container: "old".into(),
                why,
            })
            .unwrap()
        };
        assert_eq!(
            removed(Reason::Orphan.into()),
            r#"{"event":"removed","container":"old","why":"no longer in the serviceset","reason_code":"orphan"}"#
        );
        assert_eq!(
            removed(RemoveReason::Down),
            r#"{"event":"removed","container":"old","why":"down","reason_code":"down"}"#
        );
    }
}
