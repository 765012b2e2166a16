//! What a record keeps of a secret value: its digest (`sha256:<hex>`), as
//! a whole value or inside a text as a placeholder (`<secret:sha256:<hex>>`),
//! and how a caller holding the value puts it back.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// What a digest of a secret value looks like: `sha256:<64 hex>`.
pub const DIGEST_PREFIX: &str = "sha256:";

pub(super) const PLACEHOLDER_OPEN: &str = "<secret:";
pub(super) const PLACEHOLDER_CLOSE: &str = ">";

/// `sha256:<hex>` of `value`: enough to see that it changed, useless to read it.
pub fn digest(value: &str) -> String {
    format!(
        "{DIGEST_PREFIX}{}",
        hex::encode(Sha256::digest(value.as_bytes()))
    )
}

/// Whether `value` is a [`digest`].
pub fn is_digest(value: &str) -> bool {
    value
        .strip_prefix(DIGEST_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What a secret value inside a stored string becomes: `<secret:sha256:<hex>>`.
pub fn placeholder(value: &str) -> String {
    format!("{PLACEHOLDER_OPEN}{}{PLACEHOLDER_CLOSE}", digest(value))
}

/// `text` split into plain parts and the digests of its placeholders.
pub(super) fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(PLACEHOLDER_OPEN) {
        let after = &rest[at + PLACEHOLDER_OPEN.len()..];
        let digest = after
            .get(..DIGEST_PREFIX.len() + 64)
            .filter(|d| is_digest(d));
        match digest {
            Some(d) if after[d.len()..].starts_with(PLACEHOLDER_CLOSE) => {
                out.push(Piece::Plain(&rest[..at]));
                out.push(Piece::Secret(d));
                rest = &after[d.len() + PLACEHOLDER_CLOSE.len()..];
            }
            _ => {
                let end = at + PLACEHOLDER_OPEN.len();
                out.push(Piece::Plain(&rest[..end]));
                rest = &rest[end..];
            }
        }
    }
    out.push(Piece::Plain(rest));
    out
}

pub(super) enum Piece<'a> {
    Plain(&'a str),
    Secret(&'a str),
}

/// Whether `text` holds a placeholder.
pub fn has_placeholder(text: &str) -> bool {
    pieces(text).iter().any(|p| matches!(p, Piece::Secret(_)))
}

/// `text` with each placeholder replaced by the value `lookup` finds for
/// its digest; `Err` with the digests it could not find.
pub fn restore<'a, 'v>(
    text: &'a str,
    lookup: impl Fn(&str) -> Option<&'v str>,
) -> Result<Cow<'a, str>, Vec<String>> {
    let pieces = pieces(text);
    if pieces.len() == 1 {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Plain(p) => out.push_str(p),
            Piece::Secret(d) => match lookup(d) {
                Some(value) => out.push_str(value),
                None => missing.push(d.to_owned()),
            },
        }
    }
    if missing.is_empty() {
        Ok(Cow::Owned(out))
    } else {
        Err(missing)
    }
}
