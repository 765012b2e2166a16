//! The map in ARCHITECTURE.md, checked: each row of its invariants table
//! names one test here, and the layers (which module may import which) are
//! the [`LAYERS`] table below. Plain Rust over the text of `src/`: no
//! Docker, no `rg`, nothing to install.
//!
//! "Code" below is a file's production code: its text without its test
//! modules and whole-line comments; files that are test modules
//! themselves (`tests.rs`, a `tests/` folder) have none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first. A module may import only
/// modules of a lower layer, never one of its own layer or above: data
/// flows serviceset → platform → graph → plan, `engine` carries out a
/// plan, `ops` drives both, `cli` and `daemon` call `ops`.
const LAYERS: &[&[&str]] = &[
    // Leaves: each owns one small thing and imports no other module.
    &[
        "abort",
        "clock",
        "diagnostic",
        "disk",
        "duration",
        "failpoint",
        "name",
        "read",
        "redact",
        "yaml",
    ],
    &["serviceset"],
    &["platform"],
    &["graph"],
    &["plan", "export"],
    &["registry", "state"],
    &["engine"],
    &["ops", "doctor"],
    &["daemon"],
    &["cli"],
];

/// Files allowed past [`MAX_LINES`] before their tests, and why.
const LONG_FILES: &[(&str, &str)] = &[];

/// The most lines a file's production code may have.
const MAX_LINES: usize = 400;

struct Source {
    /// Relative to `src/`, with `/`: `engine/docker.rs`.
    path: String,
    text: String,
    /// Production code (see the module note).
    code: String,
}

impl Source {
    /// The top-level module the file belongs to: `engine` for
    /// `engine/docker.rs`, `graph` for `graph.rs`.
    fn module(&self) -> &str {
        let first = self.path.split('/').next().unwrap_or_default();
        first.strip_suffix(".rs").unwrap_or(first)
    }

