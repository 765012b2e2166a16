//! Secret values and the records (SPEC §7, "never stored"): a record keeps
//! `KEY=sha256:<hex>` for every environment entry whose key looks secret,
//! and every other secret value of the serviceset — in any string of a
//! container's create body (command, entrypoint, labels, another
//! environment entry, …) or of a cron command — as a placeholder
//! `<secret:sha256:<hex>>` (`crate::redact`). A caller that must create a
//! container or run a cron command from a record — `rollback`, the
//! daemon's repair of a removed container, a cron run — puts the values
//! back from candidates it holds (the values of the containers still
//! running, `-e` values), matched by digest. What cannot be matched is
//! reported, never guessed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::PathBuf;

use super::{Error, StateDir};
use crate::name::ServicesetName;
use crate::platform::{CreateBody, CronJob, Expanded, conceal_body};
use crate::redact::{self, Fingerprint, Redactor, digest, is_digest};

/// The copy of `expanded` a record stores: no secret value, only digests.
pub fn conceal(expanded: &Expanded) -> Expanded {
    let secrets = &expanded.secrets;
    let mut stored = expanded.clone();
    for c in &mut stored.containers {
        c.create = conceal_body(&c.create, secrets);
    }
    for job in &mut stored.cron {
        for word in &mut job.command {
            *word = secrets.conceal(word).into_owned();
        }
    }
    stored.secrets = Redactor::default();
    stored
}

/// A container (or cron entry) whose secret values could not be put back,
/// and where they are: environment keys, or create-body fields.
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

/// Candidate values by digest.
struct Candidates<'a>(HashMap<String, &'a str>);

impl<'a> Candidates<'a> {
    fn new(values: impl IntoIterator<Item = &'a str>) -> Self {
        Candidates(values.into_iter().map(|v| (digest(v), v)).collect())
    }

    fn get(&self, digest: &str) -> Option<&'a str> {
        self.0.get(digest).copied()
    }

    /// `text` with its placeholders put back; `None` if one is unknown.
    fn restore(&self, text: &str) -> Option<String> {
        redact::restore(text, |d| self.get(d))
            .ok()
            .map(|t| t.into_owned())
    }
}

/// Replace digests and placeholders in `expanded` by the candidate value
/// with that digest. Only the containers `needed` says are to be created
/// matter; the others are left as they are. Returns what could not be
/// restored.
pub fn restore_secrets<'a>(
    expanded: &mut Expanded,
    candidates: impl IntoIterator<Item = &'a str>,
    needed: impl Fn(&str) -> bool,
) -> Vec<Unrestored> {
    let candidates = Candidates::new(candidates);
    let mut missing = Vec::new();
    for c in expanded.containers.iter_mut().filter(|c| needed(&c.name)) {
        let keys = restore_body(&mut c.create, &candidates);
        if !keys.is_empty() {
            missing.push(Unrestored {
                container: c.name.clone(),
                keys,
            });
        }
    }
    missing
}

/// Put back what `body` keeps as digests; the environment keys and fields
/// that still hold one.
fn restore_body(body: &mut CreateBody, candidates: &Candidates) -> Vec<String> {
    let mut keys = Vec::new();
    for entry in &mut body.env {
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        let restored = if is_digest(value) {
            candidates.get(value).map(str::to_owned)
        } else if redact::has_placeholder(value) {
            candidates.restore(value)
        } else {
            continue;
        };
        match restored {
            Some(real) => *entry = format!("{key}={real}"),
            None => keys.push(key.to_owned()),
        }
    }
    let env = std::mem::take(&mut body.env);
    let serde_json::Value::Object(mut fields) =
        serde_json::to_value(&*body).expect("a create body serializes")
    else {
        unreachable!("a create body is an object")
    };
    for (field, value) in &mut fields {
        let lost = RefCell::new(false);
        redact::map_json_strings(
            value,
            true,
            &|s| match redact::restore(s, |d| candidates.get(d)) {
                Ok(restored) => restored,
                Err(_) => {
                    *lost.borrow_mut() = true;
                    std::borrow::Cow::Borrowed(s)
                }
            },
        );
        if lost.into_inner() {
            keys.push(field.clone());
        }
    }
    *body = serde_json::from_value(serde_json::Value::Object(fields))
        .expect("a create body with other text is a create body");
    body.env = env;
    keys
}

/// `job`'s command with its secret values put back from `candidates`;
/// `Err` with the job as [`Unrestored`] when one is not among them.
pub fn restore_cron_command<'a>(
    job: &CronJob,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, Unrestored> {
    let candidates = Candidates::new(candidates);
    job.command
        .iter()
        .map(|word| candidates.restore(word))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Unrestored {
            container: job.name.clone(),
            keys: vec!["command".to_owned()],
        })
}

impl StateDir {
    fn noted_secrets_path(&self, serviceset: &ServicesetName) -> PathBuf {
        self.root.join("secrets").join(format!("{serviceset}.json"))
    }

