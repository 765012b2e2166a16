//! `daemon` and `rollback`.

use std::process::ExitCode;

use super::session::abort_on_signal;
use crate::cli::args::{DaemonArgs, Global, RollbackArgs};
use crate::cli::{Outcome, UsageError};
use crate::daemon::{self, Options};

pub async fn daemon(g: &Global, args: &DaemonArgs) -> Outcome {
    let (stop, _signals) = abort_on_signal(|| {
        "repairs in flight are cut short (no container is stopped on the way out); the next `telefig daemon` repairs what is left".to_owned()
    });
    let opts = Options {
        state_dir: g.state_dir.clone(),
        unhealthy_budget: args.unhealthy_budget,
        once: args.once,
        metrics_listen: args.metrics_listen,
        metrics_file: args.metrics_file.clone(),
    };
    daemon::run(opts, stop).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(g: &Global, args: &RollbackArgs) -> Outcome {
    let state = crate::state::StateDir::new(&g.state_dir);
    if state.load(&args.name)?.is_none() {
        return Err(UsageError(format!(
            "no record of serviceset `{}` in {}",
            args.name,
            g.state_dir.display()
        ))
        .into());
    }
    super::converge::rollback(g, &args.name, args.timeout.timeout).await
}
