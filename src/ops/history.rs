//! `history`: a serviceset's deploys as `telefig history` shows them — the
//! deploy log's entries (`state::deploys`) newest first, each with what ran
//! it, its result, how long it took, its slowest gate and why it failed;
//! and, from the records, the version running and the rollback target
//! (`plan::rollback`), each marked on the entry that applied it. Reads the
//! state dir only: no lock, no Docker, nothing written.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::start::version_of;
use crate::name::ServicesetName;
use crate::plan::rollback;
use crate::state::{self, Deploy, DeployLog, GateWait, Operation, Outcome, Record, StateDir};

/// One serviceset's history.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub serviceset: String,
    /// The current record: the version running (unless `stopped`).
    pub running: Option<Version>,
    /// What plain `rollback` goes back to.
    pub rollback_target: Option<Version>,
    /// Every recorded version, the current first: what `rollback --to` may
    /// choose from (while its images are on the host).
    pub recorded: Vec<Version>,
    /// The deploy log's entries, newest first.
    pub deploys: Vec<Entry>,
}

/// A recorded version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Version {
    pub commit: Option<String>,
    pub deploy_id: Option<String>,
    /// When it was applied (RFC 3339, UTC, to the second).
    pub applied_at: String,
    /// Stopped on purpose (`telefig stop`); only the current one can be.
    pub stopped: bool,
}

/// What ran an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RanBy {
    /// `telefig start` (or `configure-serviceset`), from a hook or by hand.
    Start,
    Rollback,
    /// `telefig restart`.
    Restart,
    /// The daemon bringing the serviceset back to its record.
    DaemonRepair,
    /// The daemon restarting a container unhealthy past its budget.
    DaemonRestart,
}

impl RanBy {
    pub fn of(d: &Deploy) -> RanBy {
        match d.operation {
            Operation::Start => RanBy::Start,
            Operation::Rollback => RanBy::Rollback,
            // The daemon's restart names its cause; one by hand has none.
            Operation::Restart if d.repaired.is_empty() => RanBy::Restart,
            Operation::Restart => RanBy::DaemonRestart,
            Operation::Repair => RanBy::DaemonRepair,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RanBy::Start => "start",
            RanBy::Rollback => "rollback",
            RanBy::Restart => "restart",
            RanBy::DaemonRepair => "daemon repair",
            RanBy::DaemonRestart => "daemon restart",
        }
    }
}

/// How an operation ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    Succeeded,
    Failed,
    /// Failed, and what it replaced was put back.
    RolledBack,
    /// Still running, or cut off with nothing after it to say so.
    Unfinished,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Succeeded => "succeeded",
            Ended::Failed => "failed",
            Ended::RolledBack => "rolled back",
            Ended::Unfinished => "unfinished",
        }
    }
}

/// One entry of the deploy log.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The deploy log's number for it.
    pub seq: u64,
    pub ran_by: RanBy,
    pub commit: Option<String>,
    pub deploy_id: Option<String>,
    /// RFC 3339, UTC, to the second.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub result: Ended,
    pub duration_seconds: Option<f64>,
    pub slowest_gate: Option<GateWait>,
    pub failure_cause: Option<String>,
    /// What a daemon repair or restart acted on, and why.
    pub repaired: Vec<state::Repaired>,
    /// It applied the version running now.
    pub running: bool,
    /// It applied the version plain `rollback` goes back to.
    pub rollback_target: bool,
    #[serde(skip)]
    pub started_at_nanos: i64,
}

/// The servicesets the state dir has a record or a deploy log of, sorted.
pub fn servicesets(state: &StateDir) -> Vec<String> {
    let mut names: BTreeSet<String> = state.deploy_log_names().into_iter().collect();
    names.extend(
        state
            .scan()
            .records
            .into_iter()
            .map(|r| r.serviceset.to_string()),
    );
    names
        .into_iter()
        .filter(|n| ServicesetName::parse(n).is_ok())
        .collect()
}

/// `name`'s history from the state dir.
pub fn history(state: &StateDir, name: &ServicesetName) -> Result<History, state::Error> {
    let current = state.load(name)?;
    let earlier = state.history(name)?;
    Ok(build(
        name.as_str(),
        &state.deploy_log(name),
        current.as_ref(),
        &earlier,
    ))
}

