//! The record of what `start` applied (`servicesets/<name>.json`) and its
//! history (`history/<name>/<seq>.json`): what `stop`/`restart`/`down` use
//! when no file is given, what `plan` compares against to name changed
//! fields, what the daemon keeps running, and what `rollback` goes back to.
//!
//! Each record carries a sequence number, one more than the record it
//! replaced; the history is ordered by it, so deploys within the same
//! second never overwrite each other's entry.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::secrets::conceal;
use super::{Error, StateDir};
use crate::name::ServicesetName;
use crate::platform::{Expanded, conceal_env_entry};
use crate::read;
use crate::redact::{Fingerprint, Redactor};

/// How many earlier records `rollback` can go back through.
const HISTORY_KEPT: usize = 5;

/// What `start` applied, kept so later commands need no file. Secret
/// values are kept as digests only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub serviceset: ServicesetName,
    /// Orders the history: one more than the record this one replaced.
    #[serde(default)]
    pub seq: u64,
    pub file: PathBuf,
    /// The `-e` values, secret-looking ones as digests.
    pub variables: Vec<String>,
    pub commit: Option<String>,
    pub deploy_id: Option<String>,
    /// Seconds since the epoch (for people; the order is `seq`).
    pub applied_at: u64,
    /// Set by `stop`: the serviceset is down on purpose.
    pub stopped: bool,
    pub expanded: Expanded,
    /// What finds the deploy's secret values in a text, without them: for
    /// the processes that mask without having the values (`status`,
    /// `events`, the daemon).
    #[serde(default)]
    pub secrets: Vec<Fingerprint>,
}

impl Record {
    pub fn new(
        serviceset: &ServicesetName,
        file: &Path,
        variables: &[(String, String)],
        expanded: &Expanded,
        commit: Option<&str>,
        deploy_id: Option<&str>,
    ) -> Record {
        Record {
            serviceset: serviceset.clone(),
            seq: 0,
            file: file.to_path_buf(),
            variables: variables
                .iter()
                .map(|(k, v)| {
                    let entry = conceal_env_entry(&format!("{k}={v}"));
                    expanded.secrets.conceal(&entry).into_owned()
                })
                .collect(),
            commit: commit.map(str::to_owned),
            deploy_id: deploy_id.map(str::to_owned),
            applied_at: now_secs(),
            stopped: false,
            expanded: conceal(expanded),
            secrets: expanded.secrets.fingerprints(),
        }
    }

    /// For tests (the library's own and the binary's, which see it in the
    /// `failpoints` build): the record of deploy `seq` of a serviceset with
    /// no containers, from `s.conf`, applied a minute after the one before.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn fixture(serviceset: &str, seq: u64, commit: &str, deploy_id: &str) -> Record {
        let name = ServicesetName::parse(serviceset).expect("a valid name");
        let expanded = Expanded {
            serviceset: serviceset.into(),
            ..Expanded::default()
        };
        let mut r = Record::new(
            &name,
            Path::new("s.conf"),
            &[],
            &expanded,
            Some(commit),
            Some(deploy_id),
        );
        r.seq = seq;
        r.applied_at = 1_714_600_000 + seq * 60;
        r
    }

    /// What finds the secret values of this deploy.
    pub fn redactor(&self) -> Redactor {
        Redactor::from_fingerprints(&self.secrets)
    }

    /// Whether `other` records the same deploy (when aside), and this one is not stopped.
    pub fn same_deploy(&self, other: &Record) -> bool {
        !self.stopped
            && self.file == other.file
            && self.variables == other.variables
            && self.commit == other.commit
            && self.deploy_id == other.deploy_id
            && self.expanded == other.expanded
    }
}

fn now_secs() -> u64 {
    u64::try_from(crate::clock::now_secs()).unwrap_or(0)
}

/// A history entry `rollback` is going back to; it leaves the history only
/// once the rollback succeeded ([`StateDir::rolled_back`]).
#[derive(Debug)]
pub struct HistoryEntry {
    pub record: Record,
    path: PathBuf,
}

