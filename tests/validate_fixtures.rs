//! `telefig validate` against files written to be wrong (tests/fixtures/bad)
//! and files written to be right (examples/*.conf). No Docker needed.
//!
//! Each bad fixture `NN-name.conf` has a sibling `NN-name.expect`: every
//! line of it must appear in stderr (the `file:line:col:` of the mistake,
//! the name involved, the "did you mean" hint). The binary runs with an
//! empty environment, so only the `-e` values given here are defined.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Far longer than any validate takes: one that hangs fails the test.
const LIMIT: Duration = Duration::from_secs(60);

/// The bad fixtures must cover at least this many distinct mistakes.
const MIN_BAD_FIXTURES: usize = 30;

/// Values for the variables an example's `# Needs:` line lists.
const EXAMPLE_VALUES: &[(&str, &str)] = &[
    ("BUILD_COMMIT", "abc1234"),
    ("START_ID", "0"),
    ("END_ID", "3"),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The built binary with no inherited environment (no BUILD_COMMIT,
/// ENV_NAME, DEPLOY_ID, START_ID, END_ID, TELEFIG_PLATFORM…), run from the
/// repository so messages name files by their relative path. The built-in
/// platform is used; should this host have /etc/telefig/platform.yaml, the
/// built-in file is passed explicitly so the host's file cannot leak in.
fn telefig() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_telefig"));
    cmd.current_dir(repo()).env_clear();
    if Path::new("/etc/telefig/platform.yaml").exists() {
        cmd.arg("--platform")
            .arg(repo().join("src/platform/default.yaml"));
    }
    cmd
}

fn validate(file: &Path, vars: &[(&str, &str)]) -> Output {
    let mut cmd = telefig();
    cmd.arg("validate").arg("-c").arg(file);
    for (k, v) in vars {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    support::output_within(&mut cmd, LIMIT)
}

/// `dir/*.<ext>`, relative to the repository, sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(repo().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| Path::new(dir).join(p.file_name().expect("a file name")))
        .collect();
    out.sort();
    out
}

fn bad_fixtures() -> Vec<PathBuf> {
    files("tests/fixtures/bad", "conf")
}

#[test]
fn every_bad_fixture_fails_with_its_expected_message() {
    let fixtures = bad_fixtures();
    let mut failures = Vec::new();
    for conf in &fixtures {
        let expect_path = repo().join(conf.with_extension("expect"));
        let expected = match fs::read_to_string(&expect_path) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!(
                    "{}: cannot read {}: {e}",
                    conf.display(),
                    expect_path.display()
                ));
                continue;
            }
        };
        let needles: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
        let out = validate(conf, &[("BUILD_COMMIT", "abc1234")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if needles.is_empty() {
            problems.push("the .expect file has no lines".to_owned());
        }
        if out.status.code() != Some(2) {
            problems.push(format!("exit status {} (want 2)", out.status));
        }
        if stderr.contains("panicked") {
            problems.push("telefig panicked".to_owned());
        }
        for needle in &needles {
            if !stderr.contains(needle) {
                problems.push(format!("stderr lacks {needle:?}"));
            }
        }
        // SPEC §6: the last line on stderr is a one-line summary.
        let last = stderr.lines().last().unwrap_or_default();
        if !last.starts_with("telefig: failed (exit 2): ") {
            problems.push(format!("last stderr line is not the summary: {last:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}:\n    {}\n  stderr:\n{}",
                conf.display(),
                problems.join("\n    "),
                indent(&stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad fixtures did not fail as expected:\n\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn there_are_enough_bad_fixtures_and_each_has_both_files() {
    let confs = bad_fixtures();
    assert!(
        confs.len() >= MIN_BAD_FIXTURES,
        "only {} bad fixtures in tests/fixtures/bad (want at least {MIN_BAD_FIXTURES})",
        confs.len()
    );
    let mut problems = Vec::new();
    for expect in files("tests/fixtures/bad", "expect") {
        if !repo().join(expect.with_extension("conf")).exists() {
            problems.push(format!("{} has no .conf", expect.display()));
        }
    }
    let mut numbers = Vec::new();
    for conf in &confs {
        let name = conf.file_name().unwrap().to_string_lossy().into_owned();
        match name.split_once('-') {
            Some((n, rest))
                if n.len() == 2 && n.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty() =>
            {
                if numbers.contains(&n.to_owned()) {
                    problems.push(format!("{name}: number {n} is used twice"));
                }
                numbers.push(n.to_owned());
            }
            _ => problems.push(format!("{name}: not named NN-short-name.conf")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The variables an example says it needs: the `-e KEY=` of its `# Needs:` line.
fn needed_vars(example: &Path) -> Vec<String> {
    let text = fs::read_to_string(repo().join(example)).expect("read the example");
    let needs = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("Needs:"))
        .unwrap_or_else(|| {
            panic!(
                "{}: the header comment has no `# Needs: -e KEY=…` line",
                example.display()
            )
        });
    needs
        .split("-e ")
        .skip(1)
        .filter_map(|part| part.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .collect()
}

fn example_values(names: &[String]) -> Vec<(&'static str, &'static str)> {
    names
        .iter()
        .map(|name| {
            *EXAMPLE_VALUES
                .iter()
                .find(|(k, _)| k == name)
                .unwrap_or_else(|| panic!("no test value for -e {name}; add it to EXAMPLE_VALUES"))
        })
        .collect()
}

#[test]
fn every_example_validates_with_the_values_its_header_lists() {
    let examples = files("examples", "conf");
    assert!(
        examples.len() >= 4,
        "expected the four examples, found {examples:?}"
    );
    let mut failures = Vec::new();
    for example in &examples {
        let needs = needed_vars(example);
        let values = example_values(&needs);
        let out = validate(example, &values);
        if !out.status.success() {
            failures.push(format!(
                "{} with {values:?}: exit {}\n{}",
                example.display(),
                out.status,
                indent(&String::from_utf8_lossy(&out.stderr))
            ));
        }
        // Every listed value is really needed: without it, validate names it.
        for (i, (name, _)) in values.iter().enumerate() {
            let fewer: Vec<_> = values
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, kv)| *kv)
                .collect();
            let out = validate(example, &fewer);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(2) || !stderr.contains(&format!("`{name}`")) {
                failures.push(format!(
                    "{} without -e {name}: exit {}, expected 2 naming `{name}`\n{}",
                    example.display(),
                    out.status,
                    indent(&stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
