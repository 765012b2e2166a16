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
//! parameters first. Every render has a [`Budget`]: a template that loops
//! or recurses without end, or builds a huge value, stops with
//! [`TemplateError::OverBudget`] instead of hanging or exhausting memory.
//! This module knows nothing about YAML.

mod budget;
mod source_map;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use budget::{Budget, Exhausted};
use budget::{Passes, bounded_formatter};
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
pub use source_map::SourceMap;

/// Layered variables; the first layer that defines a name wins. Its debug
/// output names the variables and shows no value (some are secrets).
#[derive(Clone, Default)]
pub struct Vars {
    /// Shared: a layer added per container does not copy the environment.
    /// The last two are the `-e` values and the environment; the ones added
    /// later come first.
    layers: Vec<Arc<BTreeMap<String, String>>>,
    /// The names looked up and found, by this copy and every copy made
    /// from it: the secret values that can be in a file's result.
    used: Arc<Mutex<BTreeSet<String>>>,
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
            used: Arc::default(),
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
        Vars {
            layers,
            used: self.used.clone(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let found = self.layers.iter().find_map(|l| l.get(name))?;
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned());
        Some(found)
    }

    /// Every value, in every layer, of a variable that is secret: its name
    /// looks secret ([`crate::redact::looks_secret`]) or `listed` (the
    /// platform's `secrets:`) names it. A value a later layer hides is
    /// still a secret.
    pub fn secret_values<'a, 'l>(
        &'a self,
        listed: &'l [String],
    ) -> impl Iterator<Item = &'a str> + use<'a, 'l> {
        self.layers.iter().flat_map(move |layer| {
            layer
                .iter()
                .filter(move |(name, _)| {
                    crate::redact::looks_secret(name) || listed.iter().any(|l| l == *name)
                })
                .map(|(_, value)| value.as_str())
        })
    }

    /// The secret values (as [`Vars::secret_values`] says) that matter to
    /// what was built with these variables: every `-e` one, and of the
    /// others, those a template or a caller looked up so far. A
    /// secret-looking variable of the environment that nothing used is
    /// not among them.
    pub fn used_secret_values(&self, listed: &[String]) -> Vec<String> {
        let secret = |name: &String| crate::redact::looks_secret(name) || listed.contains(name);
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let explicit = self.layers.len().checked_sub(2).map(|i| &self.layers[i]);
        let given = explicit.into_iter().flat_map(|l| l.iter());
        let looked_up = used
            .iter()
            .filter_map(|name| Some((name, self.layers.iter().find_map(|l| l.get(name))?)));
        given
            .filter(|(name, _)| secret(name))
            .map(|(_, value)| value.clone())
            .chain(
                looked_up
                    .filter(|(name, _)| secret(name))
                    .map(|(_, value)| value.clone()),
            )
            .collect()
    }
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<Vec<&String>> = self.layers.iter().map(|l| l.keys().collect()).collect();
        f.debug_struct("Vars").field("names", &names).finish()
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
    /// The render ran out of its budget; `line` is where it was, when
    /// minijinja knows it.
    #[error("{}{exhausted}", .line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    OverBudget {
        exhausted: Exhausted,
        line: Option<usize>,
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

/// Render `text` as a Jinja template with `vars`.
pub fn render(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    render_mapped(text, vars).map(|(out, _)| out)
}

/// [`render`], and where each part of the output came from.
pub fn render_mapped(text: &str, vars: &Vars) -> Result<(String, SourceMap), TemplateError> {
    render_within(text, vars, Budget::DEFAULT)
}

/// The name the text is known by inside minijinja (never shown).
const NAME: &str = "text";

