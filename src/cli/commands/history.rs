//! `telefig history [NAME] [--json]`: every deploy of a serviceset (of
//! each in the state dir without a name), newest first, from `ops::history`.
//! Needs no Docker and no file. People get a table that fits 80 columns —
//! one line per operation, with its deploy id, slowest gate, what a repair
//! did and why it failed on indented lines under it; machines get `--json`.

use std::process::ExitCode;

use crate::cli::args::{Global, HistoryArgs};
use crate::cli::output::{out, outln, print_json};
use crate::cli::{Outcome, UsageError};
use telefig::diagnostic::did_you_mean;
use telefig::ops::history::{self, Entry, History};
use telefig::state::StateDir;

/// Where the lines under an entry begin (under RAN BY), and how wide a line may be.
const DETAIL_INDENT: usize = 20;
const WIDTH: usize = 80;
/// Commits are shown to this many characters (`rollback --to` takes a unique start).
const COMMIT_SHOWN: usize = 12;

pub fn history(g: &Global, args: &HistoryArgs) -> Outcome {
    let state = StateDir::new(&g.state_dir);
    // `--name` narrows as NAME does; ENV_NAME does not (as for `status`: an
    // operator on the host wants every serviceset).
    let name = match (&args.name, &g.name) {
        (Some(a), Some(b)) if a != b => {
            return Err(UsageError(format!(
                "two servicesets named: `{a}` and --name `{b}`; give one"
            ))
            .into());
        }
        (a, b) => a.as_ref().or(b.as_ref()),
    };
    let known = history::servicesets(&state);
    let names: Vec<String> = match name {
        Some(n) if known.iter().any(|k| k == n.as_str()) => vec![n.to_string()],
        Some(n) => return Err(UsageError(unknown(n.as_str(), &known, &state)).into()),
        None => known,
    };
    let mut histories = Vec::new();
    for n in &names {
        let n = telefig::name::ServicesetName::parse(n)?;
        histories.push(history::history(&state, &n)?);
    }
    if g.json {
        print_json(&serde_json::json!({ "servicesets": histories }))?;
    } else if histories.is_empty() {
        outln!(
            "no deploys recorded in {} (pass --state-dir if telefig keeps them elsewhere)",
            state.root().display()
        );
    } else {
        let texts: Vec<String> = histories.iter().map(render).collect();
        out!("{}", texts.join("\n"));
    }
    Ok(ExitCode::SUCCESS)
}

fn unknown(name: &str, known: &[String], state: &StateDir) -> String {
    let mut text = format!(
        "no deploy of serviceset `{name}` is recorded in {}",
        state.root().display()
    );
    match did_you_mean(name, known.iter().map(String::as_str)) {
        Some(hint) => text.push_str(&format!("; {hint}")),
        None if known.is_empty() => text.push_str("; it records none"),
        None => text.push_str(&format!("; it records: {}", known.join(", "))),
    }
    text
}

/// One serviceset's history as a table.
pub fn render(h: &History) -> String {
    let mut out = heading(h);
    if h.deploys.is_empty() {
        out.push_str("  no operations in the deploy log\n");
        return out;
    }
    out.push_str(&format!(
        "  {:<16}  {:<14}  {:<12}  {:<11}  {:>6}\n",
        "WHEN (UTC)", "RAN BY", "COMMIT", "RESULT", "TOOK"
    ));
    for e in &h.deploys {
        let mark = match (e.running, e.rollback_target) {
            (true, _) => '*',
            (false, true) => '<',
            _ => ' ',
        };
        let row = format!(
            "{mark} {:<16}  {:<14}  {:<12}  {:<11}  {:>6}",
            when(e.started_at_nanos),
            e.ran_by.as_str(),
            e.commit.as_deref().map_or("-", short),
            e.result.as_str(),
            e.duration_seconds.map_or("-".to_owned(), seconds),
        );
        out.push_str(row.trim_end());
        out.push('\n');
        for line in details(e) {
            out.push_str(&wrap(&line));
        }
    }
    if h.recorded.len() > 2 {
        let older: Vec<&str> = h.recorded[2..]
            .iter()
            .filter_map(|v| v.commit.as_deref())
            .map(short)
            .collect();
        if !older.is_empty() {
            out.push_str(&wrap_at(
                &format!(
                    "also recorded, for `rollback --to` while their images are here: {}",
                    older.join(", ")
                ),
                2,
            ));
        }
    }
    out
}