/// Every record in the state dir, and the files that could not be read.
#[derive(Debug, Default)]
pub struct Scan {
    pub records: Vec<Record>,
    pub unreadable: Vec<Error>,
}

impl StateDir {
    fn record_path(&self, serviceset: &ServicesetName) -> PathBuf {
        self.root
            .join("servicesets")
            .join(format!("{serviceset}.json"))
    }

    /// Whether `serviceset` (a label read from Docker) has a record in this
    /// state dir. The daemon minds only those: a serviceset deployed with
    /// another state dir is that dir's daemon's to repair.
    pub fn has_record(&self, serviceset: &str) -> bool {
        ServicesetName::parse(serviceset).is_ok_and(|name| self.record_path(&name).exists())
    }

    pub fn load(&self, serviceset: &ServicesetName) -> Result<Option<Record>, Error> {
        read_record(&self.record_path(serviceset))
    }

    /// Every recorded serviceset; one unreadable record fails the whole list
    /// (use [`StateDir::scan`] to skip it instead).
    pub fn list(&self) -> Result<Vec<Record>, Error> {
        let scan = self.scan();
        match scan.unreadable.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(scan.records),
        }
    }

    /// Every readable record, sorted by name, and what could not be read.
    pub fn scan(&self) -> Scan {
        let dir = self.root.join("servicesets");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Scan::default();
        };
        let mut scan = Scan::default();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match read_record(&path) {
                Ok(Some(r)) => scan.records.push(r),
                Ok(None) => {}
                Err(e) => scan.unreadable.push(e),
            }
        }
        scan.records.sort_by(|a, b| a.serviceset.cmp(&b.serviceset));
        scan
    }

    /// Make `record` the current one, atomically and durably; the record it
    /// replaces goes to the history first (the last few are kept). Returns
    /// the sequence number it was given.
    pub fn save(&self, record: &Record) -> Result<u64, Error> {
        crate::failpoint!("before", "record", record.serviceset.as_str());
        let path = self
            .dir("servicesets")?
            .join(format!("{}.json", record.serviceset));
        let mut record = record.clone();
        let mut next = self.newest_history_seq(&record.serviceset)? + 1;
        if let Some(previous) = self.load(&record.serviceset)? {
            next = next.max(previous.seq + 1);
            self.push_history(&previous)?;
        }
        record.seq = next;
        Self::write_atomic(&path, &to_json(&record))?;
        crate::failpoint!("after", "record", record.serviceset.as_str());
        Ok(next)
    }

    /// Mark the serviceset stopped on purpose (or not), in place: the same
    /// deploy, so nothing goes to the history.
    pub fn set_stopped(&self, serviceset: &ServicesetName, stopped: bool) -> Result<(), Error> {
        match self.load(serviceset)? {
            Some(mut r) if r.stopped != stopped => {
                r.stopped = stopped;
                Self::write_atomic(&self.record_path(serviceset), &to_json(&r))
            }
            _ => Ok(()),
        }
    }

    fn history_dir(&self, serviceset: &ServicesetName) -> Result<PathBuf, Error> {
        self.dir(&format!("history/{serviceset}"))
    }

    fn push_history(&self, record: &Record) -> Result<(), Error> {
        let dir = self.history_dir(&record.serviceset)?;
        let seq = record
            .seq
            .max(self.newest_history_seq(&record.serviceset)? + 1);
        let path = dir.join(format!("{seq:020}.json"));
        Self::write_atomic(&path, &to_json(record))?;
        let old = self.history_files(&record.serviceset)?;
        for (_, oldest) in old.iter().skip(HISTORY_KEPT) {
            Self::remove_durably(oldest)?;
        }
        Ok(())
    }

    fn newest_history_seq(&self, serviceset: &ServicesetName) -> Result<u64, Error> {
        Ok(self
            .history_files(serviceset)?
            .first()
            .map_or(0, |(seq, _)| *seq))
    }

    /// History files with their sequence numbers, newest first (none, and
    /// nothing created, when there is no history).
    pub(super) fn history_files(
        &self,
        serviceset: &ServicesetName,
    ) -> Result<Vec<(u64, PathBuf)>, Error> {
        let dir = self.root.join("history").join(serviceset.as_str());
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(&dir)(e)),
        };
        let mut files: Vec<(u64, PathBuf)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
            .collect();
        files.sort();
        files.reverse();
        Ok(files)
    }

    /// The record applied before the current one, if kept. It stays in the
    /// history until [`StateDir::rolled_back`] says the rollback succeeded.
    pub fn previous(&self, serviceset: &ServicesetName) -> Result<Option<HistoryEntry>, Error> {
        let Some((_, path)) = self.history_files(serviceset)?.into_iter().next() else {
            return Ok(None);
        };
        Ok(read_record(&path)?.map(|record| HistoryEntry { record, path }))
    }

    /// Every record in the history, newest first, each one `rollback --to`
    /// may go back to (an unreadable one fails the list: a rollback must
    /// not skip the version it was asked for).
    pub fn history_entries(&self, serviceset: &ServicesetName) -> Result<Vec<HistoryEntry>, Error> {
        let mut entries = Vec::new();
        for (_, path) in self.history_files(serviceset)? {
            if let Some(record) = read_record(&path)? {
                entries.push(HistoryEntry { record, path });
            }
        }
        Ok(entries)
    }

    /// The rollback to `entry` succeeded: it becomes the current record
    /// (the one it replaces goes to the history), and leaves the history.
    /// Returns the sequence number the restored record was given.
    pub fn rolled_back(&self, entry: HistoryEntry) -> Result<u64, Error> {
        let mut restored = entry.record;
        restored.applied_at = now_secs();
        restored.stopped = false;
        let seq = self.save(&restored)?;
        Self::remove_durably(&entry.path)?;
        Ok(seq)
    }

    pub fn remove(&self, serviceset: &ServicesetName) -> Result<(), Error> {
        self.forget_noted_secrets(serviceset)?;
        Self::remove_durably(&self.record_path(serviceset))
    }
}

