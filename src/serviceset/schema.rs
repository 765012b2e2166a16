//! The serviceset file as written: serde types that mirror the YAML.
//!
//! Nothing here decides defaults or builds containers (that is `platform`);
//! these types only accept the shapes real files use and reject everything
//! else with the parser's position. Every struct denies unknown fields, and
//! every map is a [`UniqueMap`] so a key given twice is an error.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::cron::CronEntries;
pub use super::cron::CronEntry;
pub use super::values::*;
use super::values::{yaml11_bool, yaml11_bool_opt};
use crate::yaml::{KeyString, Keys, UniqueMap, Value};

/// The whole file: `version` plus one entry per container, in file order.
#[derive(Debug, Clone, Default)]
pub struct ServicesetFile {
    pub version: Option<u64>,
    pub containers: Vec<(String, ContainerEntry)>,
}

impl<'de> Deserialize<'de> for ServicesetFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FileVisitor;
        impl<'de> Visitor<'de> for FileVisitor {
            type Value = ServicesetFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of container names to their configuration")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ServicesetFile::default())
            }
            // An empty file (or one with only comments) is an empty document;
            // `check` then says that no container is declared.
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ServicesetFile::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut file, mut seen) = (ServicesetFile::default(), Keys::default());
                while let Some(KeyString(key)) = map.next_key()? {
                    if key == "version" {
                        if file.version.is_some() {
                            return Err(de::Error::custom("duplicate key `version`"));
                        }
                        let version: u64 = map.next_value()?;
                        if version != 1 {
                            return Err(de::Error::custom(format!(
                                "unsupported serviceset version {version}: this telefig reads version 1"
                            )));
                        }
                        file.version = Some(version);
                        continue;
                    }
                    if !seen.insert(&key) {
                        return Err(de::Error::custom(format!(
                            "duplicate container `{key}`: each container is declared once"
                        )));
                    }
                    let entry: Option<ContainerEntry> = map.next_value()?;
                    file.containers.push((key, entry.unwrap_or_default()));
                }
                Ok(file)
            }
        }
        deserializer.deserialize_any(FileVisitor)
    }
}

/// One top-level entry: what configures the container (`docker`) and what
/// orchestrates it (`sidecars`, `depends_on`, `kind`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerEntry {
    #[serde(default)]
    pub docker: DockerSection,
    #[serde(default)]
    pub sidecars: Sidecars,
    #[serde(default)]
    pub depends_on: DependsOn,
    #[serde(default)]
    pub kind: ContainerKind,
    /// Drain before stop (extension): how long it keeps serving once deregistered.
    pub drain_period: Option<DurationValue>,
    /// After every gate passed, how long a deploy keeps watching it (and
    /// its sidecars) before it counts as a success.
    pub bake_period: Option<BakePeriod>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    #[default]
    Service,
    Job,
}

/// The `docker:` section; also the body of a platform sidecar template.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSection {
    pub image: Option<String>,
    pub version: Option<Scalar>,
    pub registry: Option<String>,
    pub user: Option<Scalar>,
    pub command: Option<Words>,
    pub entrypoint: Option<Words>,
    #[serde(default)]
    pub environment: KeyValues,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub tmpfs: Vec<String>,
    pub cpuset_cpus: Option<Scalar>,
    pub network_mode: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub labels: KeyValues,
    pub restart: Option<String>,
    pub mem_limit: Option<Scalar>,
    pub cpus: Option<NumberText>,
    pub working_dir: Option<String>,
    #[serde(default)]
    pub ports: Vec<Scalar>,
    pub stop_grace_period: Option<DurationValue>,
    pub stop_signal: Option<String>,
    #[serde(default, deserialize_with = "yaml11_bool_opt")]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Compose's `logging: {driver, options}`: the container's log driver.
    pub logging: Option<LoggingSection>,
    /// The cgroup the container (and, by default, its sidecars) runs under.
    pub cgroup_parent: Option<String>,
}

