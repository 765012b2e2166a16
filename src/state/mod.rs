//! The state dir (default `/var/lib/telefig`): what telefig keeps between
//! runs, and nothing else. It owns the files, not the decisions.
//!
//! ```text
//! <dir>/                      0700
//!   locks/<name>.lock         host lock: pid, subcommand, start time   (lock.rs)
//!   servicesets/<name>.json   the record of what `start` applied        (record.rs)
//!   history/<name>/<seq>.json earlier records, for `rollback`           (record.rs)
//!   cron/<name>.json          each cron entry's last run and totals      (cron_runs.rs)
//!   deploys/<name>.json       the last operations and their totals      (deploys.rs)
//!   health/<container>.json   its last 50 health probes (the daemon)   (health_history.rs)
//!   secrets/<name>.json       fingerprints of the deploy's secrets      (secrets.rs)
//!   daemon.sock               the daemon's live model, 0600            (daemon/socket.rs)
//!   cache/api-version.json    Engine API version per DOCKER_HOST        (api_version.rs)
//! ```
//!
//! Every directory is 0700 and every file 0600, whatever the umask. Files
//! are replaced atomically (a synced temporary file renamed over, then the
//! directory synced). No secret value is written here: a record keeps
//! digests and placeholders (`secrets.rs`), and every other file is masked
//! with what this process knows of the secrets as it is written
//! ([`masked_json`]).

mod api_version;
mod cron_runs;
mod deploys;
mod health_history;
mod images;
mod lock;
mod record;
mod secrets;

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cron_runs::{CronRun, CronTotals};
pub use deploys::{
    Deploy, DeployLog, GATE_WAIT_BUCKETS, GateWait, Histogram, Operation, Outcome, Repaired, Step,
    Totals,
};
pub use lock::HostLock;
pub use record::{HistoryEntry, Record, RecordCache, Scan};
pub use secrets::{Unrestored, restore_cron_command, restore_secrets};

use crate::name::ServicesetName;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot use state dir {}: {source}; pass --state-dir DIR or fix its permissions", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("timed out after {}s waiting for the lock on serviceset `{serviceset}`, held by {holder}", .waited.as_secs())]
    LockTimeout {
        serviceset: ServicesetName,
        holder: String,
        waited: Duration,
    },
    #[error("the record {} is unreadable ({source}); remove it and run `telefig start` again", .path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the record of serviceset `{serviceset}` keeps only digests of secret values ({}), and no container of the serviceset holds them, so telefig cannot create those containers from it; run the deploy again (`telefig start -c FILE -e KEY=VALUE …`)",
        .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    SecretsNotStored {
        serviceset: ServicesetName,
        missing: Vec<Unrestored>,
    },
}

/// Directories 0700, files 0600.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path) -> StateDir {
        StateDir {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// `<root>/<sub>`, created 0700 (the root too) if missing.
    fn dir(&self, sub: &str) -> Result<PathBuf, Error> {
        let dir = self.root.join(sub);
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(Self::io(&dir))?;
        // The umask, or an older telefig, may have left them wider.
        let mut d = dir.as_path();
        loop {
            restrict(d, DIR_MODE).map_err(Self::io(d))?;
            if d == self.root {
                break;
            }
            match d.parent() {
                Some(p) if p.starts_with(&self.root) => d = p,
                _ => break,
            }
        }
        Ok(dir)
    }

    /// Replace `path` atomically and durably: a temporary 0600 file, synced,
    /// renamed over, then the directory synced so the rename survives a crash.
    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = open_private(&tmp, true)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            sync_dir(path)
        };
        write().map_err(Self::io(path))
    }

    /// Replace `path` atomically (a temporary 0600 file renamed over), but
    /// without waiting for the disk: readers never see half a file, and a
    /// crash may lose the change.
    fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = open_private(&tmp, true)?;
            f.write_all(bytes)?;
            fs::rename(&tmp, path)
        };
        write().map_err(Self::io(path))
    }

    /// Remove `path` (absent is fine), then sync its directory.
    fn remove_durably(path: &Path) -> Result<(), Error> {
        match fs::remove_file(path) {
            Ok(()) => sync_dir(path).map_err(Self::io(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::io(path)(e)),
        }
    }
}

