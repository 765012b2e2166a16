//! The deploy log on disk: `deploys/<name>.json` in the state dir, read
//! whole and replaced whole (atomically; synced once an entry is finished).

use std::path::PathBuf;

use super::DeployLog;
use crate::name::ServicesetName;
use crate::read;
use crate::state::{Error, StateDir};

impl StateDir {
    fn deploy_log_path(&self, serviceset: &str) -> PathBuf {
        self.root.join("deploys").join(format!("{serviceset}.json"))
    }

    /// The deploy log of `serviceset`; empty when missing, unreadable ones
    /// included (a log is never worth failing a deploy over).
    pub fn deploy_log(&self, serviceset: &ServicesetName) -> DeployLog {
        self.read_deploy_log(serviceset.as_str())
            .unwrap_or_default()
    }

    /// The servicesets that have a deploy log, sorted.
    pub fn deploy_log_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("deploys")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| Some(e.file_name().to_str()?.strip_suffix(".json")?.to_owned()))
            .collect();
        names.sort();
        names
    }

    /// The deploy log named `serviceset`, if there is a readable one.
    pub fn read_deploy_log(&self, serviceset: &str) -> Option<DeployLog> {
        let text = read::text(&self.deploy_log_path(serviceset), read::STATE_CAP).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Replace the deploy log of `serviceset` atomically (the caller holds
    /// its lock). `durable`: also sync it to disk — for a finished entry;
    /// the steps of one in progress need not survive a crash.
    pub fn save_deploy_log(
        &self,
        serviceset: &ServicesetName,
        log: &DeployLog,
        durable: bool,
    ) -> Result<(), Error> {
        self.dir("deploys")?;
        let path = self.deploy_log_path(serviceset.as_str());
        let text = crate::state::masked_json(log, false);
        if durable {
            Self::write_atomic(&path, &text)
        } else {
            Self::replace(&path, &text)
        }
    }
}
