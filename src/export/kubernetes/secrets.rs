//! Secret-looking environment values (SPEC §7: `*PASSWORD*`, `*SECRET*`,
//! `*TOKEN*`, `*KEY*`) as references to one Secret named after the
//! serviceset. The Secret lists its keys with empty values: telefig never
//! writes a secret value anywhere, so the operator fills them in.
//!
//! A key is the variable's name; when two containers give the same name
//! different values, each gets `<container>.<NAME>` instead. The values
//! are compared in memory only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, Secret, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Error;
use super::names::secret_key;
use crate::platform::{Expanded, Role, is_secret_key};

/// Where the serviceset file sets `container`'s environment: its own
/// `environment`, or for a sidecar its owner's entry for that kind.
fn place_of(expanded: &Expanded, container: &str) -> (String, String) {
    match expanded.get(container).map(|c| &c.role) {
        Some(Role::Sidecar { owner, kind }) => (owner.clone(), kind.clone()),
        _ => (container.to_owned(), "environment".to_owned()),
    }
}

/// The keys of the serviceset's Secret, decided from every container.
pub(super) struct Secrets {
    name: String,
    /// (container, variable) → key.
    keys: BTreeMap<(String, String), String>,
}

impl Secrets {
    /// The keys, or an error when two variables would share one (`MY KEY`
    /// and `MY_KEY` are both `MY_KEY`): the Secret could hold one value.
    pub(super) fn collect(expanded: &Expanded) -> Result<Secrets, Error> {
        // variable → the distinct values it has (never printed).
        let mut values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let secret_entries = || {
            expanded.containers.iter().flat_map(|c| {
                c.create.env.iter().filter_map(move |e| {
                    let (k, v) = e.split_once('=').unwrap_or((e, ""));
                    is_secret_key(k).then_some((c.name.as_str(), k, v))
                })
            })
        };
        for (_, variable, value) in secret_entries() {
            let seen = values.entry(variable).or_default();
            if !seen.contains(&value) {
                seen.push(value);
            }
        }
        let mut keys = BTreeMap::new();
        // key → the variable it stands for.
        let mut taken: BTreeMap<String, &str> = BTreeMap::new();
        for (container, variable, _) in secret_entries() {
            let key = if values[variable].len() == 1 {
                secret_key(variable)
            } else {
                secret_key(&format!("{container}.{variable}"))
            };
            match taken.get(&key) {
                Some(first) if *first != variable => {
                    return Err(Error::SecretKey {
                        at: place_of(expanded, container),
                        first: (*first).to_owned(),
                        second: variable.to_owned(),
                        key,
                    });
                }
                _ => {
                    taken.insert(key.clone(), variable);
                }
            }
            keys.insert((container.to_owned(), variable.to_owned()), key);
        }
        Ok(Secrets {
            name: expanded.serviceset.clone(),
            keys,
        })
    }

    /// `KEY=VALUE` of `container` as an environment variable: a reference
    /// to the Secret when the key looks secret, the value otherwise.
    pub(super) fn env_var(&self, container: &str, entry: &str) -> EnvVar {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        match self.keys.get(&(container.to_owned(), name.to_owned())) {
            Some(key) => EnvVar {
                name: name.to_owned(),
                value: None,
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: self.name.clone(),
                        key: key.clone(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            },
            None => EnvVar {
                name: name.to_owned(),
                value: Some(value.to_owned()),
                value_from: None,
            },
        }
    }

    /// The Secret with every key and no value; none when nothing is secret.
    pub(super) fn object(&self, metadata: ObjectMeta) -> Option<Secret> {
        if self.keys.is_empty() {
            return None;
        }
        let string_data = self
            .keys
            .values()
            .map(|key| (key.clone(), String::new()))
            .collect();
        Some(Secret {
            metadata,
            type_: Some("Opaque".into()),
            string_data: Some(string_data),
            ..Default::default()
        })
    }
}
