//! `serviceset`: the serviceset file — read it, template it, parse it, check it.
//!
//! Owns the on-disk format (SPEC §2) and its diagnostics (file:line:column,
//! "did you mean"). It does not know about platform sidecar templates,
//! images, registries or Docker; `platform` turns a [`Serviceset`] into the
//! containers the rest of telefig works with.

mod check;
pub mod cron;
pub mod schema;
pub mod template;
mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use check::{is_docker_name, is_port, parse_bytes};
pub use schema::{Condition, ContainerEntry, ContainerKind, DockerSection};
pub use template::{TemplateError, Vars};

use crate::diagnostic::{SourceError, UnknownName};
use crate::yaml::{self, YamlError};

/// A serviceset file that could not be loaded.
pub type Error = crate::diagnostic::LoadError;

/// A parsed, templated, checked serviceset file.
#[derive(Debug, Clone)]
pub struct Serviceset {
    pub file: PathBuf,
    /// The templated text the YAML was parsed from, for pointing at lines.
    pub text: String,
    /// The file as written, and where each part of `text` came from in it:
    /// errors point at the file's own lines.
    pub source: String,
    pub source_map: template::SourceMap,
    pub containers: Vec<Declared>,
    /// Where each name is in `containers`: a lookup per sidecar and per
    /// dependency must not scan the list.
    index: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
pub struct Declared {
    pub name: String,
    pub entry: ContainerEntry,
}

/// Read `path` and parse it with `vars`.
pub fn load(path: &Path, vars: &Vars) -> Result<Serviceset, Error> {
    let raw = crate::read::text(path, crate::read::CONFIG_CAP).map_err(|source| Error::Read {
        what: "serviceset file",
        path: path.to_path_buf(),
        source,
        hint: "check the path given with -c",
    })?;
    parse(path, &raw, vars)
}

/// Template, parse and check `raw`, the content of `file`.
pub fn parse(file: &Path, raw: &str, vars: &Vars) -> Result<Serviceset, Error> {
    parse_within(file, raw, vars, template::Budget::DEFAULT)
}

/// [`parse`], rendering the template within `budget`.
pub fn parse_within(
    file: &Path,
    raw: &str,
    vars: &Vars,
    budget: template::Budget,
) -> Result<Serviceset, Error> {
    let (text, source_map) =
        render_on_deep_stack(raw, vars, budget).map_err(|err| template_error(file, raw, err))?;
    let parsed: schema::ServicesetFile = yaml::from_str(&text).map_err(|mut err| {
        let in_file = |(line, column)| source_map.to_source(&text, raw, line, column);
        err.location = err.location.map(in_file);
        err.gave_up = err.gave_up.map(in_file);
        yaml_error(file, raw, err)
    })?;
    let containers: Vec<Declared> = parsed
        .containers
        .into_iter()
        .map(|(name, entry)| Declared { name, entry })
        .collect();
    let serviceset = Serviceset {
        file: file.to_path_buf(),
        text,
        source: raw.to_owned(),
        source_map,
        index: (containers.iter().enumerate())
            .map(|(i, c)| (c.name.clone(), i))
            .collect(),
        containers,
    };
    check::check(&serviceset)?;
    Ok(serviceset)
}

/// The stack the serviceset's template renders on. Within its work budget a
/// template can nest a value over 100,000 levels deep (a `namespace` set in
/// a loop), and minijinja prints, compares and drops such a value by
/// recursion: a thread's usual few MiB overflow at a tenth of that, and the
/// process aborts. The size is reserved, not used, until a template goes
/// that deep.
const TEMPLATE_STACK: usize = 1 << 30;

/// How long the serviceset's template may take, whatever it does: the
/// backstop behind the work budget for what minijinja does not charge. A
/// list repeated with `*` is lazy and costs no fuel until something turns it
/// into text (`~`, `|string`, `|pprint`), which then walks every item. Real
/// files render in well under a millisecond.
pub const TEMPLATE_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// [`template::render_within`] on a thread of its own with
/// [`TEMPLATE_STACK`] (on this thread should the system refuse that), for
/// at most [`TEMPLATE_TIME`]. A render past its time is left running on its
/// thread and reported: every caller of [`load`] is a command that exits on
/// that error, which ends the thread with the process.
fn render_on_deep_stack(
    raw: &str,
    vars: &Vars,
    budget: template::Budget,
) -> Result<(String, template::SourceMap), TemplateError> {
    use std::sync::mpsc::{RecvTimeoutError, sync_channel};
    let (tx, rx) = sync_channel(1);
    let (owned_raw, owned_vars) = (raw.to_owned(), vars.clone());
    let spawned = std::thread::Builder::new()
        .name("template".into())
        .stack_size(TEMPLATE_STACK)
        .spawn(move || {
            let _ = tx.send(template::render_within(&owned_raw, &owned_vars, budget));
        });
    let thread = match spawned {
        Ok(thread) => thread,
        Err(_) => return template::render_within(raw, vars, budget),
    };
    match rx.recv_timeout(TEMPLATE_TIME) {
        Ok(rendered) => rendered,
        Err(RecvTimeoutError::Timeout) => Err(TemplateError::OverBudget {
            exhausted: template::Exhausted::Time(TEMPLATE_TIME),
            line: None,
        }),
        // It panicked: carry the panic on here, as a scoped thread would.
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the render sends its result before it ends"),
        },
    }
}

