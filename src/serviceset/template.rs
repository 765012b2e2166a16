//! Jinja templating of serviceset files and platform templates (minijinja).
//!
//! The original tool renders the raw file text with Python Jinja before the
//! YAML is parsed; so does this module: `{{ NAME }}`, filters (`default`,
//! `lower`, `int`, `join`, …), `{% if %}`/`{% for %}` blocks, `{# comments #}`
//! and whitespace control all work. Undefined names are strict, as with
//! Jinja's `StrictUndefined`: every one of them is reported, each with the
//! line of its first use, not only the first. Values are looked up in
//! [`Vars`], a stack of layers where the first one that defines a name wins:
//! `-e K=V` before the process environment, and for sidecar templates their
//! parameters first. This module knows nothing about YAML.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

/// Layered variables; the first layer that defines a name wins.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    /// Shared: a layer added per container does not copy the environment.
    layers: Vec<Arc<BTreeMap<String, String>>>,
}

impl Vars {
    /// `-e` values first, then the given environment.
    pub fn new(
        explicit: impl IntoIterator<Item = (String, String)>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Vars {
            layers: vec![
                Arc::new(explicit.into_iter().collect()),
                Arc::new(environment.into_iter().collect()),
            ],
        }
    }

    /// `-e` values first, then this process's environment.
    pub fn from_process(explicit: impl IntoIterator<Item = (String, String)>) -> Self {
        // A variable that is not UTF-8 cannot be templated in; it is skipped, not a panic.
        let environment = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Vars::new(explicit, environment)
    }

