//! `stop` and `down`: resolve the serviceset, call `ops`, print.

use std::process::ExitCode;

use super::session::{Progress, target};
use crate::cli::Outcome;
use crate::cli::args::{Global, TimeoutArgs};
use crate::cli::output::outln;
use telefig::ops::{self, Ctx};
use telefig::state::StateDir;

pub async fn stop(g: &Global, args: &TimeoutArgs) -> Outcome {
    let progress = Progress::new(false);
    let sink = |e| progress.record(e);
    let target = target(g, &sink)?;
    let ctx = Ctx::connect(
        StateDir::new(&g.state_dir),
        options(g, args),
        never(),
        &sink,
    )
    .await?;
    ops::stop(&ctx, &target).await?;
    outln!("serviceset {}: stopped", target.expanded.serviceset);
    Ok(ExitCode::SUCCESS)
}

pub async fn down(g: &Global, args: &TimeoutArgs) -> Outcome {
    let progress = Progress::new(false);
    let sink = |e| progress.record(e);
    let target = target(g, &sink)?;
    let ctx = Ctx::connect(
        StateDir::new(&g.state_dir),
        options(g, args),
        never(),
        &sink,
    )
    .await?;
    let plan = ops::down(&ctx, &target).await?;
    outln!(
        "serviceset {}: down, {} containers removed",
        target.expanded.serviceset,
        plan.actions.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn options(g: &Global, args: &TimeoutArgs) -> ops::Options {
    ops::Options {
        timeout: args.timeout,
        no_drain: g.no_drain,
    }
}

/// `stop` and `down` are not interrupted half-way: a signal ends the process.
fn never() -> tokio::sync::watch::Receiver<bool> {
    tokio::sync::watch::channel(false).1
}