/// The history of `serviceset` from its deploy log, its `current` record
/// and the `earlier` ones (newest first).
pub fn build(
    serviceset: &str,
    log: &DeployLog,
    current: Option<&Record>,
    earlier: &[Record],
) -> History {
    let records: Vec<&Record> = current.into_iter().chain(earlier).collect();
    let versions: Vec<rollback::Version> = records.iter().map(|r| version_of(r)).collect();
    let target = current
        .and_then(|_| rollback::decide(&versions, None, &BTreeSet::new()).ok())
        .map(|i| records[i]);
    let marked: Vec<&Record> = current.into_iter().chain(target).collect();
    let applied = applied_by(log, &marked);
    let is = |index: usize, d: &Deploy| applied.get(&d.seq) == Some(&index);
    let deploys = log
        .deploys
        .iter()
        .rev()
        .map(|d| Entry {
            seq: d.seq,
            ran_by: RanBy::of(d),
            commit: d.commit.clone(),
            deploy_id: d.deploy_id.clone(),
            started_at: rfc3339(d.started_at_nanos),
            finished_at: d.finished_at_nanos.map(rfc3339),
            result: match d.result {
                Some(Outcome::Succeeded) => Ended::Succeeded,
                Some(Outcome::Failed) => Ended::Failed,
                Some(Outcome::RolledBack) => Ended::RolledBack,
                None => Ended::Unfinished,
            },
            duration_seconds: d.duration_seconds,
            slowest_gate: slowest_gate(d),
            failure_cause: failure_cause(d),
            repaired: d.repaired.clone(),
            running: current.is_some() && is(0, d),
            rollback_target: target.is_some() && is(1, d),
            started_at_nanos: d.started_at_nanos,
        })
        .collect();
    History {
        serviceset: serviceset.to_owned(),
        running: current.map(version),
        rollback_target: target.map(version),
        recorded: records.iter().map(|r| version(r)).collect(),
        deploys,
    }
}

/// Which entry applied each of `records` (entry seq → index in `records`):
/// the one that says so, else — an entry written before entries said so —
/// the newest successful start or rollback of the same commit and deploy id.
fn applied_by(log: &DeployLog, records: &[&Record]) -> BTreeMap<u64, usize> {
    let mut applied = BTreeMap::new();
    for (index, r) in records.iter().enumerate() {
        let newest = |f: &dyn Fn(&Deploy) -> bool| log.deploys.iter().rev().find(|d| f(d));
        let entry = newest(&|d| d.record_seq == Some(r.seq)).or_else(|| {
            newest(&|d| {
                d.record_seq.is_none()
                    && d.operation.applies_a_version()
                    && d.result == Some(Outcome::Succeeded)
                    && (&d.commit, &d.deploy_id) == (&r.commit, &r.deploy_id)
                    && !applied.contains_key(&d.seq)
            })
        });
        if let Some(d) = entry {
            applied.insert(d.seq, index);
        }
    }
    applied
}

/// Why `d` failed, in words; `None` when it did not fail (or is still
/// running). The one place that reads an entry's failure: from what it
/// keeps — the error, the containers that failed, whether what they
/// replaced came back.
pub fn failure_cause(d: &Deploy) -> Option<String> {
    match d.result {
        None | Some(Outcome::Succeeded) => return None,
        Some(Outcome::Failed | Outcome::RolledBack) => {}
    }
    let mut cause = match (&d.error, d.failed.as_slice()) {
        (Some(error), _) => error.clone(),
        (None, []) if d.duration_seconds.is_none() => {
            "cut off before it finished (telefig was killed, or the host went down)".to_owned()
        }
        (None, []) => "failed".to_owned(),
        (None, failed) => format!("{} failed", failed.join(", ")),
    };
    match d.rollback_passed {
        Some(true) => cause.push_str("; the previous version was put back and passed its gate"),
        Some(false) => {
            cause.push_str("; the previous version was put back but did not pass its gate")
        }
        None => {}
    }
    Some(cause)
}

/// The entry's slowest gate; in an entry written before entries kept it,
/// the longest wait of a deploy that succeeded (in one that failed, the
/// waits include the rollback's).
fn slowest_gate(d: &Deploy) -> Option<GateWait> {
    let legacy = || {
        let waits = d.gates.iter();
        waits
            .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
            .cloned()
    };
    d.slowest_gate.clone().or_else(|| {
        (d.result == Some(Outcome::Succeeded))
            .then(legacy)
            .flatten()
    })
}

fn version(r: &Record) -> Version {
    Version {
        commit: r.commit.clone(),
        deploy_id: r.deploy_id.clone(),
        applied_at: i64::try_from(r.applied_at)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or_else(String::new, |t| t.to_string()),
        stopped: r.stopped,
    }
}