/// The records as the daemon's tick reads them: parsed again only when a
/// file in `servicesets/` changed (name, size or mtime), not four times a second.
#[derive(Debug, Default)]
pub struct RecordCache {
    stamp: Vec<(std::ffi::OsString, u64, Option<SystemTime>)>,
    scan: Scan,
}

impl RecordCache {
    /// The readable records, and the unreadable ones, as of now.
    pub fn get(&mut self, state: &StateDir) -> &Scan {
        let stamp = stamp(&state.root.join("servicesets"));
        if stamp != self.stamp || self.stamp.is_empty() {
            self.scan = state.scan();
            self.stamp = stamp;
        }
        &self.scan
    }
}

fn stamp(dir: &Path) -> Vec<(std::ffi::OsString, u64, Option<SystemTime>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stamp: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.file_name(), meta.len(), meta.modified().ok()))
        })
        .collect();
    stamp.sort();
    stamp
}

/// Every write conceals again, so a record written by an older telefig
/// (values in plain text) loses them the next time it is written.
fn to_json(record: &Record) -> Vec<u8> {
    let mut stored = record.clone();
    stored.expanded = conceal(&record.expanded);
    stored.variables = record
        .variables
        .iter()
        .map(|v| conceal_env_entry(v))
        .collect();
    serde_json::to_vec_pretty(&stored).expect("a record serializes")
}

