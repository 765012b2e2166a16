//! `daemon`: run the daemon until SIGTERM/SIGINT.

use std::process::ExitCode;

use super::session::abort_on_signal;
use crate::cli::Outcome;
use crate::cli::args::{DaemonArgs, Global};
use telefig::daemon::{self, Options};

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
        docker_timeout: args.docker_timeout,
    };
    daemon::run(opts, stop).await?;
    Ok(ExitCode::SUCCESS)
}
