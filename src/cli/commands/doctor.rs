//! `telefig doctor`: runs the checks of [`telefig::doctor`] and prints one
//! line each (or `--json`). Exit 1 when a check failed, with a one-line
//! summary last on stderr (the deploy system shows only the tail).

use std::process::ExitCode;

use crate::cli::Outcome;
use crate::cli::args::Global;
use crate::cli::output::{errln, outln, paint, print_json};
use telefig::doctor::{self, Check, Status};

pub async fn doctor(g: &Global) -> Outcome {
    let checks = doctor::run(&g.state_dir, g.platform.as_deref()).await;
    if g.json {
        print_json(&checks)?;
    } else {
        for c in &checks {
            outln!("{}", line(c));
        }
    }
    let mut failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check)
        .collect();
    failed.dedup();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    errln!(
        "telefig: doctor: failed: {}; see the FAIL lines above",
        failed.join(", ")
    );
    Ok(ExitCode::from(1))
}

/// `ok   check: detail`, with ` — fix` when there is one.
fn line(c: &Check) -> String {
    let status = match c.status {
        Status::Ok => paint("ok  ", "32"),
        Status::Warn => paint("warn", "33"),
        Status::Fail => paint("FAIL", "31"),
    };
    match &c.fix {
        Some(fix) => format!("{status} {}: {} — {fix}", c.check, c.detail),
        None => format!("{status} {}: {}", c.check, c.detail),
    }
}