    fn under(&self, prefix: &str) -> bool {
        self.path.starts_with(prefix)
    }
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    files
        .into_iter()
        .map(|file| {
            let path = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&file).unwrap();
            let is_test_file = path.ends_with("/tests.rs") || path.contains("/tests/");
            let code = if is_test_file {
                String::new()
            } else {
                production_code(&text)
            };
            Source { path, text, code }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's lines outside its test modules (`#[cfg(test)]` at column 0
/// and the item after it, to its closing `}` at column 0, as rustfmt
/// writes it), each `None` inside one so that line numbers hold.
fn outside_tests(text: &str) -> Vec<Option<&str>> {
    let mut lines = text.lines();
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        if line != "#[cfg(test)]" {
            out.push(Some(line));
            continue;
        }
        out.push(None);
        for inner in lines.by_ref() {
            out.push(None);
            let one_line_item = inner.ends_with(';') && !inner.starts_with(' ');
            if inner == "}" || one_line_item {
                break;
            }
        }
    }
    out
}

/// The production code: whole-line comments and test modules blanked.
fn production_code(text: &str) -> String {
    outside_tests(text)
        .into_iter()
        .map(|line| match line {
            Some(l) if !l.trim_start().starts_with("//") => l,
            _ => "",
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `path:line: text` for every line of code holding one of `needles`.
fn hits(source: &Source, needles: &[&str]) -> Vec<String> {
    source
        .code
        .lines()
        .enumerate()
        .filter(|(_, line)| needles.iter().any(|n| line.contains(n)))
        .map(|(i, line)| format!("src/{}:{}: {}", source.path, i + 1, line.trim()))
        .collect()
}

/// Every line of code, outside the files `allowed` says may, that holds one
/// of `needles`.
fn outside(needles: &[&str], allowed: impl Fn(&Source) -> bool) -> Vec<String> {
    sources()
        .iter()
        .filter(|s| !allowed(s))
        .flat_map(|s| hits(s, needles))
        .collect()
}

fn assert_none(what: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
}

#[test]
fn only_the_engine_imports_bollard() {
    assert_none(
        "bollard outside src/engine/",
        outside(&["bollard"], |s| s.under("engine/")),
    );
}

#[test]
fn only_the_registry_client_speaks_http_to_registries() {
    assert_none(
        "ureq outside src/registry/",
        outside(&["ureq"], |s| s.under("registry/")),
    );
}

#[test]
fn plan_does_no_io() {
    let io = [
        "std::fs",
        "std::net",
        "std::process",
        "tokio",
        "SystemTime::now",
        "Instant::now",
        "clock::",
        "engine::",
        "registry::",
        "state::",
    ];
    assert_none("I/O in src/plan/", outside(&io, |s| !s.under("plan/")));
}

#[test]
fn only_ops_writes_the_deploy_log() {
    assert_none(
        "save_deploy_log outside ops::journal and state",
        outside(&["save_deploy_log"], |s| {
            s.path == "ops/journal.rs" || s.under("state/")
        }),
    );
}

#[test]
fn only_ops_takes_the_host_lock() {
    let lock = [".lock(name", ".lock(&", ".lock(serviceset", "HostLock"];
    assert_none(
        "the host lock taken outside src/ops/ (src/state/ defines it)",
        outside(&lock, |s| s.under("ops/") || s.under("state/")),
    );
}

#[test]
fn cli_and_daemon_act_only_through_ops() {
    let acting = ["execute::", "stop_walk", "HostLock", "save_record"];
    assert_none(
        "cli or daemon carrying out a plan itself",
        outside(&acting, |s| !(s.under("cli/") || s.under("daemon/"))),
    );
    for caller in ["cli/", "daemon/"] {
        let calls = sources()
            .iter()
            .filter(|s| s.under(caller))
            .flat_map(|s| hits(s, &["ops::"]))
            .count();
        assert!(calls > 0, "src/{caller} calls no operation of ops");
    }
}

#[test]
fn progress_events_forward_the_plans_typed_reason() {
    assert_none(
        "a reason written as text in engine, ops or daemon",
        outside(&["reason.to_string()"], |s| {
            !(s.under("engine/") || s.under("ops/") || s.under("daemon/"))
        }),
    );
}

#[test]
fn engine_graph_and_plan_know_no_file_format_type() {
    assert_none(
        "a file-format type in engine, graph or plan",
        outside(&["serviceset::Condition", "serviceset::schema"], |s| {
            !(s.under("engine/") || s.path == "graph.rs" || s.under("plan/"))
        }),
    );
}

#[test]
fn anyhow_stays_in_cli_and_main() {
    assert_none(
        "anyhow in the library outside cli",
        outside(&["anyhow"], |s| s.under("cli/") || s.path == "main.rs"),
    );
}

#[test]
fn files_are_read_through_read() {
    assert_none(
        "a file read outside `read` (its own open file aside: state::lock)",
        outside(&["read_to_string", "fs::read("], |s| {
            s.path == "read.rs" || s.path == "state/lock.rs"
        }),
    );
}

#[test]
fn nothing_prints_but_the_output_module() {
    assert_none(
        "printing outside cli::output, main.rs and failpoint.rs",
        outside(&["println!", "print!(", "eprint", "dbg!"], |s| {
            ["cli/output.rs", "main.rs", "failpoint.rs"].contains(&s.path.as_str())
        }),
    );
}

#[test]
fn no_module_imports_one_above_it() {
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |m| (*m, i)))
        .collect();
    let mut wrong = Vec::new();
    for source in sources() {
        let from = source.module();
        if from == "lib" || from == "main" {
            continue;
        }
        let Some(&own) = layer_of.get(from) else {
            wrong.push(format!(
                "src/{}: module `{from}` has no layer in LAYERS",
                source.path
            ));
            continue;
        };
        for (line, to) in crate_paths(&source.code) {
            // Not a module: a macro or an item of the crate root.
            let Some(&theirs) = layer_of.get(to.as_str()) else {
                continue;
            };
            if to != from && theirs >= own {
                wrong.push(format!(
                    "src/{}:{line}: `{from}` (layer {own}) imports `{to}` (layer {theirs})",
                    source.path
                ));
            }
        }
    }
    assert_none("imports up or across the layers", wrong);
}

/// `(line, module)` for each `crate::module` in `code`, and each name at
/// the top level of `crate::{a, b::{c, d}}` (over several lines too).
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let line_at = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let start = at + "crate::".len();
        let after = &code[start..];
        let Some(group) = after.strip_prefix('{') else {
            found.push((line_at(at), ident(after)));
            continue;
        };
        let (mut depth, mut expect_name) = (0, true);
        for (j, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => expect_name = true,
                c if expect_name && depth == 0 && !c.is_whitespace() => {
                    found.push((line_at(start + 1 + j), ident(&group[j..])));
                    expect_name = false;
                }
                _ => {}
            }
        }
    }
    found
}

