//! The value shapes the serviceset file accepts, each with its own
//! deserializer: YAML 1.1 booleans, `depends_on` (list or map), `command`
//! (string or list), `environment` (list of K=V or map), scalars taken as
//! text, durations (seconds or "10s").

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::duration;
use crate::yaml::{KeyString, Keys, Value, scalar_to_string};

/// A boolean as YAML 1.1 (which the original Python tool reads) spells it:
/// `true`/`True`, and also `yes`/`no`/`on`/`off` in any of their cases.
pub fn yaml11_bool_text(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

pub(super) fn yaml11_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    deserializer.deserialize_any(ScalarText {
        expecting: "true or false",
        floats: false,
        check: |text: String| {
            yaml11_bool_text(&text).ok_or_else(|| format!("`{text}` is not true or false"))
        },
    })
}

pub(super) fn yaml11_bool_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
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
                let (mut out, mut seen) = (DependsOn::default(), Keys::default());
                while let Some(name) = seq.next_element::<String>()? {
                    out.push(&mut seen, name, Condition::Started)?;
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut out, mut seen) = (DependsOn::default(), Keys::default());
                while let Some(KeyString(name)) = map.next_key()? {
                    let entry: Option<DependsOnEntry> = map.next_value()?;
                    let condition = entry.map(|e| e.condition).unwrap_or_default();
                    out.push(&mut seen, name, condition)?;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(DependsVisitor)
    }
}

impl DependsOn {
    fn push<E: de::Error>(
        &mut self,
        seen: &mut Keys,
        name: String,
        condition: Condition,
    ) -> Result<(), E> {
        if !seen.insert(&name) {
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
                let (mut out, mut seen) = (KeyValues::default(), Keys::default());
                while let Some(KeyValueItem(k, v)) = seq.next_element()? {
                    out.push(&mut seen, k, v)?;
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut out, mut seen) = (KeyValues::default(), Keys::default());
                while let Some(KeyString(k)) = map.next_key()? {
                    let v = map.next_value_seed(ScalarText {
                        expecting: "a plain value",
                        floats: true,
                        check: Ok,
                    })?;
                    out.push(&mut seen, k, v)?;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(PairsVisitor)
    }
}

impl KeyValues {
    fn push<E: de::Error>(&mut self, seen: &mut Keys, key: String, value: String) -> Result<(), E> {
        check_key(&key, &value).map_err(E::custom)?;
        if !seen.insert(&key) {
            return Err(E::custom(format!("duplicate key `{key}`")));
        }
        self.0.push((key, value));
        Ok(())
    }
}

/// A key is taken as written or refused: `A=B` as a key would reach Docker
/// as `A` with the value `B=…`, and no control character is a name.
fn check_key(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("an empty key before `=`".into());
    }
    if key.contains('=') {
        return Err(format!(
            "key `{}` holds `=`, which ends a key: rename it",
            key.escape_debug()
        ));
    }
    if key.chars().any(char::is_control) || key.trim() != key {
        return Err(format!(
            "key `{}` holds a control character or surrounding spaces: write a plain name",
            key.escape_debug()
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "the value of `{key}` holds a NUL character, which no environment or label can carry"
        ));
    }
    Ok(())
}

/// One `KEY=VALUE` item of a list.
struct KeyValueItem(String, String);

impl<'de> Deserialize<'de> for KeyValueItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarText {
            expecting: "a KEY=VALUE string",
            floats: true,
            check: |text: String| match text.split_once('=') {
                Some((k, v)) => Ok(KeyValueItem(k.to_owned(), v.to_owned())),
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

/// A number kept as the text it was written as (`0.5`, `2`), read exactly
/// where it is used (`cpus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberText(pub String);

impl<'de> Deserialize<'de> for NumberText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarText {
            expecting: "a number",
            floats: true,
            check: |text| Ok(NumberText(text)),
        })
    }
}

/// Integer seconds (`10`) or a duration string (`10s`, `1m30s`, `200ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor(|d| Ok(DurationValue(d))))
    }
}

/// Reads a duration and checks it with its function, inside the visitor so
/// that a bad value is reported at its line.
struct DurationVisitor<T>(fn(Duration) -> Result<T, String>);

impl<T> DurationVisitor<T> {
    fn checked<E: de::Error>(&self, d: Result<Duration, duration::Error>) -> Result<T, E> {
        d.map_err(E::custom)
            .and_then(|d| (self.0)(d).map_err(E::custom))
    }
}

impl<'de, T> Visitor<'de> for DurationVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("seconds (10) or a duration string (\"10s\", \"1m30s\", \"200ms\")")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.checked(duration::from_secs(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.checked(duration::from_secs(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.checked(duration::from_secs_f64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        self.checked(duration::parse(v))
    }
}

/// `bake_period`: how long a deploy keeps watching what it created once
/// every gate passed. At most [`BakePeriod::MAX`]: the host lock and the
/// previous versions are held for that long. A longer value is refused at
/// its line, never shortened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BakePeriod(pub Duration);

impl BakePeriod {
    pub const MAX: Duration = Duration::from_secs(3600);
}

impl<'de> Deserialize<'de> for BakePeriod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor(|d| {
            if d > BakePeriod::MAX {
                return Err(format!(
                    "bake_period {} s is longer than a deploy may bake (1 h: it holds the host lock and the previous versions); give at most 1h",
                    d.as_secs()
                ));
            }
            Ok(BakePeriod(d))
        }))
    }
}
