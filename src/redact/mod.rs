//! Secret values, and keeping them out of everything telefig writes
//! (SPEC §7: "redacted by value", "never stored").
//!
//! A value is secret when the variable holding it is: a template variable
//! whose name [looks secret](looks_secret) or that the platform file lists
//! under `secrets:`, a sidecar parameter whose name looks secret, or a
//! container environment entry whose key looks secret. A [`Redactor`]
//! holds the secret values of a run — built once, where the variables are
//! known (`platform::expand`) — and replaces each of them by [`MASK`]
//! wherever it appears, by value and not by field: the template decides
//! where a value goes, not telefig. Values shorter than
//! [`MIN_SECRET_LEN`] are not looked for (masking `1` would mask every
//! `1` of every line, and `true` or `main` would mask telefig's own
//! words); they stay masked where their key says so.
//!
//! A process that does not have the values (`status`, `events`, the
//! daemon) masks by [`Fingerprint`]: a value's length, a weak rolling
//! hash to find candidates fast, and its SHA-256 to confirm them. Records
//! keep the fingerprints, never the values; a value inside a stored string
//! becomes a [placeholder](placeholder) that carries its digest, which a
//! caller holding the value can put back ([`restore`]).
//!
//! The edges apply the process's redactor ([`learn`], [`current`]): the
//! CLI's stdout and stderr and its error messages, the tracing subscriber
//! ([`Writer`]), the state dir's writers and the daemon's socket. Nothing
//! between them needs to remember to mask.

mod edge;
mod fingerprint;
mod stored;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

pub use edge::{Writer, current, learn};
pub use fingerprint::Fingerprint;
use fingerprint::find_by_fingerprint;
pub use stored::{DIGEST_PREFIX, digest, has_placeholder, is_digest, placeholder, restore};
use stored::{PLACEHOLDER_CLOSE, PLACEHOLDER_OPEN, Piece, pieces};

/// What a secret value is replaced by in output.
pub const MASK: &str = "<masked>";

/// The shortest value looked for by value. Shorter ones are ordinary words
/// and numbers of the output: they are masked only by position (a secret
/// environment key's value).
pub const MIN_SECRET_LEN: usize = 6;

/// Whether a variable or environment key of this name holds a secret:
/// it contains PASSWORD, SECRET, TOKEN or KEY, in any case (SPEC §7).
pub fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY"]
        .iter()
        .any(|w| name.contains(w))
}

/// The secret values of a run (or their fingerprints), and the masking and
/// concealing of text with them. Cheap to clone; its debug output shows
/// counts, never a value.
#[derive(Clone, Default)]
pub struct Redactor(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Distinct values of at least [`MIN_SECRET_LEN`], longest first.
    values: Vec<String>,
    /// The values and the forms they take when escaped (in JSON, in a
    /// debug print), longest first: what [`Redactor::mask`] looks for.
    forms: Vec<String>,
    /// Fingerprints of values this redactor does not have, by length
    /// (longest first), then weak hash.
    known: BTreeMap<std::cmp::Reverse<usize>, BTreeMap<u32, BTreeSet<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redactor({} values, {} fingerprints)",
            self.0.values.len(),
            self.0.known.values().map(BTreeMap::len).sum::<usize>()
        )
    }
}

/// Two redactors are equal when they find the same values.
impl PartialEq for Redactor {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprints() == other.fingerprints()
    }
}

/// The forms `value` takes in telefig's output: as is, JSON-escaped and
/// debug-escaped (without their quotes).
fn forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap_or_default();
    let debug = format!("{value:?}");
    let mut forms = vec![value.to_owned()];
    for quoted in [json, debug] {
        if let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'))
            && !forms.iter().any(|f| f == inner)
        {
            forms.push(inner.to_owned());
        }
    }
    forms
}

impl Redactor {
    /// A redactor for `values`; empty and short ones are left out.
    pub fn new<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Redactor {
        Redactor::default().with_values(values)
    }