#[test]
fn import_paths_are_read_as_modules() {
    let code = "use crate::plan::gc;\nuse crate::{abort::aborted, graph::{Gate, Walk}};\n\
                x(crate::clock::now());\nuse crate::{\n    disk::Disk,\n    read,\n};";
    let names: Vec<(usize, String)> = crate_paths(code);
    let want = [
        (1, "plan"),
        (2, "abort"),
        (2, "graph"),
        (3, "clock"),
        (5, "disk"),
        (6, "read"),
    ];
    assert_eq!(
        names,
        want.map(|(l, m)| (l, m.to_owned())).to_vec(),
        "{code}"
    );
}

#[test]
fn test_modules_are_left_out_and_code_after_them_is_kept() {
    let text = "use a;\n#[cfg(test)]\nmod tests;\nfn b() {}\n#[cfg(test)]\nmod more {\n    fn t() {\n    }\n}\nfn c() {}";
    let kept: Vec<&str> = outside_tests(text).into_iter().flatten().collect();
    assert_eq!(kept, ["use a;", "fn b() {}", "fn c() {}"], "{text}");
}

#[test]
fn no_file_is_over_400_lines_before_its_tests() {
    let mut long = Vec::new();
    for source in sources() {
        let lines = outside_tests(&source.text).iter().flatten().count();
        let excused = LONG_FILES.iter().any(|(p, _)| *p == source.path);
        if lines > MAX_LINES && !excused {
            long.push(format!(
                "src/{}: {lines} lines; split it (a file past {MAX_LINES} is usually two things)",
                source.path
            ));
        }
    }
    assert_none("files over the limit", long);
}

#[test]
fn every_module_opens_with_a_note_of_what_it_owns() {
    let silent: Vec<String> = sources()
        .iter()
        .filter(|s| !s.path.ends_with("/tests.rs") && !s.path.contains("/tests/"))
        .filter(|s| !s.text.trim_start().starts_with("//!"))
        .map(|s| format!("src/{}", s.path))
        .collect();
    assert_none("modules without a `//!` note", silent);
}

#[test]
fn every_layer_names_a_module_that_exists_and_every_module_has_a_layer() {
    let modules: Vec<String> = {
        let mut m: Vec<String> = sources()
            .iter()
            .map(|s| s.module().to_owned())
            .filter(|m| m != "lib" && m != "main")
            .collect();
        m.dedup();
        m.sort();
        m.dedup();
        m
    };
    let mut listed: Vec<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter())
        .map(|m| m.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, modules, "LAYERS and the folders of src/ differ");
}

#[test]
fn each_invariant_in_architecture_md_names_a_test_here() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let this = std::fs::read_to_string(root.join("tests/architecture.rs")).unwrap();
    let table = map
        .split("## Invariants")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("ARCHITECTURE.md has an Invariants section");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| invariant"))
        .collect();
    assert!(rows.len() >= 10, "only {} invariants:\n{table}", rows.len());
    for row in rows {
        let test = row
            .rsplit('|')
            .nth(1)
            .and_then(|cell| cell.split('`').nth(1))
            .unwrap_or_else(|| panic!("row names no test in backticks: {row}"));
        assert!(
            this.contains(&format!("fn {test}()")),
            "ARCHITECTURE.md names `{test}`, which tests/architecture.rs lacks: {row}"
        );
    }
}