/// [`render_mapped`] within `budget`.
pub fn render_within(
    text: &str,
    vars: &Vars,
    budget: Budget,
) -> Result<(String, SourceMap), TemplateError> {
    if !has_template(text) {
        return Ok((text.to_owned(), SourceMap::default()));
    }
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let emitted = Arc::new(AtomicUsize::new(0));
    env.set_formatter(bounded_formatter(budget.output, emitted.clone()));
    env.add_template(NAME, text)
        .map_err(|err| syntax_error(text, &err))?;
    // Only the names the template uses, not the whole environment.
    let candidates = template(&env).undeclared_variables(false);
    let mut context: BTreeMap<String, Value> = candidates
        .iter()
        .filter_map(|n| Some((n.clone(), Value::from(vars.get(n)?))))
        .collect();
    let mut undefined: Vec<(String, usize)> = Vec::new();
    let mut fuel = Passes::new(budget.work);
    // Strict rendering stops at the first undefined name: note it, give it
    // an empty value, and render again, so that every name is reported.
    loop {
        let Some(allowance) = fuel.next() else {
            // The search for more undefined names is out of fuel.
            return Err(TemplateError::Undefined(undefined));
        };
        env.set_fuel(Some(allowance));
        emitted.store(0, Ordering::Relaxed);
        let rendered = template(&env).render_with_spans(Value::from(context.clone()));
        let over_cap = emitted.load(Ordering::Relaxed) > budget.output;
        let err = match rendered {
            Ok((out, _)) if undefined.is_empty() && out.len() > budget.output => {
                return Err(TemplateError::OverBudget {
                    exhausted: Exhausted::Output(budget.output),
                    line: None,
                });
            }
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
            Err(err) if over_cap && undefined.is_empty() => {
                return Err(TemplateError::OverBudget {
                    exhausted: Exhausted::Output(budget.output),
                    line: err.line(),
                });
            }
            Err(err) if err.kind() == ErrorKind::OutOfFuel && undefined.is_empty() => {
                return Err(TemplateError::OverBudget {
                    exhausted: Exhausted::Work(budget.work),
                    line: err.line(),
                });
            }
            Err(err) if err.kind() == ErrorKind::OutOfFuel => {
                fuel.ran_out();
                continue;
            }
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
                    fuel.searching();
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

fn template<'a>(env: &'a Environment<'a>) -> minijinja::Template<'a, 'a> {
    env.get_template(NAME).expect("added before rendering")
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
    fn secret_values_by_name_or_list_in_every_layer() {
        let v = Vars::new(
            [
                ("API_TOKEN".into(), "from-e".into()),
                ("SIGNING".into(), "listed".into()),
                ("HEAP".into(), "4G".into()),
            ],
            [
                ("API_TOKEN".into(), "hidden-by-e".into()),
                ("db_password".into(), "from-env".into()),
                ("PATH".into(), "/bin".into()),
            ],
        )
        .with_layer(BTreeMap::from([("token".into(), "param".into())]));
        let mut found: Vec<&str> = v.secret_values(&["SIGNING".into()]).collect();
        found.sort();
        assert_eq!(
            found,
            ["from-e", "from-env", "hidden-by-e", "listed", "param"]
        );
        let mut unlisted: Vec<&str> = v.secret_values(&[]).collect();
        unlisted.sort();
        assert_eq!(unlisted, ["from-e", "from-env", "hidden-by-e", "param"]);
        let debug = format!("{v:?}");
        assert!(
            debug.contains("API_TOKEN") && !debug.contains("from-e"),
            "{debug}"
        );
        // Of the environment, only what a template used can be in its
        // result; every `-e` value matters.
        let mut given = v.used_secret_values(&["SIGNING".into()]);
        given.sort();
        assert_eq!(given, ["from-e", "listed"]);
        render("{{ API_TOKEN }} {{ db_password }} {{ HEAP }}", &v).unwrap();
        let mut used = v.used_secret_values(&[]);
        used.sort();
        used.dedup();
        assert_eq!(used, ["from-e", "from-env"]);
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

    /// Budgets small enough that running out takes no time in a debug build.
    const SMALL: Budget = Budget {
        work: 20_000,
        output: 64 << 10,
    };

    #[test]
    fn a_runaway_template_runs_out_of_its_budget() {
        let work = Exhausted::Work(SMALL.work);
        let output = Exhausted::Output(SMALL.output);
        let loops =
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        for (text, want, line) in [
            (loops, work, Some(1)),
            ("a\n{{ 'a' * 10**8 }}", work, Some(2)),
            (
                "{% for i in range(100) %}{{ 'a' * 10**8 }}{% endfor %}",
                work,
                Some(1),
            ),
            // A lazily repeated list has no size until it is printed.
            ("{{ [1] * 10**8 }}", output, Some(1)),
            ("{{ [[1] * 10**8] * 10**8 }}", output, Some(1)),
            ("{{ range(100000)|join(',') }}", work, Some(1)),
            (
                "{% macro g(s, n) %}{% if n > 0 %}{{ g(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ g('ab', 40) }}",
                work,
                Some(1),
            ),
            // Cheap steps, long output.
            (
                "{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}",
                output,
                Some(1),
            ),
        ] {
            let err = render_within(text, &vars(&[]), SMALL).unwrap_err();
            assert_eq!(
                err,
                TemplateError::OverBudget {
                    exhausted: want,
                    line
                },
                "{text}"
            );
        }
        let err = render("{{ 'a' * 10**8 }}", &vars(&[])).unwrap_err();
        assert!(
            err.to_string().contains("work budget (1000000 units)"),
            "{err}"
        );
    }

    /// Each undefined name costs a render; the renders that look for more
    /// share one more budget, so a heavy template with many missing names
    /// cannot multiply its cost by their number.
    #[test]
    fn the_search_for_undefined_names_is_bounded() {
        let names: Vec<String> = (0..1000).map(|i| format!("{{{{ N{i} }}}}")).collect();
        // About a third of the budget per render.
        let text = format!(
            "{{% for i in range(2000) %}}{{% endfor %}}{}",
            names.join("\n")
        );
        let err = render_within(&text, &vars(&[]), SMALL).unwrap_err();
        let TemplateError::Undefined(found) = err else {
            panic!("{err}")
        };
        assert_eq!(found[0], ("N0".to_owned(), 1));
        assert!(found.len() < 10, "{} renders", found.len());
        // A cheap template still has all of its names found.
        let text = names[..50].join("\n");
        let err = render_within(&text, &vars(&[]), SMALL).unwrap_err();
        assert!(matches!(err, TemplateError::Undefined(found) if found.len() == 50));
    }

    /// Every real file (the examples, the test builds, the platform files'
    /// templates) renders within a hundredth of the default budget.
    #[test]
    fn real_files_render_with_a_wide_margin() {
        let margin = Budget {
            work: Budget::DEFAULT.work / 100,
            output: Budget::DEFAULT.output / 100,
        };
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts: Vec<(String, String)> = Vec::new();
        let mut dirs = vec![repo.join("examples"), repo.join("tests/fixtures/builds")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "conf") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    texts.push((path.display().to_string(), text));
                }
            }
        }
        assert!(texts.len() >= 6, "{texts:?}");
        for platform in ["src/platform/default.yaml", "examples/demo/platform.yaml"] {
            let text = std::fs::read_to_string(repo.join(platform)).unwrap();
            let value: crate::yaml::Value = crate::yaml::from_str(&text).unwrap();
            let mut values = vec![value];
            while let Some(value) = values.pop() {
                match value {
                    crate::yaml::Value::String(s) => texts.push((platform.to_owned(), s)),
                    crate::yaml::Value::Sequence(items) => values.extend(items),
                    crate::yaml::Value::Mapping(map) => {
                        values.extend(map.into_iter().map(|(_, v)| v))
                    }
                    _ => {}
                }
            }
        }
        for (file, text) in texts {
            // Every name the text uses, defined (numbers work as text too).
            let env = Environment::new();
            let names = match env.template_from_str(&text) {
                Ok(t) => t.undeclared_variables(false),
                Err(_) => Default::default(),
            };
            let defined = vars(&names.iter().map(|n| (n.as_str(), "1")).collect::<Vec<_>>());
            if let Err(err) = render_within(&text, &defined, margin) {
                panic!("{file}: {err}\n{text}");
            }
        }
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
