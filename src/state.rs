//! The state dir: host locks, and the record of what `start` applied.
//!
//! One lock file per serviceset serializes operations on it across
//! processes (`File::try_lock`, released by the kernel if we die). The
//! record (`<dir>/servicesets/<name>.json`, written atomically) is what
//! `stop`/`restart`/`down` use when no file is given, what `plan` compares
//! against to name changed fields, and what the daemon keeps running.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::platform::{Expanded, mask_env_entry};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot use state dir {}: {source}; pass --state-dir DIR or fix its permissions", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("timed out after {}s waiting for the lock on serviceset `{serviceset}`, held by {holder}", .waited.as_secs())]
    LockTimeout {
        serviceset: String,
        holder: String,
        waited: Duration,
    },
    #[error("the record {} is unreadable ({source}); remove it and run `telefig start` again", .path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What `start` applied, kept so later commands need no file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub serviceset: String,
    pub file: PathBuf,
    /// The `-e` values, secret-looking ones masked.
    pub variables: Vec<String>,
    pub commit: Option<String>,
    pub deploy_id: Option<String>,
    /// Seconds since the epoch.
    pub applied_at: u64,
    /// Set by `stop`: the serviceset is down on purpose.
    pub stopped: bool,
    pub expanded: Expanded,
}

impl Record {
    pub fn new(
        file: &Path,
        variables: &[(String, String)],
        expanded: &Expanded,
        commit: Option<&str>,
        deploy_id: Option<&str>,
    ) -> Record {
        Record {
            serviceset: expanded.serviceset.clone(),
            file: file.to_path_buf(),
            variables: variables
                .iter()
                .map(|(k, v)| mask_env_entry(&format!("{k}={v}")))
                .collect(),
            commit: commit.map(str::to_owned),
            deploy_id: deploy_id.map(str::to_owned),
            applied_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            stopped: false,
            expanded: expanded.clone(),
        }
    }
}

/// How many earlier records `rollback` can go back through.
const HISTORY_KEPT: usize = 5;

impl Record {
    /// Whether `other` records the same deploy (when aside), and this one is not stopped.
    pub fn same_deploy(&self, other: &Record) -> bool {
        !self.stopped
            && self.file == other.file
            && self.variables == other.variables
            && self.commit == other.commit
            && self.deploy_id == other.deploy_id
            && serde_json::to_value(&self.expanded).ok()
                == serde_json::to_value(&other.expanded).ok()
    }
}

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Held for the length of an operation; the kernel drops it if we die.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

