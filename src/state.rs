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

    /// Write atomically: a temporary file, synced, then renamed over.
    pub fn save(&self, record: &Record) -> Result<(), Error> {
        let path = self.record_path(&record.serviceset)?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(record).expect("a record serializes");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(Self::io(&path))
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
}
