//! What image cleanup needs from the state dir: the references telefig
//! pulled for each serviceset (`pulled/<name>.json`; an image telefig did
//! not pull is never removed), and the deploy history's records.

use std::collections::BTreeSet;
use std::fs;

use super::{Error, Record, StateDir};
use crate::name::ServicesetName;
use crate::read;

impl StateDir {
    fn pulled_path(&self, serviceset: &ServicesetName) -> Result<std::path::PathBuf, Error> {
        Ok(self.dir("pulled")?.join(format!("{serviceset}.json")))
    }

    /// References telefig pulled for `serviceset` and has not removed.
    pub fn pulled(&self, serviceset: &ServicesetName) -> Result<BTreeSet<String>, Error> {
        let path = self.pulled_path(serviceset)?;
        match read::text(&path, read::STATE_CAP) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| Error::Corrupt {
                path: path.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) => Err(Self::io(&path)(e)),
        }
    }

    /// References pulled for every serviceset but `serviceset`.
    pub fn pulled_by_others(&self, serviceset: &ServicesetName) -> Result<BTreeSet<String>, Error> {
        let dir = self.dir("pulled")?;
        let mut out = BTreeSet::new();
        for entry in fs::read_dir(&dir).map_err(Self::io(&dir))?.flatten() {
            let path = entry.path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "json") || name == serviceset.as_str() {
                continue;
            }
            if let Ok(other) = ServicesetName::parse(name) {
                out.extend(self.pulled(&other)?);
            }
        }
        Ok(out)
    }

    /// Add `added` to and drop `removed` from `serviceset`'s pulled list.
    pub fn update_pulled(
        &self,
        serviceset: &ServicesetName,
        added: impl IntoIterator<Item = String>,
        removed: &[String],
    ) -> Result<(), Error> {
        let mut set = self.pulled(serviceset)?;
        let before = set.clone();
        set.extend(added);
        set.retain(|r| !removed.contains(r));
        if set == before {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&set).expect("a set of strings serializes");
        Self::write_atomic(&self.pulled_path(serviceset)?, &bytes)
    }

    /// The history's records, newest first (unreadable ones skipped).
    pub fn history(&self, serviceset: &ServicesetName) -> Result<Vec<Record>, Error> {
        Ok(self
            .history_files(serviceset)?
            .into_iter()
            .filter_map(|(_, path)| super::record::read_record(&path).ok().flatten())
            .collect())
    }
}
