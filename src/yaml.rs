//! The one place that knows which YAML library telefig uses.
//!
//! `serde_yaml` is archived; everything else goes through [`from_str`],
//! [`from_value`], [`to_string`], [`Value`] and [`UniqueMap`], so switching to a maintained
//! fork is a change to this file alone. It also owns the two things the
//! library does not do for us: reporting errors as line/column data, and
//! rejecting duplicate keys in maps (serde_yaml keeps the last one silently).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use serde_yaml::{Mapping, Value};

/// A YAML or schema error with the position the parser reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    /// 1-based line and column, when the parser knew them: for something
    /// left open (a `[`, a `{`, a quote), where it was opened.
    pub location: Option<(usize, usize)>,
    /// For something left open, where the parser gave up looking for its end.
    pub gave_up: Option<(usize, usize)>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.gave_up {
            write!(f, " (the parser gave up at line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl From<serde_yaml::Error> for YamlError {
    fn from(err: serde_yaml::Error) -> Self {
        let location = err.location().map(|l| (l.line(), l.column()));
        // serde_yaml writes " at line L column C" into its messages; we print
        // the position ourselves, in front.
        let message = strip_positions(&err.to_string());
        YamlError {
            message,
            location,
            gave_up: None,
        }
    }
}

fn strip_positions(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " at line ".len()..];
        let skip_number = |t: &str| {
            t.trim_start_matches(|c: char| c.is_ascii_digit())
                .to_owned()
        };
        let after_line = skip_number(tail);
        match after_line.strip_prefix(" column ") {
            Some(col) => {
                let after_col = skip_number(col);
                rest = &rest[rest.len() - after_col.len()..];
            }
            None => {
                out.push_str(" at line ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse YAML text straight into a typed value (keeps positions in errors).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|err| {
        let said = err.to_string();
        let mut err = YamlError::from(err);
        place_by_offset(text, &said, &mut err);
        point_at_opening(&said, &mut err);
        point_at_duplicate(text, &mut err);
        err
    })
}

/// The reader (a control character) knows only a byte offset, and
/// serde_yaml then reports line 1, column 1: turn the offset into the
/// character's own line and column.
fn place_by_offset(text: &str, said: &str, err: &mut YamlError) {
    const AT: &str = " at position ";
    let Some(at) = said.find(AT) else {
        return;
    };
    let digits = said[at + AT.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default();
    let Ok(offset) = digits.parse::<usize>() else {
        return;
    };
    let offset = (0..=offset.min(text.len()))
        .rev()
        .find(|&o| text.is_char_boundary(o))
        .unwrap_or(0);
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    err.location = Some((
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    ));
    let found = text[offset..]
        .chars()
        .next()
        .map(|c| format!(" (U+{:04X})", u32::from(c)));
    err.message = format!(
        "{}{}{}",
        &said[..at],
        found.unwrap_or_default(),
        &said[at + AT.len() + digits.len()..]
    );
}

/// libyaml places an unclosed `[`, `{` or quote where it gave up, often
/// lines later; point at where it was opened instead (its "context"),
/// keeping the give-up point as extra information.
fn point_at_opening(said: &str, err: &mut YamlError) {
    let opened = [
        ("while parsing a flow sequence", "unclosed `[`"),
        ("while parsing a flow mapping", "unclosed `{`"),
        ("while scanning a quoted scalar", "unclosed quote"),
    ];
    let Some((context, what)) = opened.into_iter().find(|(c, _)| said.contains(c)) else {
        return;
    };
    let problem = strip_positions(said.split(", while").next().unwrap_or(said));
    if context.contains("quoted") && !problem.contains("end of stream") {
        return;
    }
    let marks = positions(said);
    // serde_yaml leaves out a context position of 1:1 (as "unknown").
    let opened_at = marks.get(1).copied().unwrap_or((1, 1));
    err.gave_up = err.location;
    err.location = Some(opened_at);
    err.message = format!("{what}: {problem}");
}

/// Every "line L column C" in a serde_yaml message, in order.
fn positions(said: &str) -> Vec<(usize, usize)> {
    said.match_indices(" at line ")
        .filter_map(|(at, found)| {
            let rest = &said[at + found.len()..];
            let (line, rest) = rest.split_once(" column ")?;
            let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
            Some((line.parse().ok()?, column.parse().ok()?))
        })
        .collect()
}

/// serde_yaml places an error raised while reading a map at the map's
/// start; for a duplicate key, move it to the second occurrence of the key.
fn point_at_duplicate(text: &str, err: &mut YamlError) {
    let Some((line, _)) = err.location else {
        return;
    };
    if !err.message.contains("duplicate") {
        return;
    }
    let Some(key) = err.message.split('`').nth(1) else {
        return;
    };
    let candidates = [format!("{key}:"), format!("- {key}="), format!("- {key}:")];
    let hits: Vec<(usize, usize)> = text
        .lines()
        .enumerate()
        .skip(line.saturating_sub(1))
        .filter_map(|(i, l)| {
            let trimmed = l.trim_start();
            candidates
                .iter()
                .any(|c| trimmed.starts_with(c.as_str()))
                .then(|| (i + 1, l.len() - trimmed.len() + 1))
        })
        .collect();
    if let Some(first) = hits.first()
        && let Some(second) = hits.iter().skip(1).find(|h| h.1 == first.1)
    {
        err.location = Some(*second);
    }
}

/// Convert an already parsed [`Value`] (positions are gone by then).
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, YamlError> {
    serde_yaml::from_value(value).map_err(YamlError::from)
}

/// Print a value as YAML (for `render --format kubernetes`).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    serde_yaml::to_string(value).map_err(YamlError::from)
}

/// Render a scalar as the text a template or environment variable expects.
pub fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// A map that keeps file order and refuses a key given twice.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueMap<V>(pub Vec<(String, V)>);

impl<V> Default for UniqueMap<V> {
    fn default() -> Self {
        UniqueMap(Vec::new())
    }
}

impl<V> UniqueMap<V> {
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn into_btree(self) -> BTreeMap<String, V> {
        self.0.into_iter().collect()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueVisitor<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(UniqueMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                let mut seen = Keys::default();
                while let Some(key) = map.next_key::<KeyString>()? {
                    let key = key.0;
                    if !seen.insert(&key) {
                        return Err(de::Error::custom(format!(
                            "duplicate key `{key}`: each key may appear once in a map"
                        )));
                    }
                    let value = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(UniqueMap(entries))
            }
        }
        deserializer.deserialize_any(UniqueVisitor(PhantomData))
    }
}

/// The keys of one map seen so far, to refuse one given twice: a set, so a
/// map of n keys costs n lookups, not n²/2 comparisons.
#[derive(Debug, Default)]
pub struct Keys(HashSet<String>);

impl Keys {
    /// Whether `key` is new (and now seen).
    pub fn insert(&mut self, key: &str) -> bool {
        !self.0.contains(key) && self.0.insert(key.to_owned())
    }
}

/// A map key: YAML allows `8080:` or `true:`; telefig keys are text.
pub struct KeyString(pub String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match scalar_to_string(&value) {
            Some(s) => Ok(KeyString(s)),
            None => Err(de::Error::custom("a map key must be a plain value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_with_a_position() {
        let err = from_str::<UniqueMap<u32>>("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"), "{err:?}");
        assert_eq!(err.location.map(|l| l.0), Some(3));
    }

    #[test]
    fn positions_are_taken_out_of_messages() {
        assert_eq!(
            strip_positions("found x at line 4 column 21, while scanning at line 3 column 1"),
            "found x, while scanning"
        );
    }

    /// libyaml's reader knows only a byte offset, and serde_yaml then said
    /// 1:1 whatever the line.
    #[test]
    fn a_control_character_is_placed_at_its_own_line_and_column() {
        let err = from_str::<Value>("a: 1\nbé: \"x\u{1}\"\n").unwrap_err();
        assert_eq!(err.location, Some((2, 7)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "control characters are not allowed (U+0001)"
        );
    }

    /// Something left open is placed where it was opened, and the place
    /// where the parser gave up is kept as extra information.
    #[test]
    fn an_unclosed_bracket_brace_or_quote_is_placed_where_it_opened() {
        for (text, opened, what) in [
            (
                "a: [1, 2\nb: 3\nc: 4\n",
                (1, 4),
                "unclosed `[`: did not find expected ',' or ']'",
            ),
            (
                "x: 1\na: {b: 1, c: 2\nd: [3]\n",
                (2, 4),
                "unclosed `{`: did not find expected ',' or '}'",
            ),
            (
                "[1,\n2\n",
                (1, 1),
                "unclosed `[`: did not find expected ',' or ']'",
            ),
            (
                "a: 'abc\nb: 1\n",
                (1, 4),
                "unclosed quote: found unexpected end of stream",
            ),
        ] {
            let err = from_str::<Value>(text).unwrap_err();
            assert_eq!(err.location, Some(opened), "{text:?}: {err:?}");
            assert_eq!(err.message, what, "{text:?}");
            let (line, _) = err.gave_up.unwrap_or_else(|| panic!("{text:?}: {err:?}"));
            assert!(line > opened.0, "{text:?}: {err:?}");
            assert!(
                err.to_string().contains("(the parser gave up at line"),
                "{err}"
            );
        }
        // A quote that is closed but holds a bad escape is placed at the escape.
        let err = from_str::<Value>("a: \"x\\qy\"\n").unwrap_err();
        assert_eq!(err.gave_up, None, "{err:?}");
    }

    #[test]
    fn order_is_kept() {
        let map = from_str::<UniqueMap<u32>>("z: 1\na: 2\n").unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["z", "a"]);
    }
}