impl StateDir {
    pub fn new(root: &Path) -> StateDir {
        StateDir {
            root: root.to_path_buf(),
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn dir(&self, sub: &str) -> Result<PathBuf, Error> {
        let dir = self.root.join(sub);
        fs::create_dir_all(&dir).map_err(Self::io(&dir))?;
        Ok(dir)
    }

    /// Take the serviceset's lock, waiting until `deadline`; `on_wait` is
    /// told who holds it, once.
    pub async fn lock(
        &self,
        serviceset: &str,
        deadline: Instant,
        on_wait: impl FnOnce(&str),
    ) -> Result<HostLock, Error> {
        let path = self.dir("locks")?.join(format!("{serviceset}.lock"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Self::io(&path))?;
        let started = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = holder(&mut file);
                    if let Some(tell) = on_wait.take() {
                        tell(&holder);
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::LockTimeout {
                            serviceset: serviceset.into(),
                            holder,
                            waited: started.elapsed(),
                        });
                    }
                    // No event announces a lock's release; a short sleep is the wait.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(fs::TryLockError::Error(e)) => return Err(Self::io(&path)(e)),
            }
        }
        let me = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(me.as_bytes()))
            .map_err(Self::io(&path))?;
        Ok(HostLock { _file: file })
    }

    fn record_path(&self, serviceset: &str) -> Result<PathBuf, Error> {
        Ok(self.dir("servicesets")?.join(format!("{serviceset}.json")))
    }

    pub fn load(&self, serviceset: &str) -> Result<Option<Record>, Error> {
        let path = self
            .root
            .join("servicesets")
            .join(format!("{serviceset}.json"));
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|source| Error::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io(&path)(e)),
        }
    }

    /// Every recorded serviceset.
    pub fn list(&self) -> Result<Vec<Record>, Error> {
        let dir = self.root.join("servicesets");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(serviceset) = name.strip_suffix(".json") {
                out.extend(self.load(serviceset)?);
            }
        }
        out.sort_by(|a, b| a.serviceset.cmp(&b.serviceset));
        Ok(out)
    }

    /// Write atomically: a temporary file, synced, then renamed over. The
    /// record it replaces goes to the history (the last few are kept).
    pub fn save(&self, record: &Record) -> Result<(), Error> {
        crate::failpoint!("before", "record", &record.serviceset);
        let path = self.record_path(&record.serviceset)?;
        if let Some(previous) = self.load(&record.serviceset)?
            && previous.applied_at != record.applied_at
        {
            self.push_history(&previous)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(record).expect("a record serializes");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(Self::io(&path))?;
        crate::failpoint!("after", "record", &record.serviceset);
        Ok(())
    }

    pub fn set_stopped(&self, serviceset: &str, stopped: bool) -> Result<(), Error> {
        match self.load(serviceset)? {
            Some(mut r) => {
                r.stopped = stopped;
                self.save(&r)
            }
            None => Ok(()),
        }
    }

    fn history_dir(&self, serviceset: &str) -> Result<PathBuf, Error> {
        self.dir(&format!("history/{serviceset}"))
    }

    fn push_history(&self, record: &Record) -> Result<(), Error> {
        let dir = self.history_dir(&record.serviceset)?;
        let path = dir.join(format!("{:020}.json", record.applied_at));
        let text = serde_json::to_vec_pretty(record).expect("a record serializes");
        fs::write(&path, text).map_err(Self::io(&path))?;
        let mut old = self.history_files(&record.serviceset)?;
        while old.len() > HISTORY_KEPT {
            let oldest = old.remove(old.len() - 1);
            let _ = fs::remove_file(oldest);
        }
        Ok(())
    }

    /// History files, newest first.
    fn history_files(&self, serviceset: &str) -> Result<Vec<PathBuf>, Error> {
        let dir = self.history_dir(serviceset)?;
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(Self::io(&dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.reverse();
        Ok(files)
    }

    /// The record applied before the current one, if kept.
    pub fn previous(&self, serviceset: &str) -> Result<Option<Record>, Error> {
        let Some(path) = self.history_files(serviceset)?.into_iter().next() else {
            return Ok(None);
        };
        let text = fs::read_to_string(&path).map_err(Self::io(&path))?;
        let record = serde_json::from_str(&text).map_err(|source| Error::Corrupt {
            path: path.clone(),
            source,
        })?;
        // Rolling back consumes it: the current record takes its place in the history.
        fs::remove_file(&path).map_err(Self::io(&path))?;
        Ok(Some(record))
    }

    pub fn remove(&self, serviceset: &str) -> Result<(), Error> {
        let path = self
            .root
            .join("servicesets")
            .join(format!("{serviceset}.json"));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Self::io(&path)(e)),
            _ => Ok(()),
        }
    }
}

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
    pub fn cron_runs(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, CronRun>> {
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

    /// Record the state of one cron entry (atomically, like the records).
    pub fn save_cron_run(&self, serviceset: &str, entry: &str, run: &CronRun) -> Result<(), Error> {
        let _guard = CRON_FILES.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.dir("cron")?.join(format!("{serviceset}.json"));
        let mut runs: std::collections::BTreeMap<String, CronRun> = fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        runs.insert(entry.to_owned(), run.clone());
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&runs).expect("cron runs serialize");
        fs::write(&tmp, text)
            .and_then(|_| fs::rename(&tmp, &path))
            .map_err(Self::io(&path))
    }
}

fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
    if text.trim().is_empty() {
        "another telefig process".into()
    } else {
        text.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "telefig-state-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn second_locker_waits_and_is_told_who_holds_it() {
        let dir = tmp();
        let state = StateDir::new(&dir);
        let first = state.lock("svc", Instant::now(), |_| {}).await.unwrap();
        let mut told = String::new();
        let err = state
            .lock("svc", Instant::now() + Duration::from_millis(200), |h| {
                told = h.to_owned()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        assert!(
            told.contains(&format!("pid {}", std::process::id())),
            "{told}"
        );
        drop(first);
        state.lock("svc", Instant::now(), |_| {}).await.unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn saving_keeps_the_previous_record_for_rollback() {
        let dir = tmp().with_extension("history");
        let state = StateDir::new(&dir);
        let expanded = Expanded {
            serviceset: "svc".into(),
            containers: vec![],
            cron: vec![],
        };
        let mut first = Record::new(Path::new("a.conf"), &[], &expanded, Some("c1"), None);
        first.applied_at = 1;
        state.save(&first).unwrap();
        let mut second = first.clone();
        second.applied_at = 2;
        second.commit = Some("c2".into());
        state.save(&second).unwrap();
        assert_eq!(
            state.load("svc").unwrap().unwrap().commit.as_deref(),
            Some("c2")
        );
        assert_eq!(
            state.previous("svc").unwrap().unwrap().commit.as_deref(),
            Some("c1")
        );
        assert!(state.previous("svc").unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }
}
