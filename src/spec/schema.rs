//! The serviceset file as written: serde types that mirror the YAML.
//!
//! Nothing here decides defaults or builds containers (that is `platform`);
//! these types only accept the shapes real files use and reject everything
//! else with the parser's position. Every struct denies unknown fields, and
//! every map is a [`UniqueMap`] so a key given twice is an error.

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::cron::CronEntries;
pub use super::cron::CronEntry;
use crate::duration;
use crate::yaml::{KeyString, UniqueMap, Value, scalar_to_string};

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
                let mut file = ServicesetFile::default();
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
                    if file.containers.iter().any(|(k, _)| *k == key) {
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
    pub cpus: Option<f64>,
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
                while let Some(KeyString(kind)) = map.next_key()? {
                    if out.iter().any(|(k, _)| *k == kind) {
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

/// A boolean as YAML 1.1 (which the original Python tool reads) spells it:
/// `true`/`True`, and also `yes`/`no`/`on`/`off` in any of their cases.
pub fn yaml11_bool_text(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn yaml11_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    deserializer.deserialize_any(ScalarText {
        expecting: "true or false",
        floats: false,
        check: |text: String| {
            yaml11_bool_text(&text).ok_or_else(|| format!("`{text}` is not true or false"))
        },
    })
}

fn yaml11_bool_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    yaml11_bool(deserializer).map(Some)
}

/// `depends_on`: a list of names, or a map of name → `{condition: …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependsOn(pub Vec<(String, Condition)>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Condition {
    #[default]
    #[serde(rename = "started", alias = "service_started")]
    Started,
    #[serde(rename = "healthy", alias = "service_healthy")]
    Healthy,
    #[serde(rename = "completed", alias = "service_completed_successfully")]
    Completed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DependsOnEntry {
    #[serde(default)]
    condition: Condition,
}

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DependsVisitor;
        impl<'de> Visitor<'de> for DependsVisitor {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of container names, or a map of name to {condition: started|healthy|completed}")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(DependsOn::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = DependsOn::default();
                while let Some(name) = seq.next_element::<String>()? {
                    out.push(name, Condition::Started)?;
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = DependsOn::default();
                while let Some(KeyString(name)) = map.next_key()? {
                    let entry: Option<DependsOnEntry> = map.next_value()?;
                    out.push(name, entry.map(|e| e.condition).unwrap_or_default())?;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(DependsVisitor)
    }
}

impl DependsOn {
    fn push<E: de::Error>(&mut self, name: String, condition: Condition) -> Result<(), E> {
        if self.0.iter().any(|(n, _)| *n == name) {
            return Err(E::custom(format!("`{name}` is listed twice in depends_on")));
        }
        self.0.push((name, condition));
        Ok(())
    }
}

/// A command: a string split like a POSIX shell would, or a list as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Words {
    Line(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Sequence(items) => items
                .iter()
                .map(|v| {
                    scalar_to_string(v)
                        .ok_or_else(|| de::Error::custom("a command list holds plain strings"))
                })
                .collect::<Result<_, _>>()
                .map(Words::List),
            other => scalar_to_string(&other)
                .map(Words::Line)
                .ok_or_else(|| de::Error::custom("expected a string or a list of strings")),
        }
    }
}

/// `KEY=VALUE` pairs given as a list (`- K=V`) or a map (`K: V`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValues(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for KeyValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = KeyValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of KEY=VALUE or a map")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(KeyValues::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = KeyValues::default();
                while let Some(KeyValueItem(k, v)) = seq.next_element()? {
                    out.push(k, v)?;
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = KeyValues::default();
                while let Some(KeyString(k)) = map.next_key()? {
                    let v = map.next_value_seed(ScalarText {
                        expecting: "a plain value",
                        floats: true,
                        check: Ok,
                    })?;
                    out.push(k, v)?;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(PairsVisitor)
    }
}

impl KeyValues {
    fn push<E: de::Error>(&mut self, key: String, value: String) -> Result<(), E> {
        if key.is_empty() {
            return Err(E::custom("an empty key before `=`"));
        }
        if self.0.iter().any(|(k, _)| *k == key) {
            return Err(E::custom(format!("duplicate key `{key}`")));
        }
        self.0.push((key, value));
        Ok(())
    }
}

/// One `KEY=VALUE` item of a list.
struct KeyValueItem(String, String);

impl<'de> Deserialize<'de> for KeyValueItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarText {
            expecting: "a KEY=VALUE string",
            floats: true,
            check: |text: String| match text.split_once('=') {
                Some((k, v)) => Ok(KeyValueItem(k.trim().to_owned(), v.to_owned())),
                None => Err(format!("`{text}` is not KEY=VALUE: add `=` and a value")),
            },
        })
    }
}

/// A YAML scalar read as its text and checked inside the visitor, so a
/// rejected value is reported at its own line and column: an error raised
/// after the parser has returned the value points at the enclosing map.
struct ScalarText<F> {
    expecting: &'static str,
    /// Whether a floating-point number is accepted (as its YAML spelling).
    floats: bool,
    check: F,
}

impl<'de, T, F: FnOnce(String) -> Result<T, String>> Visitor<'de> for ScalarText<F> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.check)(v.to_owned()).map_err(E::custom)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        self.visit_str(if v { "true" } else { "false" })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        let text = scalar_to_string(&Value::from(v)).unwrap_or_default();
        if !self.floats {
            return Err(E::custom(format!(
                "`{text}` reads as a floating-point number; quote it to keep its exact text"
            )));
        }
        self.visit_str(&text)
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        self.visit_str("")
    }
}

impl<'de, T, F: FnOnce(String) -> Result<T, String>> de::DeserializeSeed<'de> for ScalarText<F> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Any YAML scalar, kept as text (`version: 1234` and `version: "1234"`
/// mean the same). A float is refused: `1e10` would lose its spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarText {
            expecting: "a plain value",
            floats: false,
            check: |text| Ok(Scalar(text)),
        })
    }
}

/// Integer seconds (`10`) or a duration string (`10s`, `1m30s`, `200ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Checked inside the visitor so a bad value is reported at its line.
        struct DurationVisitor;
        impl<'de> Visitor<'de> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("seconds (10) or a duration string (\"10s\", \"1m30s\", \"200ms\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                duration::from_secs(v.into())
                    .map(DurationValue)
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                duration::from_secs(v.into())
                    .map(DurationValue)
                    .map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                duration::from_secs_f64(v)
                    .map(DurationValue)
                    .map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                duration::parse(v).map(DurationValue).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
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