/// Nanoseconds since the epoch as RFC 3339 in UTC, to the second.
fn rfc3339(nanos: i64) -> String {
    jiff::Timestamp::from_second(nanos.div_euclid(1_000_000_000))
        .map_or_else(|_| String::new(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, commit: &str, deploy_id: &str) -> Record {
        Record::fixture("shop", seq, commit, deploy_id)
    }

    fn entry(op: Operation, commit: &str, result: Outcome, record_seq: Option<u64>) -> Deploy {
        let mut d = Deploy::new(op, 1_714_600_000_000_000_000);
        d.commit = Some(commit.into());
        d.deploy_id = Some(format!("d-{commit}"));
        d.result = Some(result);
        d.record_seq = record_seq;
        d.duration_seconds = Some(1.0);
        d
    }

    fn marks(h: &History) -> Vec<(u64, bool, bool)> {
        h.deploys
            .iter()
            .map(|e| (e.seq, e.running, e.rollback_target))
            .collect()
    }

    #[test]
    fn the_entries_that_applied_the_running_version_and_the_rollback_target_are_marked() {
        let mut log = DeployLog::default();
        for d in [
            entry(Operation::Start, "c1", Outcome::Succeeded, Some(1)),
            entry(Operation::Start, "c2", Outcome::Succeeded, Some(2)),
            entry(Operation::Start, "c3", Outcome::RolledBack, None),
            entry(Operation::Repair, "c2", Outcome::Succeeded, None),
            // Back to c1 (record 1 became record 3).
            entry(Operation::Rollback, "c1", Outcome::Succeeded, Some(3)),
        ] {
            log.begin(d);
        }
        let h = build(
            "shop",
            &log,
            Some(&record(3, "c1", "d-c1")),
            &[record(2, "c2", "d-c2")],
        );
        assert_eq!(
            marks(&h),
            [
                (5, true, false),
                (4, false, false),
                (3, false, false),
                (2, false, true),
                (1, false, false),
            ]
        );
        assert_eq!(h.deploys[0].ran_by, RanBy::Rollback);
        assert_eq!(h.deploys[1].ran_by, RanBy::DaemonRepair);
        assert_eq!(h.recorded.len(), 2);
        assert_eq!(h.rollback_target.unwrap().commit.as_deref(), Some("c2"));
    }

    /// Entries written before they named their record: the newest
    /// successful deploy of the record's commit and deploy id is marked.
    #[test]
    fn entries_that_name_no_record_are_matched_by_commit_and_deploy_id() {
        let mut log = DeployLog::default();
        for d in [
            entry(Operation::Start, "c1", Outcome::Succeeded, None),
            entry(Operation::Start, "c1", Outcome::Succeeded, None),
            entry(Operation::Start, "c2", Outcome::Failed, None),
            entry(Operation::Start, "c2", Outcome::Succeeded, None),
        ] {
            log.begin(d);
        }
        let h = build(
            "shop",
            &log,
            Some(&record(0, "c2", "d-c2")),
            &[record(0, "c1", "d-c1")],
        );
        assert_eq!(
            marks(&h),
            [
                (4, true, false),
                (3, false, false),
                (2, false, true),
                (1, false, false),
            ]
        );
    }

    #[test]
    fn the_failure_cause_is_read_from_what_the_entry_keeps() {
        let cause = |f: &dyn Fn(&mut Deploy)| {
            let mut d = Deploy::new(Operation::Start, 0);
            d.result = Some(Outcome::Failed);
            d.duration_seconds = Some(2.0);
            f(&mut d);
            failure_cause(&d)
        };
        type Edit<'a> = &'a dyn Fn(&mut Deploy);
        let cases: [(Edit, Option<&str>); 6] = [
            (&|d| d.result = Some(Outcome::Succeeded), None),
            (&|_| {}, Some("failed")),
            (
                &|d| d.error = Some("could not pull r/web:2".into()),
                Some("could not pull r/web:2"),
            ),
            (
                &|d| d.duration_seconds = None,
                Some("cut off before it finished (telefig was killed, or the host went down)"),
            ),
            (
                &|d| {
                    d.result = Some(Outcome::RolledBack);
                    d.failed = vec!["web".into(), "api".into()];
                    d.rollback_passed = Some(true);
                },
                Some("web, api failed; the previous version was put back and passed its gate"),
            ),
            (
                &|d| {
                    d.failed = vec!["web".into()];
                    d.rollback_passed = Some(false);
                },
                Some("web failed; the previous version was put back but did not pass its gate"),
            ),
        ];
        for (set, want) in cases {
            assert_eq!(cause(set).as_deref(), want);
        }
    }

    #[test]
    fn without_a_record_nothing_is_marked() {
        let mut log = DeployLog::default();
        log.begin(entry(Operation::Start, "c1", Outcome::Failed, None));
        let h = build("shop", &log, None, &[record(1, "c0", "d-c0")]);
        assert_eq!(marks(&h), [(1, false, false)]);
        assert!(h.running.is_none() && h.rollback_target.is_none());
    }
}
