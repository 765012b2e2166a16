//! The deploy log (`deploys/<name>.json`): what each operation that
//! converges a serviceset did — `start` (a deploy), `rollback`, `restart`,
//! and the daemon's repairs — kept for the daemon's metrics and `events`.
//!
//! The file holds the last [`KEPT`] entries, oldest first, and running
//! totals over every entry ever finished (so the counters the daemon
//! exports never go down when an old entry leaves). Only the newest entry
//! keeps its steps (what `telefig events` shows); an operation rewrites the
//! file as it goes, under the serviceset's host lock, so the daemon can
//! follow it. No secret value is written here: steps carry names, image
//! references, gate names and times only; a failure's evidence (probe
//! outputs, the last lines of a container's output) and what an error's
//! text may bring are masked as the file is written.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

mod file;

use crate::plan::evidence::Evidence;

/// Entries kept per serviceset.
pub const KEPT: usize = 20;
/// Steps kept in the newest entry.
const STEPS_KEPT: usize = 1000;
/// Upper bounds of the gate-wait histogram's buckets, in seconds (0.1 s to
/// 10 min; a wait above the last counts only in the total).
pub const GATE_WAIT_BUCKETS: [f64; 13] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0,
];

/// What an operation was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `telefig start`: a deploy.
    Start,
    Rollback,
    Restart,
    /// The daemon bringing a serviceset back to its record.
    Repair,
}

impl Operation {
    /// A deploy in `history`'s sense: it applies a version (`start`,
    /// `rollback`), rather than bringing back the one applied.
    pub fn applies_a_version(self) -> bool {
        matches!(self, Operation::Start | Operation::Rollback)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Rollback => "rollback",
            Operation::Restart => "restart",
            Operation::Repair => "repair",
        }
    }

    /// The word its events begin with: `deploy-started`, `rollback-finished`…
    pub fn noun(self) -> &'static str {
        match self {
            Operation::Start => "deploy",
            other => other.as_str(),
        }
    }
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Failed, and what it replaced was put back.
    RolledBack,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled_back",
        }
    }
}

/// How long a container took to meet its gate, from its start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateWait {
    pub container: String,
    pub gate: String,
    pub seconds: f64,
}

/// A container a repair acted on, and why (the plan's reason code: `missing`,
/// `not_running`, …; `unhealthy` for the daemon's restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repaired {
    pub container: String,
    pub cause: String,
}

/// How a `gate-passed` step's detail begins for a `healthy` gate (the
/// journal writes `{gate} after {seconds} s`).
pub const HEALTHY_GATE_PASSED: &str = "healthy after ";

/// One thing an operation did, as `telefig events` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at_nanos: i64,
    /// pulled, created, gate-passed, gate-failed, bake-started,
    /// bake-passed, bake-failed, rolled-back, repaired.
    pub event: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One operation on the serviceset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    /// One more than the entry before it.
    pub seq: u64,
    pub operation: Operation,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub deploy_id: Option<String>,
    /// Nanoseconds since the epoch.
    pub started_at_nanos: i64,
    /// `None` while it runs (or if it was cut off: see [`DeployLog::begin`]).
    #[serde(default)]
    pub finished_at_nanos: Option<i64>,
    #[serde(default)]
    pub result: Option<Outcome>,
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    #[serde(default)]
    pub gates: Vec<GateWait>,
    /// The longest of the operation's own gate waits: `gates` without the
    /// re-gating of versions put back after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowest_gate: Option<GateWait>,
    /// Containers that did not meet their gate.
    #[serde(default)]
    pub failed: Vec<String>,
    /// Containers whose previous version was put back after a failure.
    #[serde(default)]
    pub put_back: Vec<String>,
    /// Whether every version put back met its gate again.
    #[serde(default)]
    pub rollback_passed: Option<bool>,
    /// A repair's containers and causes (`restart` by the daemon: `unhealthy`).
    #[serde(default)]
    pub repaired: Vec<Repaired>,
    /// A repair of drift: the time (ns) of the newest Docker event that
    /// made the daemon repair. `telefig events` shows the repair's events
    /// only after that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause_nanos: Option<i64>,
    /// The record it applied (`Record::seq`), when it wrote one: a `start`
    /// or `rollback` that succeeded. `history` marks by it which entry put
    /// the running version and the rollback target there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_seq: Option<u64>,
    /// What it failed with, when that was an error (a pull, a Docker call,
    /// the deadline) rather than a container: the message its caller
    /// printed. A container's failure is in `failed`, and what Docker said
    /// of it in `evidence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What Docker said of each container that failed its gate or bake:
    /// its last probe outputs and lines of output, masked by value as the
    /// file is written (`plan::evidence`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