#[test]
fn the_readme_stays_short_and_points_nowhere_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines: move reference text to docs/ and link it"
    );
    for (i, line) in readme.lines().enumerate() {
        for link in line.split("](").skip(1) {
            let target = link.split(')').next().unwrap_or_default();
            assert!(
                !target.contains("://") && !target.starts_with("../"),
                "README.md:{}: `{target}` points outside the repository",
                i + 1
            );
        }
    }
}

#[test]
fn the_map_fits_on_one_screen() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let lines = map.lines().count();
    assert!(
        lines <= 60,
        "ARCHITECTURE.md has {lines} lines: it is the one-screen map; \
         move detail to docs/decisions.md or the module's own note"
    );
}

/// Where a `module::path` of the decision table leads: the deepest file or
/// folder of `src/` it names, and the rest of the path (symbols inside it).
fn resolve(src: &Path, path: &str) -> Option<(PathBuf, Vec<String>)> {
    let segments: Vec<&str> = path.split("::").collect();
    let mut found = None;
    for depth in 1..=segments.len() {
        let stem = segments[..depth].join("/");
        let file = src.join(format!("{stem}.rs"));
        let folder = src.join(&stem);
        if folder.is_dir() {
            found = Some((folder, depth));
        } else if file.is_file() {
            found = Some((file, depth));
        } else {
            break;
        }
    }
    let (place, depth) = found?;
    let rest = segments[depth..].iter().map(|s| s.to_string()).collect();
    Some((place, rest))
}

/// Whether the file, or a file under the folder, defines `word`: a function,
/// type, constant, module, field or enum variant of that name.
fn defines(place: &Path, word: &str) -> bool {
    let mut files = Vec::new();
    if place.is_dir() {
        walk(place, &mut files);
    } else {
        files.push(place.to_path_buf());
    }
    let kinds = [
        "fn ",
        "async fn ",
        "const fn ",
        "struct ",
        "enum ",
        "const ",
        "static ",
        "type ",
        "trait ",
        "mod ",
    ];
    files.iter().any(|f| {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        text.lines().any(|line| {
            let mut line = line.trim_start();
            for vis in ["pub(crate) ", "pub(super) ", "pub "] {
                line = line.strip_prefix(vis).unwrap_or(line);
            }
            let named = |rest: &str| {
                rest.strip_prefix(word).is_some_and(|tail| {
                    tail.is_empty() || tail.starts_with([':', '(', '<', ' ', ',', ';', '{'])
                })
            };
            // An item, or a field or variant (`word: …`, `Word {`, `Word,`).
            kinds
                .iter()
                .any(|k| line.strip_prefix(k).is_some_and(named))
                || named(line)
        })
    })
}

#[test]
fn every_module_and_symbol_the_decision_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let doc = std::fs::read_to_string(root.join("docs/decisions.md")).unwrap();
    let modules: Vec<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter())
        .map(|m| m.to_string())
        .collect();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        for (n, quoted) in line.split('`').enumerate() {
            let first = quoted.split("::").next().unwrap_or_default();
            if n % 2 == 0 || !quoted.contains("::") || !modules.iter().any(|m| m == first) {
                continue;
            }
            checked += 1;
            let ok = match resolve(&src, quoted) {
                Some((place, rest)) => rest.iter().all(|word| defines(&place, word)),
                None => false,
            };
            if !ok {
                missing.push(format!("docs/decisions.md:{}: `{quoted}`", i + 1));
            }
        }
    }
    assert!(checked >= 40, "only {checked} paths in docs/decisions.md");
    assert!(
        missing.is_empty(),
        "the decision table names what src/ lacks (renamed or moved?):\n{}",
        missing.join("\n")
    );
}
