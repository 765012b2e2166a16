//! The Engine API version last agreed with each Docker endpoint, so that a
//! command need not ask dockerd before its first real call.
//!
//! `<dir>/cache/api-version.json`: `{"unix:///var/run/docker.sock": "1.41"}`.
//! Only a hint: unreadable or missing means "negotiate", and a failed write
//! is ignored (`status` may run where the state dir is read-only).

use std::collections::BTreeMap;

use super::StateDir;
use crate::read;

impl StateDir {
    /// The version remembered for `endpoint`, if any.
    pub fn api_version(&self, endpoint: &str) -> Option<String> {
        let text = read::text(&self.root.join("cache/api-version.json"), read::STATE_CAP).ok()?;
        let mut known: BTreeMap<String, String> = serde_json::from_str(&text).ok()?;
        known.remove(endpoint)
    }

    /// Remember `version` for `endpoint` (a no-op when already known).
    pub fn remember_api_version(&self, endpoint: &str, version: &str) {
        if self.api_version(endpoint).as_deref() == Some(version) {
            return;
        }
        let Ok(dir) = self.dir("cache") else { return };
        let path = dir.join("api-version.json");
        let mut known: BTreeMap<String, String> = read::text(&path, read::STATE_CAP)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        known.insert(endpoint.to_owned(), version.to_owned());
        let text = serde_json::to_vec_pretty(&known).expect("a map of strings serializes");
        // Not synced: losing it costs one round trip.
        let _ = Self::write_atomic(&path, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn remembered_per_endpoint() {
        let root = std::env::temp_dir().join(format!("telefig-api-version-{}", std::process::id()));
        let state = StateDir::new(&root);
        assert_eq!(state.api_version("unix:///a"), None);
        state.remember_api_version("unix:///a", "1.41");
        state.remember_api_version("tcp://b:2375", "1.45");
        assert_eq!(state.api_version("unix:///a").as_deref(), Some("1.41"));
        assert_eq!(state.api_version("tcp://b:2375").as_deref(), Some("1.45"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(root.join("cache/api-version.json"))
                .expect("written")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let _ = fs::remove_dir_all(&root);
    }
}