/// Which `.json` files of a state-dir folder changed since the last look
/// (by inode, size and mtime: files here are replaced by rename), for the
/// daemon, which follows them without reading every file every time.
/// A rename changes the folder's own mtime, so while that stays put and is
/// old enough to trust (timestamps are coarse), the files are not looked at.
#[derive(Debug, Default)]
pub struct FolderWatch {
    stamps: std::collections::BTreeMap<String, (u64, u64, Option<std::time::SystemTime>)>,
    folder: Option<(u64, std::time::SystemTime)>,
}

/// How old a folder's mtime must be before an unchanged one is trusted to
/// mean that nothing in it changed.
const FOLDER_SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

impl FolderWatch {
    /// The stems of the files of `<root>/<sub>` added or changed since the
    /// last call, and of those removed. Blocking.
    pub fn changed(&mut self, state: &StateDir, sub: &str) -> (Vec<String>, Vec<String>) {
        use std::os::unix::fs::MetadataExt;
        let dir = state.root.join(sub);
        let folder = fs::metadata(&dir)
            .ok()
            .and_then(|m| Some((m.ino(), m.modified().ok()?)));
        let settled =
            folder.is_some_and(|(_, mtime)| mtime.elapsed().is_ok_and(|age| age >= FOLDER_SETTLED));
        if settled && folder == self.folder {
            return (Vec::new(), Vec::new());
        }
        self.folder = folder;
        let mut now = std::collections::BTreeMap::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                    continue;
                };
                if let Ok(m) = e.metadata() {
                    now.insert(stem.to_owned(), (m.ino(), m.len(), m.modified().ok()));
                }
            }
        }
        let changed = now
            .iter()
            .filter(|(k, v)| self.stamps.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        let removed = self
            .stamps
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        self.stamps = now;
        (changed, removed)
    }
}

/// `value` as JSON, with every secret value this process knows of
/// (`crate::redact::current`) masked in its strings: the text of an error,
/// a container's output or a probe's may hold one, whatever field it is in.
fn masked_json<T: serde::Serialize>(value: &T, pretty: bool) -> Vec<u8> {
    let mut json = serde_json::to_value(value).expect("state serializes");
    crate::redact::current().mask_json(&mut json, false);
    let written = if pretty {
        serde_json::to_vec_pretty(&json)
    } else {
        serde_json::to_vec(&json)
    };
    written.expect("JSON serializes")
}

/// Open (creating) a file that only its owner may read, whatever the umask.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(truncate)
        .read(true)
        .write(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = fs::metadata(path)?.permissions().mode() & 0o7777;
    if current != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn age(dir: &Path, to: SystemTime) {
        File::open(dir).unwrap().set_modified(to).unwrap();
    }

    #[test]
    fn a_folder_watch_sees_renames_and_skips_a_settled_folder() {
        let root = std::env::temp_dir().join(format!("telefig-watch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("deploys");
        fs::create_dir_all(&dir).unwrap();
        let state = StateDir::new(&root);
        let mut watch = FolderWatch::default();
        let old = SystemTime::now() - Duration::from_secs(60);
        StateDir::replace(&dir.join("a.json"), b"1").unwrap();
        assert_eq!(watch.changed(&state, "deploys"), (vec!["a".into()], vec![]));
        // Fresh mtime: looked at again, nothing changed.
        assert_eq!(watch.changed(&state, "deploys"), (vec![], vec![]));

        // A replacement by rename moves the folder's mtime: seen, even
        // right after an old, settled stamp.
        age(&dir, old);
        assert_eq!(watch.changed(&state, "deploys"), (vec![], vec![]));
        StateDir::replace(&dir.join("a.json"), b"22").unwrap();
        StateDir::replace(&dir.join("b.json"), b"3").unwrap();
        assert_eq!(
            watch.changed(&state, "deploys"),
            (vec!["a".into(), "b".into()], vec![])
        );
        fs::remove_file(dir.join("b.json")).unwrap();
        assert_eq!(watch.changed(&state, "deploys"), (vec![], vec!["b".into()]));

        // Settled and unchanged: the files are not read at all (an in-place
        // write, which telefig never does, goes unseen).
        age(&dir, old);
        assert_eq!(watch.changed(&state, "deploys"), (vec![], vec![]));
        fs::write(dir.join("a.json"), b"4444").unwrap();
        age(&dir, old);
        assert_eq!(watch.changed(&state, "deploys"), (vec![], vec![]));
        let _ = fs::remove_dir_all(&root);
    }
}
