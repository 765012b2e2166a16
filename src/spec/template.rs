//! `{{ NAME }}` templating, the subset of Jinja that serviceset files use.
//!
//! Supported: `{{ NAME }}` and `{{ NAME|default("value") }}` /
//! `{{ NAME|default("value", true) }}` (the second form also replaces an
//! empty value, as in Jinja). Values are looked up in [`Vars`], a stack of
//! layers where the first one that defines a name wins: `-e K=V` before the
//! process environment, and for sidecar templates their parameters first.
//! Templating is applied to raw text, before YAML parsing, like Jinja is.

use std::collections::BTreeMap;

/// Layered variables; the first layer that defines a name wins.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    layers: Vec<BTreeMap<String, String>>,
}

impl Vars {
    /// `-e` values first, then the given environment.
    pub fn new(
        explicit: impl IntoIterator<Item = (String, String)>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        Vars {
            layers: vec![
                explicit.into_iter().collect(),
                environment.into_iter().collect(),
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
        layers.push(layer);
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
    /// Every undefined name, with the 1-based line where it is used.
    #[error("{}", undefined_message(.0))]
    Undefined(Vec<(String, usize)>),
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

/// Replace every `{{ … }}` in `text`.
pub fn render(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut undefined = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let start = offset + open;
        let (line, column) = line_col(text, start);
        let body_start = open + 2;
        let Some(close) = rest[body_start..].find("}}") else {
            return Err(TemplateError::Syntax {
                line,
                column,
                message: "`{{` is never closed with `}}`".into(),
            });
        };
        let expr = parse_expression(&rest[body_start..body_start + close]).map_err(|message| {
            TemplateError::Syntax {
                line,
                column,
                message,
            }
        })?;
        match expr.evaluate(vars) {
            Some(value) => out.push_str(&value),
            None => undefined.push((expr.name.to_string(), line)),
        }
        let consumed = body_start + close + 2;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    if undefined.is_empty() {
        Ok(out)
    } else {
        Err(TemplateError::Undefined(undefined))
    }
}

/// Render a value that is known to be a single line (a string in a parsed
/// template). Errors carry line 1.
pub fn render_str(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    if text.contains("{{") {
        render(text, vars)
    } else {
        Ok(text.to_owned())
    }
}

fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(byte, |nl| byte - nl - 1) + 1;
    (line, column)
}

#[derive(Debug)]
struct Expression<'a> {
    name: &'a str,
    default: Option<(String, bool)>,
}

impl Expression<'_> {
    fn evaluate(&self, vars: &Vars) -> Option<String> {
        let value = vars.get(self.name);
        match (&self.default, value) {
            (Some((fallback, true)), Some("")) => Some(fallback.clone()),
            (_, Some(v)) => Some(v.to_owned()),
            (Some((fallback, _)), None) => Some(fallback.clone()),
            (None, None) => None,
        }
    }
}

fn parse_expression(src: &str) -> Result<Expression<'_>, String> {
    let mut parts = src.splitn(2, '|');
    let name = parts.next().unwrap_or("").trim();
    if name.is_empty() {
        return Err("empty `{{ }}`: expected a variable name".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{name}` is not a variable name (letters, digits and `_`); only `{{{{ NAME }}}}` and `{{{{ NAME|default(\"value\", true) }}}}` are supported"
        ));
    }
    let default = match parts.next() {
        None => None,
        Some(filter) => Some(parse_default(filter.trim())?),
    };
    Ok(Expression { name, default })
}

/// `default("value")`, `default('value', true)`, `d(3)`.
fn parse_default(filter: &str) -> Result<(String, bool), String> {
    let args = ["default(", "d("]
        .iter()
        .find_map(|p| filter.strip_prefix(p))
        .and_then(|a| a.trim_end().strip_suffix(')'))
        .ok_or_else(|| {
            format!("unsupported filter `{filter}`: only `default(\"value\", true)` is supported")
        })?;
    let args = args.trim();
    let (value, rest) = parse_literal(args)?;
    let rest = rest.trim();
    let boolean = if rest.is_empty() {
        false
    } else {
        let flag = rest
            .strip_prefix(',')
            .map(str::trim)
            .ok_or_else(|| format!("expected `,` or `)` after the default value in `{filter}`"))?;
        let flag = flag.strip_prefix("boolean=").unwrap_or(flag);
        match flag {
            "true" | "True" => true,
            "false" | "False" => false,
            other => {
                return Err(format!(
                    "the second argument of default must be true or false, not `{other}`"
                ));
            }
        }
    };
    Ok((value, boolean))
}

/// A quoted string or a bare number/word; returns the value and the rest.
fn parse_literal(src: &str) -> Result<(String, &str), String> {
    let mut chars = src.char_indices();
    match chars.next() {
        Some((_, q @ ('"' | '\''))) => {
            let mut value = String::new();
            let mut escaped = false;
            for (i, c) in chars {
                if escaped {
                    value.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    return Ok((value, &src[i + 1..]));
                } else {
                    value.push(c);
                }
            }
            Err(format!("unterminated string in default({src}"))
        }
        Some(_) => {
            let end = src.find(',').unwrap_or(src.len());
            let word = src[..end].trim();
            if word.is_empty()
                || !word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(format!("default value `{word}` must be quoted"));
            }
            Ok((word.to_owned(), &src[end..]))
        }
        None => Err("default() needs a value".into()),
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
        let v = vars(&[("A", "1"), ("EMPTY", "")]);
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
        ];
        for (input, want) in cases {
            assert_eq!(render(input, &v).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn explicit_beats_environment() {
        let v = Vars::new([("A".into(), "cli".into())], [("A".into(), "env".into())]);
        assert_eq!(render("{{A}}", &v).unwrap(), "cli");
    }

    #[test]
    fn undefined_names_every_variable_and_line() {
        let err = render("a: {{X}}\nb: {{Y}}\n", &vars(&[])).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Undefined(vec![("X".into(), 1), ("Y".into(), 2)])
        );
        assert!(err.to_string().contains("`X` (line 1), `Y` (line 2)"));
    }

    #[test]
    fn syntax_errors() {
        for (input, needle) in [
            ("a: {{X", "never closed"),
            ("{{ }}", "empty"),
            ("{{ X|upper }}", "unsupported filter"),
            ("{{ a.b }}", "not a variable name"),
            ("{{ X|default(\"a) }}", "unterminated"),
        ] {
            let err = render(input, &vars(&[])).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }
}