    /// A copy with `layer` consulted before everything else.
    pub fn with_layer(&self, layer: BTreeMap<String, String>) -> Self {
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        layers.push(Arc::new(layer));
        layers.extend(self.layers.iter().cloned());
        Vars { layers }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.layers
            .iter()
            .find_map(|l| l.get(name))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Every undefined name, with the 1-based line where it is first used.
    #[error("{}", undefined_message(.0))]
    Undefined(Vec<(String, usize)>),
    /// The template does not parse, or fails while rendering (a filter
    /// given a value it cannot take, an unknown filter).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
}

fn undefined_message(names: &[(String, usize)]) -> String {
    let list: Vec<String> = names
        .iter()
        .map(|(n, l)| format!("`{n}` (line {l})"))
        .collect();
    format!(
        "undefined template variable{} {}: pass each with `-e NAME=VALUE`, export it, or give a default: {{{{ NAME|default(\"value\", true) }}}}",
        if names.len() > 1 { "s" } else { "" },
        list.join(", ")
    )
}

/// Whether `text` holds any Jinja syntax at all.
fn has_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Where each piece of a rendered text came from in its template, so a
/// position found in the output (a YAML error) can be shown in the file.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Output range, source start, and whether the output is the source
    /// copied verbatim (template data) rather than an expression's value.
    spans: Vec<(std::ops::Range<usize>, usize, bool)>,
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

/// Render `text` as a Jinja template with `vars`.
pub fn render(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    render_mapped(text, vars).map(|(out, _)| out)
}

/// [`render`], and where each part of the output came from.
pub fn render_mapped(text: &str, vars: &Vars) -> Result<(String, SourceMap), TemplateError> {
    if !has_template(text) {
        return Ok((text.to_owned(), SourceMap::default()));
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let template = env
        .template_from_str(text)
        .map_err(|err| syntax_error(text, &err))?;
    // Only the names the template uses, not the whole environment.
    let candidates = template.undeclared_variables(false);
    let mut context: BTreeMap<String, Value> = candidates
        .iter()
        .filter_map(|n| Some((n.clone(), Value::from(vars.get(n)?))))
        .collect();
    let mut undefined: Vec<(String, usize)> = Vec::new();
    // Strict rendering stops at the first undefined name: note it, give it
    // an empty value, and render again, so that every name is reported.
    loop {
        let err = match template.render_with_spans(Value::from(context.clone())) {
            Ok((out, spans)) if undefined.is_empty() => {
                let spans = spans
                    .iter()
                    .map(|s| {
                        let raw = s.kind() == minijinja::OutputSpanKind::Raw;
                        (s.output_range(), s.source_range().start, raw)
                    })
                    .collect();
                return Ok((out, SourceMap { spans }));
            }
            Ok(_) => return Err(TemplateError::Undefined(undefined)),
            Err(err) => err,
        };
        let name = (err.kind() == ErrorKind::UndefinedError)
            .then(|| undefined_name(text, &err, &candidates, &context))
            .flatten();
        match name {
            Some(name) => {
                // A name the analysis above missed is filled in if defined.
                let value = vars.get(&name).unwrap_or_else(|| {
                    undefined.push((name.clone(), err.line().unwrap_or(1)));
                    ""
                });
                context.insert(name, Value::from(value));
            }
            // A later failure may come from the empty stand-in values:
            // the undefined names are what to fix first.
            None if !undefined.is_empty() => return Err(TemplateError::Undefined(undefined)),
            None => return Err(syntax_error(text, &err)),
        }
    }
}

/// Render a value of a parsed template (a string in a sidecar template or
/// the platform environment). Text without Jinja syntax is returned as is.
pub fn render_str(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    if has_template(text) {
        render(text, vars)
    } else {
        Ok(text.to_owned())
    }
}

/// The undeclared, not yet defined name that the failing expression uses:
/// the first one that appears as a whole word in the error's span (or, when
/// minijinja gives no span, on the error's line).
fn undefined_name(
    text: &str,
    err: &minijinja::Error,
    candidates: &std::collections::HashSet<String>,
    context: &BTreeMap<String, Value>,
) -> Option<String> {
    // minijinja names it in its detail: "`Z` is undefined".
    let named = err
        .detail()
        .and_then(|d| d.strip_prefix('`')?.split_once("` is undefined"))
        .map(|(name, _)| name);
    if let Some(name) = named.filter(|n| !context.contains_key(*n)) {
        return Some(name.to_owned());
    }
    let span = match err.range() {
        Some(range) => text.get(range)?,
        None => text.lines().nth(err.line()?.checked_sub(1)?)?,
    };
    candidates
        .iter()
        .filter(|c| !context.contains_key(c.as_str()))
        .filter_map(|c| word_position(span, c).map(|at| (at, c)))
        .min()
        .map(|(_, c)| c.clone())
}

/// Where `word` appears in `text` with no identifier character either side.
fn word_position(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn syntax_error(text: &str, err: &minijinja::Error) -> TemplateError {
    let line = err.line().unwrap_or(1);
    let column = err
        .range()
        .filter(|r| r.start <= text.len())
        .map(|r| {
            let before = &text[..r.start];
            r.start - before.rfind('\n').map_or(0, |nl| nl + 1) + 1
        })
        .unwrap_or(1);
    let message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    TemplateError::Syntax {
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars::new(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            [],
        )
    }

    #[test]
    fn table() {
        let v = vars(&[("A", "1"), ("EMPTY", ""), ("NAME", "Vtctld"), ("N", "3")]);
        let cases = [
            ("x{{A}}y", "x1y"),
            ("{{ A }}", "1"),
            ("{{ B|default(\"4G\", true) }}", "4G"),
            ("{{ EMPTY|default(\"4G\", true) }}", "4G"),
            ("{{ EMPTY|default(\"4G\") }}", ""),
            ("{{ B | default('x') }}", "x"),
            ("{{ B|default(3) }}", "3"),
            ("{{A}}-{{A}}", "1-1"),
            ("no templates", "no templates"),
            ("{{ NAME|lower }}", "vtctld"),
            ("{{ N|int + 1 }}", "4"),
            ("{{ ['a', 'b']|join(',') }}", "a,b"),
            ("{% if A == '1' %}one{% else %}other{% endif %}", "one"),
            ("{% for i in range(N|int) %}{{ i }}{% endfor %}", "012"),
            ("a{# a comment #}b", "ab"),
            ("a\n  {%- if B is defined %}x{% endif %}\nb", "a\nb"),
        ];
        for (input, want) in cases {
            assert_eq!(render(input, &v).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn positions_in_the_output_map_back_to_the_file() {
        let source = "{# note #}\n{% if A %}\na: {{ A }}\n{% endif %}\nb: [\n";
        let (out, map) = render_mapped(source, &vars(&[("A", "xyz")])).unwrap();
        assert_eq!(out, "\n\na: xyz\n\nb: [");
        // `b: [` is line 5 of the output and line 5 of the file; `xyz` is
        // the expression on line 3.
        assert_eq!(map.to_source(&out, source, 5, 4), (5, 4));
        assert_eq!(map.to_source(&out, source, 3, 4), (3, 7));
        let (out, map) = render_mapped("{%- set x = 1 %}\nk: v\n", &vars(&[])).unwrap();
        assert_eq!(
            map.to_source(&out, "{%- set x = 1 %}\nk: v\n", 1, 2),
            (2, 1)
        );
    }

    #[test]
    fn explicit_beats_environment() {
        let v = Vars::new([("A".into(), "cli".into())], [("A".into(), "env".into())]);
        assert_eq!(render("{{A}}", &v).unwrap(), "cli");
    }

    #[test]
    fn undefined_names_every_variable_and_line() {
        let err = render("a: {{X}}\nb: {{Y}}\nc: {{ X }}\n", &vars(&[])).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Undefined(vec![("X".into(), 1), ("Y".into(), 2)])
        );
        assert!(err.to_string().contains("`X` (line 1), `Y` (line 2)"));
    }

    #[test]
    fn undefined_inside_blocks_and_filters_are_all_reported() {
        let text = "{% if MODE == 'a' %}\nx: {{ HEAP|int }}\n{% endif %}\ny: {{ Z|lower }}\n";
        let err = render(text, &vars(&[])).unwrap_err();
        let TemplateError::Undefined(names) = err else {
            panic!("{err}")
        };
        let names: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["MODE", "Z"]);
    }

    #[test]
    fn syntax_errors() {
        for (input, needle) in [
            ("a: {{X", "syntax error"),
            ("{{ }}", "syntax error"),
            ("{{ X|no_such_filter }}", "unknown filter"),
            ("{% if %}", "syntax error"),
        ] {
            let err = render(input, &vars(&[("X", "1")])).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