/// `shop: * running 3f9c2a1b7e4d, < rollback target 77aa01be33c2`
fn heading(h: &History) -> String {
    let commit = |v: &history::Version| v.commit.as_deref().map_or("(no commit)", short).to_owned();
    let running = match &h.running {
        Some(v) if v.stopped => format!("* current {} (stopped)", commit(v)),
        Some(v) => format!("* running {}", commit(v)),
        None => "no record: nothing running".to_owned(),
    };
    let target = match &h.rollback_target {
        Some(v) => format!("< rollback target {}", commit(v)),
        None => "no rollback target".to_owned(),
    };
    format!("{}: {running}, {target}\n", h.serviceset)
}

/// The lines under an entry: its deploy id and slowest gate, what a repair
/// did, and why it failed.
fn details(e: &Entry) -> Vec<String> {
    let mut first = Vec::new();
    if let Some(id) = &e.deploy_id {
        first.push(format!("deploy {id}"));
    }
    if let Some(g) = &e.slowest_gate {
        first.push(format!(
            "slowest gate {} {} {}",
            g.container,
            g.gate,
            seconds(g.seconds)
        ));
    }
    // Deploy id and slowest gate share a line when they fit on one.
    let mut lines: Vec<String> = Vec::new();
    for part in first {
        match lines.last_mut() {
            Some(line) if DETAIL_INDENT + line.len() + 2 + part.len() <= WIDTH => {
                line.push_str(", ");
                line.push_str(&part);
            }
            _ => lines.push(part),
        }
    }
    if !e.repaired.is_empty() {
        let what: Vec<String> = e
            .repaired
            .iter()
            .map(|r| format!("{} ({})", r.container, r.cause.replace('_', " ")))
            .collect();
        lines.push(format!("repaired {}", what.join(", ")));
    }
    if let Some(cause) = &e.failure_cause {
        lines.push(format!("cause: {cause}"));
    }
    lines
}