impl Serviceset {
    pub fn get(&self, name: &str) -> Option<&Declared> {
        self.containers.get(*self.index.get(name)?)
    }

    /// An error pointing at `container`'s entry, or at `field` inside it
    /// (found by its key, the first line after the container that starts
    /// with `field:`). Parsed values carry no positions, so this is how
    /// checks made after parsing still name a line.
    pub fn error_at(
        &self,
        container: &str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> SourceError {
        let err = SourceError::new(&self.file, message);
        let lines: Vec<&str> = self.text.lines().collect();
        let key = format!("{container}:");
        let Some(start) = lines.iter().position(|l| l.starts_with(&key)) else {
            return err;
        };
        let mut at = (start + 1, 1);
        if let Some(field) = field {
            let field_key = format!("{field}:");
            let found = lines[start + 1..]
                .iter()
                .take_while(|l| l.is_empty() || l.starts_with([' ', '\t', '#']))
                .position(|l| {
                    l.trim_start()
                        .trim_start_matches("- ")
                        .starts_with(&field_key)
                });
            if let Some(offset) = found {
                let line = lines[start + 1 + offset];
                at = (start + 2 + offset, line.len() - line.trim_start().len() + 1);
            }
        }
        let (line, column) = self
            .source_map
            .to_source(&self.text, &self.source, at.0, at.1);
        err.at(&self.source, line, column)
    }
}

/// The serviceset's identity: `--name`, else `ENV_NAME`, else the file name
/// without its extension (`serviceset.prod.conf` → `serviceset.prod`).
pub fn serviceset_name(explicit: Option<&str>, vars: &Vars, file: &Path) -> String {
    if let Some(name) = explicit.filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    if let Some(name) = vars.get("ENV_NAME").filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    let stem = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("serviceset");
    let stem = [".conf", ".yaml", ".yml"]
        .iter()
        .find_map(|ext| stem.strip_suffix(ext))
        .unwrap_or(stem);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn template_error(file: &Path, raw: &str, err: TemplateError) -> SourceError {
    match &err {
        TemplateError::Undefined(names) => {
            let (name, line) = &names[0];
            let column = raw
                .lines()
                .nth(line - 1)
                .and_then(|l| {
                    // The use inside the template, not a same-named key before it.
                    let from = l.find('{').unwrap_or(0);
                    l[from..].find(name.as_str()).map(|c| c + from)
                })
                .map_or(1, |c| c + 1);
            SourceError::new(file, err.to_string()).at(raw, *line, column)
        }
        TemplateError::Syntax {
            line,
            column,
            message,
        } => SourceError::new(file, format!("bad template: {message}")).at(raw, *line, *column),
        TemplateError::OverBudget { exhausted, line } => {
            let err = SourceError::new(file, exhausted.to_string());
            match line {
                Some(line) => err.at(raw, *line, 1),
                None => err,
            }
        }
    }
}

/// Turn a parser error into a positioned one; an unknown field or variant
/// gets the closest known name as a hint instead of the whole list.
pub(crate) fn yaml_error(file: &Path, text: &str, err: YamlError) -> SourceError {
    let said = err.to_string();
    let (message, help) = unknown_name_hint(&said).unwrap_or((said.clone(), None));
    let err_out = SourceError::new(file, message).with_help(help);
    match err.location {
        Some((line, column)) => err_out.at(text, line, column),
        None => err_out,
    }
}

/// serde reports "unknown field `x`, expected one of `a`, `b`"; rewrite it
/// as "unknown field `x`" plus "did you mean `a`?" (or the short list).
fn unknown_name_hint(message: &str) -> Option<(String, Option<String>)> {
    let unknown = UnknownName::parse(message)?;
    Some((unknown.message(), Some(unknown.help())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_flag_then_env_name_then_file() {
        let file = Path::new("/x/serviceset.prod.conf");
        let none = Vars::new([], []);
        let env = Vars::new([], [("ENV_NAME".into(), "vtctld".into())]);
        assert_eq!(serviceset_name(Some("a"), &env, file), "a");
        assert_eq!(serviceset_name(None, &env, file), "vtctld");
        assert_eq!(serviceset_name(None, &none, file), "serviceset.prod");
    }

    /// A value nested 100,000 deep overflowed the stack (exit 134) when it
    /// was printed, compared, or only dropped at the end of the render.
    #[test]
    fn a_value_nested_as_deep_as_the_budget_allows_does_not_overflow_the_stack() {
        let nest = "{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}";
        for tail in ["", "{{ ns.x|length }}", "{{ ns.x == ns.x }}", "{{ ns.x }}"] {
            let text = format!("web: {{docker: {{image: x, version: v1}}}}\n# {nest}{tail}\n");
            let parsed = parse(Path::new("deep.conf"), &text, &Vars::new([], []));
            assert!(parsed.is_ok(), "{tail}: {:?}", parsed.err());
        }
    }

    #[test]
    fn unknown_field_hint() {
        let (msg, help) = unknown_name_hint(
            "web.docker: unknown field `imgae`, expected one of `image`, `version`",
        )
        .unwrap();
        assert_eq!(msg, "unknown field `imgae` in `web.docker`");
        assert_eq!(help.as_deref(), Some("did you mean `image`?"));
    }
}
