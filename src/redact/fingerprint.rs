//! What a process without a secret value knows of it ([`Fingerprint`]),
//! and how it finds the value in a text with that: a rolling hash over
//! every window of the value's length, confirmed by the digest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::stored::digest;

/// What a process without a value knows of it: enough to find it in a
/// text, not to read it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Its length in bytes.
    pub len: usize,
    /// A 32-bit rolling hash ([`rolling`]): finds the candidates in one pass.
    pub weak: u32,
    /// Its [`digest`]: confirms a candidate.
    pub sha256: String,
}

impl Fingerprint {
    pub fn of(value: &str) -> Fingerprint {
        Fingerprint {
            len: value.len(),
            weak: fold(rolling(value.as_bytes())),
            sha256: digest(value),
        }
    }
}

/// The rolling hash's base (FNV's 64-bit prime).
const BASE: u64 = 0x0000_0100_0000_01b3;

/// Σ bytes[i]·BASE^(n-1-i), wrapping.
pub(super) fn rolling(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(*b))
    })
}

pub(super) fn fold(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

/// Where in `text` the windows of `len` bytes whose fingerprint is in
/// `by_weak` are.
pub(super) fn find_by_fingerprint(
    text: &str,
    len: usize,
    by_weak: &BTreeMap<u32, BTreeSet<String>>,
) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    if bytes.len() < len || len == 0 {
        return found;
    }
    // BASE^(len-1): what the byte leaving the window weighed.
    let top = (1..len).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let mut h = rolling(&bytes[..len]);
    let mut start = 0;
    loop {
        if let Some(digests) = by_weak.get(&fold(h))
            && let Some(window) = text.get(start..start + len)
            && digests.contains(&digest(window))
        {
            found.push(start..start + len);
        }
        if start + len >= bytes.len() {
            return found;
        }
        h = h
            .wrapping_sub(u64::from(bytes[start]).wrapping_mul(top))
            .wrapping_mul(BASE)
            .wrapping_add(u64::from(bytes[start + len]));
        start += 1;
    }
}