fn when(nanos: i64) -> String {
    jiff::Timestamp::from_second(nanos.div_euclid(1_000_000_000)).map_or_else(
        |_| "-".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

fn short(commit: &str) -> &str {
    match commit.char_indices().nth(COMMIT_SHOWN) {
        Some((at, _)) => &commit[..at],
        None => commit,
    }
}

fn seconds(s: f64) -> String {
    if s < 100.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

fn wrap(text: &str) -> String {
    wrap_at(text, DETAIL_INDENT)
}

/// `text` in lines of at most [`WIDTH`] columns, each indented `indent`
/// (a word longer than a line gets a line of its own).
fn wrap_at(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let fits = indent + line.chars().count() + 1 + word.chars().count() <= WIDTH;
        if !line.is_empty() && !fits {
            out.push_str(&format!("{pad}{line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{pad}{line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use telefig::state::{Deploy, DeployLog, GateWait, Operation, Outcome, Record, Repaired};

    const T0: i64 = 1_714_644_060 * 1_000_000_000; // 2024-05-02 10:01 UTC

    fn record(seq: u64, commit: &str, deploy_id: &str) -> Record {
        Record::fixture("shop", seq, commit, deploy_id)
    }

    fn deploy(op: Operation, minute: i64, commit: &str, result: Outcome) -> Deploy {
        let mut d = Deploy::new(op, T0 + minute * 60_000_000_000);
        d.commit = Some(commit.into());
        d.result = Some(result);
        d.duration_seconds = Some(4.25);
        d
    }

    fn gate(container: &str, seconds: f64) -> GateWait {
        GateWait {
            container: container.into(),
            gate: "healthy".into(),
            seconds,
        }
    }

    /// Three deploys, one that failed and was rolled back, a daemon repair,
    /// then a rollback to the first: the golden table.
    #[test]
    fn a_history_reads_well_on_80_columns() {
        let c1 = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b";
        let c2 = "2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";
        let c3 = "3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
        let c4 = "4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e";
        let mut log = DeployLog::default();
        let mut first = deploy(Operation::Start, 0, c1, Outcome::Succeeded);
        first.deploy_id = Some("Ot5PbsFYR8mgJ-HdRObV4A".into());
        first.record_seq = Some(1);
        first.gates = vec![gate("shop-web-logging", 0.12), gate("shop-web", 8.1)];
        let mut second = deploy(Operation::Start, 40, c2, Outcome::Succeeded);
        second.record_seq = Some(2);
        let mut third = deploy(Operation::Start, 95, c3, Outcome::Succeeded);
        third.record_seq = Some(3);
        third.duration_seconds = Some(312.0);
        third.slowest_gate = Some(gate("shop-web", 61.5));
        let mut failed = deploy(Operation::Start, 24 * 60 + 24, c4, Outcome::RolledBack);
        failed.deploy_id = Some("d-4".into());
        failed.failed = vec!["shop-web".into()];
        failed.rollback_passed = Some(true);
        failed.gates = vec![gate("shop-web", 3.0)]; // the version put back
        let mut repair = deploy(Operation::Repair, 24 * 60 + 25, c3, Outcome::Succeeded);
        repair.repaired = vec![Repaired {
            container: "shop-web-metrics".into(),
            cause: "not_running".into(),
        }];
        let mut back = deploy(Operation::Rollback, 24 * 60 + 26, c1, Outcome::Succeeded);
        back.record_seq = Some(4);
        let mut cut = deploy(Operation::Start, 24 * 60 + 27, c4, Outcome::Failed);
        cut.error = Some(format!(
            "could not pull registry.internal/shop/web:{c4}: manifest unknown; check the registries in the platform file and that the tag exists"
        ));
        for d in [first, second, third, failed, repair, back, cut] {
            log.begin(d);
        }
        let h = history::build(
            "shop",
            &log,
            Some(&record(4, c1, "Ot5PbsFYR8mgJ-HdRObV4A")),
            &[record(3, c3, "d-3"), record(2, c2, "d-2")],
        );
        let text = render(&h);
        let golden = "\
shop: * running 1a2b3c4d5e6f, < rollback target 3c4d5e6f7a8b
  WHEN (UTC)        RAN BY          COMMIT        RESULT         TOOK
  2024-05-03 10:28  start           4d5e6f7a8b9c  failed        4.2 s
                    cause: could not pull
                    registry.internal/shop/web:4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e:
                    manifest unknown; check the registries in the platform file
                    and that the tag exists
* 2024-05-03 10:27  rollback        1a2b3c4d5e6f  succeeded     4.2 s
  2024-05-03 10:26  daemon repair   3c4d5e6f7a8b  succeeded     4.2 s
                    repaired shop-web-metrics (not running)
  2024-05-03 10:25  start           4d5e6f7a8b9c  rolled back   4.2 s
                    deploy d-4
                    cause: shop-web failed; the previous version was put back
                    and passed its gate
< 2024-05-02 11:36  start           3c4d5e6f7a8b  succeeded     312 s
                    slowest gate shop-web healthy 61.5 s
  2024-05-02 10:41  start           2b3c4d5e6f7a  succeeded     4.2 s
  2024-05-02 10:01  start           1a2b3c4d5e6f  succeeded     4.2 s
                    deploy Ot5PbsFYR8mgJ-HdRObV4A
                    slowest gate shop-web healthy 8.1 s
  also recorded, for `rollback --to` while their images are here: 2b3c4d5e6f7a
";
        assert_eq!(text, golden, "\n{text}");
        for line in text.lines() {
            // Only a word longer than a line may run over.
            assert!(
                line.chars().count() <= WIDTH || line.split_whitespace().count() == 1,
                "over {WIDTH} columns: {line}"
            );
        }
    }

    #[test]
    fn a_serviceset_without_record_or_entries_says_so() {
        let h = history::build("shop", &DeployLog::default(), None, &[]);
        assert_eq!(
            render(&h),
            "shop: no record: nothing running, no rollback target\n  no operations in the deploy log\n"
        );
    }
}
