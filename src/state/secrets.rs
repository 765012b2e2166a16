//! Secret values and the records: a record keeps `KEY=sha256:<hex>` for
//! every environment entry whose key looks secret (SPEC §7), and a caller
//! that must create a container from a record — `rollback`, the daemon's
//! repair of a removed container — puts the values back from candidates it
//! holds (values of the containers still running, `-e` values), matched by
//! digest. What cannot be matched is reported, never guessed.

use std::collections::HashMap;
use std::fmt;

use crate::platform::{Expanded, conceal_env_entry, is_digest, secret_digest};

/// The copy of `expanded` a record stores: secret values as digests.
pub fn conceal(expanded: &Expanded) -> Expanded {
    let mut stored = expanded.clone();
    for c in &mut stored.containers {
        c.create.env = c.create.env.iter().map(|e| conceal_env_entry(e)).collect();
    }
    stored
}

/// A container whose secret values could not be put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrestored {
    pub container: String,
    pub keys: Vec<String>,
}

impl fmt::Display for Unrestored {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "`{}`: {}", self.container, self.keys.join(", "))
    }
}

/// Replace digests in `expanded` by the candidate value with that digest.
/// Only the containers `needed` says are to be created matter; the others
/// are left as they are. Returns what could not be restored.
pub fn restore_secrets<'a>(
    expanded: &mut Expanded,
    candidates: impl IntoIterator<Item = &'a str>,
    needed: impl Fn(&str) -> bool,
) -> Vec<Unrestored> {
    let by_digest: HashMap<String, &str> = candidates
        .into_iter()
        .map(|v| (secret_digest(v), v))
        .collect();
    let mut missing = Vec::new();
    for c in expanded.containers.iter_mut().filter(|c| needed(&c.name)) {
        let mut keys = Vec::new();
        for entry in &mut c.create.env {
            let Some((key, value)) = entry.split_once('=') else {
                continue;
            };
            if !is_digest(value) {
                continue;
            }
            match by_digest.get(value) {
                Some(real) => *entry = format!("{key}={real}"),
                None => keys.push(key.to_owned()),
            }
        }
        if !keys.is_empty() {
            missing.push(Unrestored {
                container: c.name.clone(),
                keys,
            });
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::ContainerSpec;

    fn expanded(env: &[&str]) -> Expanded {
        let mut c: ContainerSpec = serde_json::from_value(serde_json::json!({
            "name": "web", "role": {"role": "main"}, "image": {"reference": "x", "sources": ["x"]},
            "depends_on": [], "health": null, "stop_grace": {"secs": 10, "nanos": 0},
            "config_hash": "h",
            "create": {"Image": "x", "Env": [], "Labels": {}, "StopTimeout": 10,
                       "HostConfig": {"NetworkMode": "host", "RestartPolicy": {"Name": "no"}}}
        }))
        .expect("a literal container");
        c.create.env = env.iter().map(|e| (*e).to_owned()).collect();
        Expanded {
            serviceset: "svc".into(),
            containers: vec![c],
            cron: vec![],
        }
    }

    #[test]
    fn secret_values_are_stored_as_digests_and_restored_by_value() {
        let real = expanded(&["API_TOKEN=s3cr3t", "HEAP=4G", "DB_PASSWORD=hunter2"]);
        let mut stored = conceal(&real);
        let text = serde_json::to_string(&stored).unwrap();
        assert!(
            !text.contains("s3cr3t") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("HEAP=4G"));
        assert!(text.contains("API_TOKEN=sha256:"));
        // Concealing twice changes nothing.
        assert_eq!(serde_json::to_string(&conceal(&stored)).unwrap(), text);
        let missing = restore_secrets(&mut stored, ["hunter2", "unrelated"], |_| true);
        assert_eq!(
            missing,
            [Unrestored {
                container: "web".into(),
                keys: vec!["API_TOKEN".into()]
            }]
        );
        let missing = restore_secrets(&mut stored, ["s3cr3t"], |_| true);
        assert!(missing.is_empty());
        assert_eq!(
            stored.containers[0].create.env,
            real.containers[0].create.env
        );
    }

    #[test]
    fn containers_not_to_be_created_need_nothing_restored() {
        let mut stored = conceal(&expanded(&["API_TOKEN=s3cr3t"]));
        assert!(restore_secrets(&mut stored, [], |name| name != "web").is_empty());
    }
}