    /// A redactor for the values these fingerprints stand for.
    pub fn from_fingerprints<'a>(fingerprints: impl IntoIterator<Item = &'a Fingerprint>) -> Self {
        Redactor::default().with_fingerprints(fingerprints)
    }

    /// This one and `values`.
    pub fn with_values<S: AsRef<str>>(&self, values: impl IntoIterator<Item = S>) -> Redactor {
        let mut set: BTreeSet<String> = self.0.values.iter().cloned().collect();
        set.extend(
            values
                .into_iter()
                .map(|v| v.as_ref().to_owned())
                .filter(|v| v.len() >= MIN_SECRET_LEN),
        );
        let values: Vec<String> = set.into_iter().collect();
        let known = self.0.known.clone();
        Redactor::build(values, known)
    }

    /// This one and the values `fingerprints` stand for.
    pub fn with_fingerprints<'a>(
        &self,
        fingerprints: impl IntoIterator<Item = &'a Fingerprint>,
    ) -> Redactor {
        let mut known = self.0.known.clone();
        for f in fingerprints {
            if f.len >= MIN_SECRET_LEN && is_digest(&f.sha256) {
                known
                    .entry(std::cmp::Reverse(f.len))
                    .or_default()
                    .entry(f.weak)
                    .or_default()
                    .insert(f.sha256.clone());
            }
        }
        Redactor::build(self.0.values.clone(), known)
    }

    /// This one and `other`.
    pub fn merged(&self, other: &Redactor) -> Redactor {
        self.with_values(&other.0.values)
            .with_fingerprints(&other.fingerprints())
    }

    fn build(
        mut values: Vec<String>,
        mut known: BTreeMap<std::cmp::Reverse<usize>, BTreeMap<u32, BTreeSet<String>>>,
    ) -> Redactor {
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        let mut forms: Vec<String> = values.iter().flat_map(|v| forms(v)).collect();
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        // What the values find need not be looked for by fingerprint.
        for form in &forms {
            let f = Fingerprint::of(form);
            if let Some(by_weak) = known.get_mut(&std::cmp::Reverse(f.len))
                && let Some(digests) = by_weak.get_mut(&f.weak)
            {
                digests.remove(&f.sha256);
                if digests.is_empty() {
                    by_weak.remove(&f.weak);
                }
            }
        }
        known.retain(|_, by_weak| !by_weak.is_empty());
        Redactor(Arc::new(Inner {
            values,
            forms,
            known,
        }))
    }

    /// Whether it finds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.forms.is_empty() && self.0.known.is_empty()
    }

    /// The secret values it has, longest first.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values.iter().map(String::as_str)
    }

    /// What a record keeps so that a process without the values finds
    /// them: the fingerprint of every form of every value, and the
    /// fingerprints it was given. Sorted, without duplicates.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        let mut all: BTreeSet<Fingerprint> =
            self.0.forms.iter().map(|f| Fingerprint::of(f)).collect();
        for (std::cmp::Reverse(len), by_weak) in &self.0.known {
            for (weak, digests) in by_weak {
                for sha256 in digests {
                    all.insert(Fingerprint {
                        len: *len,
                        weak: *weak,
                        sha256: sha256.clone(),
                    });
                }
            }
        }
        all.into_iter().collect()
    }

    /// `text` with every secret value (in any of its forms, or found by
    /// fingerprint) replaced by [`MASK`]. Where two overlap, their union is
    /// one mask: no part of either shows.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut found: Vec<std::ops::Range<usize>> = Vec::new();
        for form in &self.0.forms {
            let mut from = 0;
            while let Some(at) = text[from..].find(form.as_str()) {
                let start = from + at;
                found.push(start..start + form.len());
                // Overlapping occurrences too: on from the next character.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        for (std::cmp::Reverse(len), by_weak) in &self.0.known {
            found.extend(find_by_fingerprint(text, *len, by_weak));
        }
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        found.sort_by_key(|r| r.start);
        let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(found.len());
        for range in found {
            match merged.last_mut() {
                Some(last) if range.start < last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for range in merged {
            out.push_str(&text[at..range.start]);
            out.push_str(MASK);
            at = range.end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Mask every string in `value`; with `keys`, the keys of its objects
    /// too (for output: a map's key may be a value a template put there).
    pub fn mask_json(&self, value: &mut serde_json::Value, keys: bool) {
        if self.is_empty() {
            return;
        }
        map_json_strings(value, keys, &|s| self.mask(s));
    }

    /// `text` with every secret value it holds (as is) replaced by its
    /// [`placeholder`]; placeholders already there are left as they are.
    pub fn conceal<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.0.values.iter().any(|v| text.contains(v.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        for piece in pieces(text) {
            match piece {
                Piece::Plain(p) => out.push_str(&self.conceal_plain(p)),
                Piece::Secret(d) => {
                    out.push_str(PLACEHOLDER_OPEN);
                    out.push_str(d);
                    out.push_str(PLACEHOLDER_CLOSE);
                }
            }
        }
        Cow::Owned(out)
    }

    /// Concealing of a text with no placeholder: the longest value first,
    /// and what one replaced is not looked at again.
    fn conceal_plain(&self, text: &str) -> String {
        let Some(value) = self.0.values.iter().find(|v| text.contains(v.as_str())) else {
            return text.to_owned();
        };
        text.split(value.as_str())
            .map(|part| self.conceal_plain(part))
            .collect::<Vec<_>>()
            .join(&placeholder(value))
    }
}

/// Apply `f` to every string of `value` (and, with `keys`, to the keys of
/// its objects).
pub fn map_json_strings(
    value: &mut serde_json::Value,
    keys: bool,
    f: &dyn for<'a> Fn(&'a str) -> Cow<'a, str>,
) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(new) = f(s) {
                *s = new;
            }
        }
        Value::Array(items) => {
            for item in items {
                map_json_strings(item, keys, f);
            }
        }
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                map_json_strings(&mut item, keys, f);
                let key = if keys { f(&key).into_owned() } else { key };
                map.insert(key, item);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
