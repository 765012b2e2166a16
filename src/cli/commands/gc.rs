//! `telefig gc [--dry-run]`: the image cleanup of each recorded serviceset
//! (or `--name`'s) by hand — whatever may go goes now, the water marks
//! are for the cleanup after a start — through `ops::gc` (which takes the
//! serviceset's lock, so it waits for a `start` in progress); prints what
//! it decided, and a line on what it kept and why.

use std::process::ExitCode;

use super::session::Progress;
use crate::cli::Outcome;
use crate::cli::args::{GcArgs, Global};
use crate::cli::output::{out, outln, print_json};
use telefig::name::ServicesetName;
use telefig::ops::{self, Ctx};
use telefig::platform::Platform;
use telefig::state::StateDir;

pub async fn gc(g: &Global, args: &GcArgs) -> Outcome {
    let platform = Platform::load(g.platform.as_deref())?;
    let state = StateDir::new(&g.state_dir);
    let names: Vec<ServicesetName> = match &g.name {
        Some(n) => vec![n.clone()],
        None => state.list()?.into_iter().map(|r| r.serviceset).collect(),
    };
    // The removals are said once, in the summary below.
    let progress = Progress::new(true);
    let sink = |e| progress.record(e);
    let (abort, _signals) = progress.abort_on_signal();
    let options = ops::Options {
        timeout: args.timeout.timeout,
        no_drain: false,
    };
    let ctx = Ctx::connect(state, options, abort, &sink).await?;
    let mut plans = Vec::new();
    for name in names {
        let plan = ops::gc(&ctx, &name, platform.images, args.dry_run).await?;
        if !g.json {
            let verb = if args.dry_run {
                "would remove"
            } else {
                "removed"
            };
            out!("serviceset {name}: {plan}");
            outln!(
                "serviceset {name}: {verb} {} image(s); {}",
                plan.remove.len(),
                plan.kept_summary(platform.images.keep)
            );
        }
        plans.push(
            serde_json::json!({"serviceset": name.as_str(), "dry_run": args.dry_run, "plan": plan}),
        );
    }
    if g.json {
        print_json(&serde_json::Value::Array(plans))?;
    }
    Ok(ExitCode::SUCCESS)
}
