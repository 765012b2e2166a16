//! The last run of each cron entry, one file per serviceset, for `status`,
//! with running totals over every run, for the daemon's metrics.

use std::collections::BTreeMap;
use std::fs;

use serde::{Deserialize, Serialize};

use super::{Error, StateDir};
use crate::name::ServicesetName;
use crate::read;

/// The last run of a cron entry, as `status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CronRun {
    pub owner: String,
    pub schedule: String,
    pub running: bool,
    /// Seconds since the epoch.
    pub last_started: Option<i64>,
    pub last_finished: Option<i64>,
    pub exit_code: Option<i32>,
    /// The last lines of its output.
    pub output_tail: String,
    /// Every finished run of the entry, kept from run to run (files written
    /// before the totals existed read as zero).
    #[serde(default)]
    pub totals: CronTotals,
}

/// Running totals over an entry's finished runs: they only grow, across
/// runs and daemon restarts, so the metrics made of them are counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CronTotals {
    /// Runs that exited 0.
    #[serde(default)]
    pub succeeded: u64,
    /// Runs that exited non-zero, were killed, or could not start.
    #[serde(default)]
    pub failed: u64,
    /// The run time of every counted run, summed, in seconds.
    #[serde(default)]
    pub seconds: f64,
}

impl CronTotals {
    /// A finished run's result: `succeeded` (exit 0) or `failed`.
    pub fn result_of(exit_code: Option<i32>) -> &'static str {
        if exit_code == Some(0) {
            "succeeded"
        } else {
            "failed"
        }
    }

    /// Count a finished run: its exit code (`None`: killed by a signal) and
    /// how long it ran.
    pub fn count(&mut self, exit_code: Option<i32>, seconds: f64) {
        match Self::result_of(exit_code) {
            "succeeded" => self.succeeded += 1,
            _ => self.failed += 1,
        }
        self.seconds += seconds.max(0.0);
    }

    /// Runs counted.
    pub fn runs(&self) -> u64 {
        self.succeeded + self.failed
    }
}

/// Serializes writers of the cron files within this process.
static CRON_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl StateDir {
    /// Cron runs of every serviceset: serviceset → entry name → last run.
    pub fn cron_runs(&self) -> BTreeMap<String, BTreeMap<String, CronRun>> {
        let dir = self.root.join("cron");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Default::default();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e
                    .file_name()
                    .to_string_lossy()
                    .strip_suffix(".json")?
                    .to_owned();
                let text = read::text(&e.path(), read::STATE_CAP).ok()?;
                Some((name, serde_json::from_str(&text).ok()?))
            })
            .collect()
    }

    /// Change the stored state of one cron entry (a default one when there
    /// is none yet) with `change`, and save it (atomically and synced, like
    /// the records): a read-modify-write, so the totals carry over.
    /// Blocking: call it from `spawn_blocking` in async code.
    pub fn update_cron_run(
        &self,
        serviceset: &ServicesetName,
        entry: &str,
        change: impl FnOnce(&mut CronRun),
    ) -> Result<(), Error> {
        let _guard = CRON_FILES.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.dir("cron")?.join(format!("{serviceset}.json"));
        let mut runs: BTreeMap<String, CronRun> = read::text(&path, read::STATE_CAP)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        change(runs.entry(entry.to_owned()).or_default());
        // A run's output may print a secret value.
        let text = super::masked_json(&runs, true);
        Self::write_atomic(&path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch state dir, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn state(test: &str) -> (Scratch, StateDir) {
        let dir = std::env::temp_dir().join(format!("telefig-cron-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = StateDir::new(&dir);
        (Scratch(dir), state)
    }

    #[test]
    fn totals_count_each_finished_run_by_result() {
        let mut t = CronTotals::default();
        for (code, seconds) in [
            (Some(0), 1.5),
            (Some(3), 0.25),
            (None, 2.0),
            (Some(0), -1.0),
        ] {
            t.count(code, seconds);
        }
        assert_eq!((t.succeeded, t.failed, t.runs()), (2, 2, 4));
        assert_eq!(t.seconds, 3.75, "a negative time counts as none");
    }

    /// Each run starts a fresh record, and the totals carry over from the
    /// file (as they do across daemon restarts).
    #[test]
    fn totals_carry_over_from_run_to_run_in_the_file() {
        let (_dir, state) = state("carry");
        let shop = ServicesetName::parse("shop").unwrap();
        for code in [0, 1, 0] {
            state
                .update_cron_run(&shop, "Sweep", |run| {
                    *run = CronRun {
                        owner: "web".into(),
                        running: true,
                        last_started: Some(100),
                        totals: std::mem::take(&mut run.totals),
                        ..CronRun::default()
                    };
                })
                .unwrap();
            state
                .update_cron_run(&shop, "Sweep", |run| {
                    run.running = false;
                    run.exit_code = Some(code);
                    run.totals.count(Some(code), 0.5);
                })
                .unwrap();
        }
        let runs = state.cron_runs();
        let sweep = &runs["shop"]["Sweep"];
        assert_eq!(sweep.owner, "web");
        assert_eq!(
            sweep.totals,
            CronTotals {
                succeeded: 2,
                failed: 1,
                seconds: 1.5
            }
        );
    }

    /// A file written before the totals existed still reads, as zero totals.
    #[test]
    fn a_file_without_totals_reads_as_zero() {
        let (_dir, state) = state("old");
        let old = r#"{"Sweep": {"owner": "web", "schedule": "@hourly", "running": false,
            "last_started": 100, "last_finished": 102, "exit_code": 0, "output_tail": "ok"}}"#;
        let cron = state.dir("cron").unwrap();
        fs::write(cron.join("shop.json"), old).unwrap();
        let runs = state.cron_runs();
        let sweep = &runs["shop"]["Sweep"];
        assert_eq!(sweep.exit_code, Some(0));
        assert_eq!(sweep.totals, CronTotals::default());
        // The next run counts from zero on.
        let shop = ServicesetName::parse("shop").unwrap();
        state
            .update_cron_run(&shop, "Sweep", |run| run.totals.count(Some(0), 2.0))
            .unwrap();
        assert_eq!(state.cron_runs()["shop"]["Sweep"].totals.succeeded, 1);
    }
}