impl Deploy {
    pub fn new(operation: Operation, started_at_nanos: i64) -> Deploy {
        Deploy {
            seq: 0,
            operation,
            commit: None,
            deploy_id: None,
            started_at_nanos,
            finished_at_nanos: None,
            result: None,
            duration_seconds: None,
            gates: Vec::new(),
            slowest_gate: None,
            failed: Vec::new(),
            put_back: Vec::new(),
            rollback_passed: None,
            repaired: Vec::new(),
            cause_nanos: None,
            record_seq: None,
            error: None,
            evidence: Vec::new(),
            steps: Vec::new(),
        }
    }

    pub fn push_step(&mut self, step: Step) {
        if self.steps.len() < STEPS_KEPT {
            self.steps.push(step);
        }
    }
}

/// Counts per label value.
pub type Counts = BTreeMap<String, u64>;

/// A histogram as Prometheus keeps it: a count per bucket (not cumulative;
/// `buckets[i]` pairs with [`GATE_WAIT_BUCKETS`]`[i]`), the total count and sum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, value: f64) {
        self.buckets.resize(GATE_WAIT_BUCKETS.len(), 0);
        if let Some(i) = GATE_WAIT_BUCKETS.iter().position(|le| value <= *le) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += value;
    }
}

/// Running totals over every finished entry, kept across the log's trimming.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// `start`s by outcome.
    #[serde(default)]
    pub deploys: Counts,
    /// Rollbacks by outcome (`succeeded`/`failed`): a `rollback`, and the
    /// putting back of a failed `start`'s previous versions.
    #[serde(default)]
    pub rollbacks: Counts,
    /// Containers repaired by the daemon, by cause.
    #[serde(default)]
    pub repairs: Counts,
    #[serde(default)]
    pub gate_wait: Histogram,
    /// When the last successful `start` finished, seconds since the epoch.
    #[serde(default)]
    pub last_success_secs: Option<i64>,
}

/// The deploy log of one serviceset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployLog {
    #[serde(default)]
    pub totals: Totals,
    /// Oldest first.
    #[serde(default)]
    pub deploys: Vec<Deploy>,
}

impl DeployLog {
    /// When each container last passed a `healthy` gate, as the steps
    /// kept (the newest entry's) tell, in ns since the epoch.
    pub fn healthy_gates_seen(&self) -> HashMap<String, i64> {
        let mut seen = HashMap::new();
        let passes = self
            .deploys
            .iter()
            .flat_map(|d| &d.steps)
            .filter(|s| s.event == "gate-passed" && s.detail.starts_with(HEALTHY_GATE_PASSED));
        for step in passes {
            let at = seen.entry(step.container.clone()).or_insert(step.at_nanos);
            *at = (*at).max(step.at_nanos);
        }
        seen
    }