    /// Note what finds the secret values of an operation about to run,
    /// before any container holds them (`secrets/<name>.json`): the daemon
    /// masks them from then on — in its logs, its answers, the probe
    /// outputs it keeps — though the record is written only at the end.
    /// Left alone when it says the same already (a no-op start writes nothing).
    pub fn note_secrets(
        &self,
        serviceset: &ServicesetName,
        fingerprints: &[Fingerprint],
    ) -> Result<(), Error> {
        let path = self.noted_secrets_path(serviceset);
        let text = serde_json::to_vec(fingerprints).expect("fingerprints serialize");
        if crate::read::bytes(&path, crate::read::STATE_CAP).is_ok_and(|old| old == text) {
            return Ok(());
        }
        self.dir("secrets")?;
        Self::replace(&path, &text)
    }

    /// Forget what [`StateDir::note_secrets`] noted (`down`).
    pub(super) fn forget_noted_secrets(&self, serviceset: &ServicesetName) -> Result<(), Error> {
        Self::remove_durably(&self.noted_secrets_path(serviceset))
    }

    /// What finds the secret values of every serviceset recorded here (and
    /// of any operation under way), for a process that masks without
    /// having them.
    pub fn recorded_secrets(&self) -> Redactor {
        /// A record, read for its fingerprints only.
        #[derive(serde::Deserialize)]
        struct Fingerprints {
            #[serde(default)]
            secrets: Vec<Fingerprint>,
        }
        let files = |sub: &str| {
            fs::read_dir(self.root.join(sub))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| crate::read::bytes(&e.path(), crate::read::STATE_CAP).ok())
        };
        let recorded = files("servicesets")
            .filter_map(|t| serde_json::from_slice::<Fingerprints>(&t).ok())
            .map(|f| f.secrets);
        let noted = files("secrets").filter_map(|t| serde_json::from_slice(&t).ok());
        let all: Vec<Fingerprint> = recorded.chain(noted).flatten().collect();
        Redactor::from_fingerprints(&all)
    }
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
            ..Expanded::default()
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

    /// A secret value in any field, not only a secret key's: a
    /// placeholder the same candidates put back.
    #[test]
    fn secret_values_in_any_field_are_stored_as_placeholders() {
        let token = "tok-55c0e1";
        let mut real = expanded(&["API_TOKEN=tok-55c0e1", "GREETING=hi tok-55c0e1"]);
        let c = &mut real.containers[0];
        c.create.cmd = Some(vec!["run".into(), format!("--token={token}")]);
        c.create.labels.insert("auth".into(), token.into());
        real.cron.push(CronJob {
            owner: "web".into(),
            name: "ping".into(),
            schedule: "* * * * *".into(),
            command: vec!["/bin/sh".into(), "-c".into(), format!("ping {token}")],
            user: None,
            tz: None,
        });
        real.secrets = Redactor::new([token]);
        let mut stored = conceal(&real);
        let text = serde_json::to_string(&stored).unwrap();
        assert!(!text.contains(token), "{text}");
        assert!(stored.secrets.is_empty());
        assert_eq!(
            restore_cron_command(&stored.cron[0], ["other"]),
            Err(Unrestored {
                container: "ping".into(),
                keys: vec!["command".into()]
            })
        );
        assert_eq!(
            restore_cron_command(&stored.cron[0], [token]).unwrap(),
            real.cron[0].command
        );
        let missing = restore_secrets(&mut stored, ["other"], |_| true);
        assert_eq!(
            missing,
            [Unrestored {
                container: "web".into(),
                keys: vec![
                    "API_TOKEN".into(),
                    "GREETING".into(),
                    "Cmd".into(),
                    "Labels".into()
                ]
            }]
        );
        assert!(restore_secrets(&mut stored, [token], |_| true).is_empty());
        assert_eq!(stored.containers, real.containers);
    }

    #[test]
    fn noted_and_recorded_secrets_are_found_without_their_values() {
        let dir = std::env::temp_dir().join(format!("telefig-noted-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = StateDir::new(&dir);
        let name = ServicesetName::parse("svc").unwrap();
        assert!(state.recorded_secrets().is_empty());
        let mut expanded = expanded(&["API_TOKEN=recorded-1"]);
        expanded.secrets = Redactor::new(["recorded-1"]);
        let record =
            crate::state::Record::new(&name, "a.conf".as_ref(), &[], &expanded, None, None);
        state.save(&record).unwrap();
        state
            .note_secrets(&name, &Redactor::new(["under-way-2"]).fingerprints())
            .unwrap();
        let found = state.recorded_secrets();
        assert_eq!(found.values().count(), 0);
        assert_eq!(found.mask("recorded-1 under-way-2"), "<masked> <masked>");
        let mut dirs = vec![dir.clone()];
        while let Some(d) = dirs.pop() {
            for entry in fs::read_dir(d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = fs::read_to_string(&path).unwrap();
                assert!(
                    !text.contains("recorded-1") && !text.contains("under-way-2"),
                    "{}: {text}",
                    path.display()
                );
            }
        }
        state.remove(&name).unwrap();
        assert!(state.recorded_secrets().is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn containers_not_to_be_created_need_nothing_restored() {
        let mut stored = conceal(&expanded(&["API_TOKEN=s3cr3t"]));
        assert!(restore_secrets(&mut stored, [], |name| name != "web").is_empty());
    }
}
