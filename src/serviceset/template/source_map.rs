//! Where each piece of a rendered text came from in its template: a
//! position found in the output (a YAML error) shown in the file.

/// Where each piece of a rendered text came from in its template, so a
/// position found in the output (a YAML error) can be shown in the file.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Output range, source start, and whether the output is the source
    /// copied verbatim (template data) rather than an expression's value.
    pub(super) spans: Vec<(std::ops::Range<usize>, usize, bool)>,
}

impl SourceMap {
    /// The 1-based (line, column) in `source` of (line, column) in `rendered`.
    /// Without spans (a text with no Jinja syntax) positions are unchanged.
    pub fn to_source(
        &self,
        rendered: &str,
        source: &str,
        line: usize,
        column: usize,
    ) -> (usize, usize) {
        if self.spans.is_empty() {
            return (line, column);
        }
        let offset = offset_of(rendered, line, column);
        let found = self
            .spans
            .iter()
            .find(|(out, _, _)| out.contains(&offset))
            .or_else(|| self.spans.iter().find(|(out, _, _)| out.start >= offset))
            .or(self.spans.last());
        let Some((out, src, raw)) = found else {
            return (line, column);
        };
        let at = if *raw {
            src + offset.saturating_sub(out.start).min(out.len())
        } else {
            *src
        };
        line_col(source, at.min(source.len()))
    }
}

/// The byte offset of 1-based (line, column) in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

/// The 1-based (line, column) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (line, column)
}
