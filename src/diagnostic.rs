//! How telefig points at a mistake in a file the user wrote.
//!
//! A [`SourceError`] is file + line + column + message, rendered the way
//! compilers do: `file:line:col: message`, then the offending line and a
//! caret under the column, then an optional "did you mean" hint. It knows
//! nothing about YAML or templates; `spec` and `platform` fill it in.

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

/// Edit distance where swapping two neighbouring letters counts as one
/// edit (optimal string alignment), for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_table() {
        for (a, b, d) in [
            ("", "", 0),
            ("image", "imgae", 1),
            ("image", "imaeg", 1),
            ("image", "imag", 1),
            ("a", "b", 1),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn closest_ignores_far_words() {
        assert_eq!(closest("imag", ["image", "version"]), Some("image"));
        assert_eq!(closest("zzzzzz", ["image", "version"]), None);
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
