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
    let ctx = connect(g, args, &sink).await?;
    ops::stop(&ctx, &target).await?;
    outln!("serviceset {}: stopped", target.expanded.serviceset);
    Ok(ExitCode::SUCCESS)
}

pub async fn down(g: &Global, args: &TimeoutArgs) -> Outcome {
    let progress = Progress::new(false);
    let sink = |e| progress.record(e);
    let target = target(g, &sink)?;
    let ctx = connect(g, args, &sink).await?;
    let plan = ops::down(&ctx, &target).await?;
    outln!(
        "serviceset {}: down, {} containers removed",
        target.expanded.serviceset,
        plan.actions.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Connect for `stop` or `down`. They are not interrupted half-way: a
/// signal ends the process.
async fn connect<'a>(
    g: &Global,
    args: &TimeoutArgs,
    sink: ops::Sink<'a>,
) -> anyhow::Result<Ctx<'a>> {
    let options = ops::Options {
        timeout: args.timeout,
        no_drain: g.no_drain,
    };
    let never = tokio::sync::watch::channel(false).1;
    Ok(Ctx::connect(StateDir::new(&g.state_dir), options, never, sink).await?)
}
