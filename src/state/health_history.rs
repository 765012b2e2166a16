//! The last health probe results of each container, kept by the daemon so
//! that they survive its restart (Docker keeps only the last 5).
//!
//! `<dir>/health/<container>.json`: a JSON list, bounded by the daemon.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Error, StateDir};
use crate::read;

/// Docker's container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; nothing else
/// becomes a file name here.
fn file_name(container: &str) -> Option<String> {
    let mut chars = container.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    (first_ok && rest_ok).then(|| format!("{container}.json"))
}

impl StateDir {
    /// The stored probe results of `container`, oldest first (none when
    /// missing or unreadable).
    pub fn health_history<T: DeserializeOwned>(&self, container: &str) -> Vec<T> {
        let Some(file) = file_name(container) else {
            return Vec::new();
        };
        read::text(&self.root.join("health").join(file), read::STATE_CAP)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Replace the stored probe results of `container`. Blocking. Not
    /// synced: the daemon writes these every few seconds all day, and a
    /// crash that loses the last seconds of probes loses nothing else.
    pub fn save_health_history<T: Serialize>(
        &self,
        container: &str,
        probes: &[T],
    ) -> Result<(), Error> {
        let Some(file) = file_name(container) else {
            return Ok(());
        };
        let path = self.dir("health")?.join(file);
        // A probe's output may print a secret value.
        let text = super::masked_json(&probes, false);
        Self::replace(&path, &text)
    }

    /// Forget the history of a container that is gone.
    pub fn remove_health_history(&self, container: &str) -> Result<(), Error> {
        match file_name(container) {
            Some(file) => Self::remove_durably(&self.root.join("health").join(file)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_container_names_become_files() {
        assert_eq!(file_name("web-1.a_b").as_deref(), Some("web-1.a_b.json"));
        for bad in ["", "../x", ".hidden", "a/b", "-x"] {
            assert_eq!(file_name(bad), None, "{bad}");
        }
    }
}