pub(super) fn read_record(path: &Path) -> Result<Option<Record>, Error> {
    match read::text(path, read::STATE_CAP) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| Error::Corrupt {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateDir::io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "telefig-state-{what}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn record(commit: &str) -> Record {
        let expanded = Expanded {
            serviceset: "svc".into(),
            ..Expanded::default()
        };
        let name = ServicesetName::parse("svc").unwrap();
        Record::new(
            &name,
            Path::new("a.conf"),
            &[],
            &expanded,
            Some(commit),
            None,
        )
    }

    fn commit(r: Option<HistoryEntry>) -> Option<String> {
        r.and_then(|e| e.record.commit)
    }

    /// Deploys within one second (same `applied_at`) lost a history entry.
    #[test]
    fn three_deploys_in_one_second_keep_every_history_entry() {
        let dir = tmp("history");
        let state = StateDir::new(&dir);
        let svc = ServicesetName::parse("svc").unwrap();
        for tag in ["1", "2", "3"] {
            let mut r = record(tag);
            r.applied_at = 1_700_000_000;
            state.save(&r).unwrap();
        }
        assert_eq!(
            state.load(&svc).unwrap().unwrap().commit.as_deref(),
            Some("3")
        );
        let previous = state.previous(&svc).unwrap().unwrap();
        assert_eq!(previous.record.commit.as_deref(), Some("2"));
        // Not consumed until the rollback succeeded.
        assert_eq!(commit(state.previous(&svc).unwrap()).as_deref(), Some("2"));
        state.rolled_back(previous).unwrap();
        assert_eq!(
            state.load(&svc).unwrap().unwrap().commit.as_deref(),
            Some("2")
        );
        // The rolled-back-from record (3) is kept; 2 left the history.
        let history: Vec<String> = state
            .history_files(&svc)
            .unwrap()
            .into_iter()
            .map(|(_, p)| read_record(&p).unwrap().unwrap().commit.unwrap())
            .collect();
        assert_eq!(history, ["3", "1"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_plain_text_secret_left_by_an_older_telefig_is_concealed_when_written_again() {
        let dir = tmp("upgrade");
        let state = StateDir::new(&dir);
        let svc = ServicesetName::parse("svc").unwrap();
        let mut old = record("1");
        old.variables = vec!["API_TOKEN=plain".into()];
        let path = dir.join("servicesets/svc.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        state.save(&record("2")).unwrap();
        for (_, p) in state.history_files(&svc).unwrap() {
            assert!(!fs::read_to_string(p).unwrap().contains("plain"));
        }
        fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        state.set_stopped(&svc, true).unwrap();
        assert!(!fs::read_to_string(&path).unwrap().contains("plain"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stopping_rewrites_the_record_without_a_history_entry() {
        let dir = tmp("stopped");
        let state = StateDir::new(&dir);
        let svc = ServicesetName::parse("svc").unwrap();
        state.save(&record("1")).unwrap();
        state.set_stopped(&svc, true).unwrap();
        assert!(state.load(&svc).unwrap().unwrap().stopped);
        assert!(state.previous(&svc).unwrap().is_none());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_state_dir_is_0700_and_its_files_0600_whatever_the_umask() {
        let dir = tmp("modes");
        fs::create_dir_all(dir.join("servicesets")).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let state = StateDir::new(&dir);
        state.save(&record("1")).unwrap();
        state.save(&record("2")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("servicesets")), 0o700);
        assert_eq!(mode(&dir.join("servicesets/svc.json")), 0o600);
        assert_eq!(mode(&dir.join("history/svc")), 0o700);
        for (_, p) in state
            .history_files(&ServicesetName::parse("svc").unwrap())
            .unwrap()
        {
            assert_eq!(mode(&p), 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_cache_reads_records_again_only_when_one_changed() {
        let dir = tmp("cache");
        let state = StateDir::new(&dir);
        let svc = ServicesetName::parse("svc").unwrap();
        state.save(&record("1")).unwrap();
        let mut cache = RecordCache::default();
        assert_eq!(cache.get(&state).records[0].commit.as_deref(), Some("1"));
        let stamp = cache.stamp.clone();
        assert_eq!(cache.get(&state).records.len(), 1);
        assert_eq!(cache.stamp, stamp, "nothing changed, nothing read");
        state.set_stopped(&svc, true).unwrap();
        assert!(cache.get(&state).records[0].stopped);
        state.remove(&svc).unwrap();
        assert!(cache.get(&state).records.is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_record_is_skipped_by_scan_and_named() {
        let dir = tmp("corrupt");
        let state = StateDir::new(&dir);
        state.save(&record("1")).unwrap();
        fs::write(dir.join("servicesets/bad.json"), "{ not json").unwrap();
        let scan = state.scan();
        assert_eq!(scan.records.len(), 1);
        assert_eq!(scan.unreadable.len(), 1);
        assert!(scan.unreadable[0].to_string().contains("bad.json"));
        assert!(state.list().is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