    /// Add `entry` as the newest (numbered after the last). An entry left
    /// unfinished by an operation that was cut off (the caller holds the
    /// lock, so none is running) is closed as failed first; older entries
    /// drop their steps, and only the last [`KEPT`] deploys (`start`,
    /// `rollback`) and the last [`KEPT`] other entries remain: the daemon
    /// repairing a flapping container does not push the deploys out.
    pub fn begin(&mut self, mut entry: Deploy) -> u64 {
        let next = self.deploys.last().map_or(1, |d| d.seq + 1);
        let cut_off: Vec<usize> = (0..self.deploys.len())
            .filter(|i| self.deploys[*i].result.is_none())
            .collect();
        for i in cut_off {
            let mut d = self.deploys[i].clone();
            d.result = Some(Outcome::Failed);
            d.finished_at_nanos = Some(entry.started_at_nanos);
            self.count(&d);
            self.deploys[i] = d;
        }
        for d in &mut self.deploys {
            d.steps.clear();
        }
        entry.seq = next;
        self.deploys.push(entry);
        for deploys in [true, false] {
            let kind = |d: &Deploy| d.operation.applies_a_version() == deploys;
            let mut excess = self.deploys.iter().filter(|d| kind(d)).count();
            excess = excess.saturating_sub(KEPT);
            self.deploys.retain(|d| {
                let drop = excess > 0 && kind(d);
                excess -= usize::from(drop);
                !drop
            });
        }
        next
    }

    /// Replace the entry numbered `entry.seq`; when it is finished (has a
    /// result) for the first time, add it to the totals.
    pub fn update(&mut self, entry: Deploy) {
        let Some(slot) = self.deploys.iter_mut().find(|d| d.seq == entry.seq) else {
            return;
        };
        let newly_finished = slot.result.is_none() && entry.result.is_some();
        *slot = entry.clone();
        if newly_finished {
            self.count(&entry);
        }
    }