/// `logging: {driver: json-file, options: {max-size: 100m}}`, as in Compose.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSection {
    pub driver: Option<String>,
    #[serde(default)]
    pub options: KeyValues,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Option<Words>,
    pub interval: Option<DurationValue>,
    pub timeout: Option<DurationValue>,
    pub start_period: Option<DurationValue>,
    pub retries: Option<u32>,
    #[serde(default, deserialize_with = "yaml11_bool")]
    pub disable: bool,
}

/// `sidecars:` — kind → parameters (`knox:` with no value is allowed), and
/// `cron:` → its jobs (see [`super::cron`]).
#[derive(Debug, Clone, Default)]
pub struct Sidecars(pub Vec<(String, SidecarEntry)>);

#[derive(Debug, Clone, PartialEq)]
pub enum SidecarEntry {
    Params(UniqueMap<Value>),
    Cron(Vec<CronEntry>),
}

impl<'de> Deserialize<'de> for Sidecars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SidecarsVisitor;
        impl<'de> Visitor<'de> for SidecarsVisitor {
            type Value = Sidecars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of sidecar kinds to their parameters")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Sidecars::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, SidecarEntry)> = Vec::new();
                let mut seen = Keys::default();
                while let Some(KeyString(kind)) = map.next_key()? {
                    if !seen.insert(&kind) {
                        return Err(de::Error::custom(format!("duplicate sidecar `{kind}`")));
                    }
                    let entry = if kind == "cron" {
                        SidecarEntry::Cron(
                            map.next_value::<Option<CronEntries>>()?
                                .unwrap_or_default()
                                .0,
                        )
                    } else {
                        SidecarEntry::Params(
                            map.next_value::<Option<UniqueMap<Value>>>()?
                                .unwrap_or_default(),
                        )
                    };
                    out.push((kind, entry));
                }
                Ok(Sidecars(out))
            }
        }
        deserializer.deserialize_any(SidecarsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_on_list_and_map() {
        let list: DependsOn = crate::yaml::from_str("[a, b]").unwrap();
        assert_eq!(
            list.0,
            [
                ("a".into(), Condition::Started),
                ("b".into(), Condition::Started)
            ]
        );
        let map: DependsOn = crate::yaml::from_str(
            "a: {condition: healthy}\nb: {condition: service_completed_successfully}",
        )
        .unwrap();
        assert_eq!(
            map.0,
            [
                ("a".into(), Condition::Healthy),
                ("b".into(), Condition::Completed)
            ]
        );
    }

    #[test]
    fn yaml_1_1_booleans() {
        for (text, want) in [
            ("True", true),
            ("yes", true),
            ("off", false),
            ("false", false),
        ] {
            let hc: Healthcheck = crate::yaml::from_str(&format!("disable: {text}")).unwrap();
            assert_eq!(hc.disable, want, "{text}");
        }
        assert!(crate::yaml::from_str::<Healthcheck>("disable: maybe").is_err());
    }

    #[test]
    fn keys_are_taken_as_written_or_refused() {
        for (text, why) in [
            ("{\"A=B\": c}", "holds `=`"),
            ("[\" A=1\"]", "surrounding spaces"),
            ("[\"A \\e=1\"]", "control character"),
            ("{\"A\\tB\": 1}", "control character"),
            ("[\"=1\"]", "an empty key"),
            ("{A: \"x\\0y\"}", "NUL"),
        ] {
            let err = crate::yaml::from_str::<KeyValues>(text).unwrap_err();
            assert!(err.message.contains(why), "{text}: {err}");
        }
        let spaced: KeyValues = crate::yaml::from_str("{\"MY KEY\": 1}").unwrap();
        assert_eq!(spaced.0, [("MY KEY".into(), "1".into())]);
    }

    #[test]
    fn environment_list_and_map() {
        let list: KeyValues = crate::yaml::from_str("[A=1, B=x=y]").unwrap();
        assert_eq!(
            list.0,
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        let map: KeyValues = crate::yaml::from_str("A: 1\nB: true").unwrap();
        assert_eq!(
            map.0,
            [("A".into(), "1".into()), ("B".into(), "true".into())]
        );
    }
}
