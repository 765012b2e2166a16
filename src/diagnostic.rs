//! How telefig points at a mistake in a file the user wrote.
//!
//! A [`SourceError`] is file + line + column + message, rendered the way
//! compilers do: `file:line:col: message`, then the offending line and a
//! caret under the column, then an optional "did you mean" hint. It knows
//! nothing about YAML or templates; `serviceset` and `platform` fill it in.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: PathBuf,
    /// 1-based; 0 when the position is unknown.
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The text of `line`, shown under the message with a caret.
    pub source_line: Option<String>,
    pub help: Option<String>,
}

impl SourceError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        SourceError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            source_line: None,
            help: None,
        }
    }

    /// Point at `line:column` of `text` (1-based), quoting that line.
    pub fn at(mut self, text: &str, line: usize, column: usize) -> Self {
        self.line = line;
        self.column = column.max(1);
        self.source_line = text.lines().nth(line.saturating_sub(1)).map(str::to_owned);
        self
    }

    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        if self.line > 0 {
            write!(f, "{file}:{}:{}: {}", self.line, self.column, self.message)?;
        } else {
            write!(f, "{file}: {}", self.message)?;
        }
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string().len();
            write!(f, "\n{:gutter$} |\n{} | {src}", "", self.line)?;
            // Tabs keep their width so the caret lines up under the column.
            let pad: String = src
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{:gutter$} | {pad}^", "")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {}

/// The candidate closest to `word`, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" or nothing.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// A name serde did not know, read back from its message:
/// "`place`: unknown field `word`, expected one of `a`, `b`" (or "unknown
/// variant", or "expected `a` or `b`").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName<'a> {
    /// `field` or `value` (an unknown variant is a value the user wrote).
    pub noun: &'static str,
    pub word: &'a str,
    /// Where, as serde's path before the colon (`web.docker`); may be empty.
    pub place: &'a str,
    /// The names serde expected.
    pub expected: Vec<&'a str>,
}

impl<'a> UnknownName<'a> {
    /// `None` when the message is about something else.
    pub fn parse(message: &'a str) -> Option<UnknownName<'a>> {
        let (what, noun) = [("unknown field `", "field"), ("unknown variant `", "value")]
            .into_iter()
            .find(|(w, _)| message.contains(w))?;
        let at = message.find(what)?;
        let after = &message[at + what.len()..];
        let word = &after[..after.find('`')?];
        let expected = after.split_once("expected")?.1;
        let place = message[..at].trim_end_matches(": ").trim();
        Some(UnknownName {
            noun,
            word,
            place: if place == "." { "" } else { place },
            expected: expected.split('`').skip(1).step_by(2).collect(),
        })
    }

    /// "unknown field `x`", with " in `place`" when serde named one.
    pub fn message(&self) -> String {
        let (noun, word) = (self.noun, self.word);
        match self.place {
            "" => format!("unknown {noun} `{word}`"),
            place => format!("unknown {noun} `{word}` in `{place}`"),
        }
    }

    /// "did you mean `a`?" when one is close, else none.
    pub fn did_you_mean(&self) -> Option<String> {
        did_you_mean(self.word, self.expected.iter().copied())
    }

    /// [`Self::did_you_mean`], else the list of what was expected.
    pub fn help(&self) -> String {
        self.did_you_mean()
            .unwrap_or_else(|| format!("expected one of: {}", self.expected.join(", ")))
    }
}

/// A file that could not be loaded: unreadable, or invalid at a place in
/// it. The serviceset file (`serviceset::Error`) and the platform file
/// (`platform::Error`) both fail this way.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {what} {}: {source}; {hint}", .path.display())]
    Read {
        /// Which file, in words: "serviceset file", "platform file".
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
    #[error("{0}")]
    Invalid(Box<SourceError>),
}

impl From<SourceError> for LoadError {
    fn from(err: SourceError) -> Self {
        LoadError::Invalid(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_takes_typos_and_ignores_far_words() {
        for typo in ["imag", "imgae", "imaeg", "iamge"] {
            assert_eq!(closest(typo, ["image", "version"]), Some("image"), "{typo}");
        }
        assert_eq!(closest("zzzzzz", ["image", "version"]), None);
        assert_eq!(closest("kitten", ["sitting"]), None, "3 edits in 6 letters");
    }

    #[test]
    fn unknown_names_read_from_serde_messages() {
        let field = UnknownName::parse(
            "web.docker: unknown field `imgae`, expected one of `image`, `version`",
        )
        .unwrap();
        assert_eq!(field.message(), "unknown field `imgae` in `web.docker`");
        assert_eq!(field.help(), "did you mean `image`?");
        let variant =
            UnknownName::parse("unknown variant `sometimes`, expected `before` or `after_healthy`")
                .unwrap();
        assert_eq!(variant.message(), "unknown value `sometimes`");
        assert_eq!(variant.did_you_mean(), None);
        assert_eq!(variant.help(), "expected one of: before, after_healthy");
        assert_eq!(UnknownName::parse("invalid type: map"), None);
    }

    #[test]
    fn renders_caret_under_column() {
        let err = SourceError::new(Path::new("s.conf"), "bad").at("a: 1\n  imgae: x\n", 2, 3);
        assert_eq!(
            err.to_string(),
            "s.conf:2:3: bad\n  |\n2 |   imgae: x\n  |   ^"
        );
    }
}