    fn count(&mut self, d: &Deploy) {
        let Some(result) = d.result else { return };
        let t = &mut self.totals;
        let bump = |counts: &mut Counts, key: &str| *counts.entry(key.to_owned()).or_default() += 1;
        let passed = |ok: bool| if ok { "succeeded" } else { "failed" };
        match d.operation {
            Operation::Start => {
                bump(&mut t.deploys, result.as_str());
                if result == Outcome::Succeeded {
                    t.last_success_secs = d.finished_at_nanos.map(|n| n / 1_000_000_000);
                }
            }
            Operation::Rollback => bump(&mut t.rollbacks, passed(result == Outcome::Succeeded)),
            Operation::Restart | Operation::Repair => {}
        }
        if let Some(ok) = d.rollback_passed
            && d.operation != Operation::Rollback
        {
            bump(&mut t.rollbacks, passed(ok));
        }
        for r in &d.repaired {
            bump(&mut t.repairs, &r.cause);
        }
        for g in &d.gates {
            t.gate_wait.observe(g.seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ServicesetName;
    use crate::state::StateDir;
    use std::fs;

    fn finished(op: Operation, result: Outcome, at: i64) -> Deploy {
        let mut d = Deploy::new(op, at);
        d.result = Some(result);
        d.finished_at_nanos = Some(at + 2_000_000_000);
        d
    }

    #[test]
    fn totals_outlive_the_entries_kept() {
        let mut log = DeployLog::default();
        for i in 0..30 {
            let result = if i % 3 == 0 {
                Outcome::RolledBack
            } else {
                Outcome::Succeeded
            };
            let seq = log.begin(Deploy::new(Operation::Start, i));
            let mut d = finished(Operation::Start, result, i * 1_000_000_000);
            d.seq = seq;
            d.rollback_passed = (result == Outcome::RolledBack).then_some(true);
            d.gates.push(GateWait {
                container: "web".into(),
                gate: "healthy".into(),
                seconds: 0.3,
            });
            log.update(d.clone());
            log.update(d); // a second update does not count twice
        }
        assert_eq!(log.deploys.len(), KEPT);
        assert_eq!(log.deploys.last().unwrap().seq, 30);
        assert_eq!(log.totals.deploys["succeeded"], 20);
        assert_eq!(log.totals.deploys["rolled_back"], 10);
        assert_eq!(log.totals.rollbacks["succeeded"], 10);
        assert_eq!(log.totals.gate_wait.count, 30);
        assert_eq!(log.totals.gate_wait.buckets[2], 30, "0.3 s is in le=0.5");
        assert_eq!(
            log.totals.last_success_secs,
            Some(31),
            "entry 29 finished at 31 s"
        );
    }

    #[test]
    fn the_last_healthy_gate_pass_of_each_container_is_read_from_the_steps() {
        let mut log = DeployLog::default();
        let mut d = Deploy::new(Operation::Start, 1);
        let step = |at, container: &str, detail: &str| Step {
            at_nanos: at,
            event: "gate-passed".into(),
            container: container.into(),
            detail: detail.into(),
        };
        d.steps = vec![
            step(5, "web", "healthy after 0.4 s"),
            step(9, "web", "healthy after 0.2 s"),
            step(7, "web-logging", "running after 0.0 s"),
            Step {
                event: "gate-failed".into(),
                ..step(11, "api", "")
            },
        ];
        log.begin(d);
        let seen = log.healthy_gates_seen();
        assert_eq!(seen, HashMap::from([("web".to_owned(), 9)]));
    }

    #[test]
    fn an_entry_cut_off_is_closed_as_failed_and_only_the_newest_keeps_steps() {
        let mut log = DeployLog::default();
        let mut first = Deploy::new(Operation::Start, 1);
        first.push_step(Step {
            at_nanos: 2,
            event: "created".into(),
            container: "web".into(),
            detail: String::new(),
        });
        log.begin(first);
        let seq = log.begin(Deploy::new(Operation::Repair, 5));
        assert_eq!(seq, 2);
        assert_eq!(log.deploys[0].result, Some(Outcome::Failed));
        assert!(log.deploys[0].steps.is_empty());
        assert_eq!(log.totals.deploys["failed"], 1);
        let mut repair = finished(Operation::Repair, Outcome::Succeeded, 5);
        repair.seq = seq;
        repair.repaired = vec![
            Repaired {
                container: "web-logging".into(),
                cause: "missing".into(),
            },
            Repaired {
                container: "web".into(),
                cause: "not_running".into(),
            },
        ];
        log.update(repair);
        assert_eq!(log.totals.repairs["missing"], 1);
        assert_eq!(log.totals.repairs["not_running"], 1);
        assert!(log.totals.last_success_secs.is_none());
    }

    /// Thirty daemon repairs after three deploys left no deploy in the log.
    #[test]
    fn repairs_do_not_push_the_deploys_out_of_the_log() {
        let mut log = DeployLog::default();
        for i in 0..3 {
            log.begin(finished(Operation::Start, Outcome::Succeeded, i));
        }
        for i in 3..33 {
            log.begin(finished(Operation::Repair, Outcome::Succeeded, i));
        }
        let count = |log: &DeployLog, op| log.deploys.iter().filter(|d| d.operation == op).count();
        assert_eq!(count(&log, Operation::Start), 3);
        assert_eq!(count(&log, Operation::Repair), KEPT);
        assert_eq!(log.deploys.last().unwrap().seq, 33);
        for i in 33..60 {
            log.begin(finished(Operation::Rollback, Outcome::Succeeded, i));
        }
        assert_eq!(count(&log, Operation::Start), 0);
        assert_eq!(count(&log, Operation::Rollback), KEPT);
        assert_eq!(count(&log, Operation::Repair), KEPT);
    }

    #[test]
    fn a_wait_beyond_the_last_bucket_counts_only_in_the_total() {
        let mut h = Histogram::default();
        h.observe(0.05);
        h.observe(900.0);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets.iter().sum::<u64>(), 1);
        assert_eq!((h.count, h.sum), (2, 900.05));
    }

    #[test]
    fn the_log_is_written_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("telefig-deploys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = StateDir::new(&dir);
        let svc = ServicesetName::parse("svc").unwrap();
        assert_eq!(state.deploy_log(&svc), DeployLog::default());
        let mut log = DeployLog::default();
        log.begin(Deploy::new(Operation::Start, 1));
        state.save_deploy_log(&svc, &log, false).unwrap();
        state.save_deploy_log(&svc, &log, true).unwrap();
        assert_eq!(state.deploy_log(&svc), log);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join("deploys/svc.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(dir).unwrap();
    }
}
