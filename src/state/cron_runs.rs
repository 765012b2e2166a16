//! The last run of each cron entry, one file per serviceset, for `status`.

use std::collections::BTreeMap;
use std::fs;

use serde::{Deserialize, Serialize};

use super::{Error, StateDir};
use crate::name::ServicesetName;

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
                let text = fs::read_to_string(e.path()).ok()?;
                Some((name, serde_json::from_str(&text).ok()?))
            })
            .collect()
    }

    /// Record the state of one cron entry (atomically and synced, like the
    /// records). Blocking: call it from `spawn_blocking` in async code.
    pub fn save_cron_run(
        &self,
        serviceset: &ServicesetName,
        entry: &str,
        run: &CronRun,
    ) -> Result<(), Error> {
        let _guard = CRON_FILES.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.dir("cron")?.join(format!("{serviceset}.json"));
        let mut runs: BTreeMap<String, CronRun> = fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        runs.insert(entry.to_owned(), run.clone());
        let text = serde_json::to_vec_pretty(&runs).expect("cron runs serialize");
        Self::write_atomic(&path, &text)
    }
}
