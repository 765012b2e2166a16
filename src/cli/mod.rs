//! `cli`: thin commands over the pipeline — parse flags, call the library,
//! print, choose the exit code. Decisions live in `plan`, Docker calls in
//! `engine`; a command here only strings them together.

pub mod args;
mod commands;
mod load;
mod output;

use std::process::ExitCode;

pub use args::Cli;
use args::Command;
pub use output::printable;
pub use output::report_failure;

/// Bad input or usage; exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The outcome of a command that did not fail: 0, or 3 for `status` when
/// something is unhealthy.
pub type Outcome = anyhow::Result<ExitCode>;

pub async fn run(cli: Cli) -> Outcome {
    let g = &cli.global;
    learn_secrets(&cli.command, g);
    match &cli.command {
        Command::Validate => commands::validate(g),
        Command::Render(a) => commands::render(g, a),
        Command::Plan => commands::plan(g).await,
        Command::Start(a) => commands::start(g, a).await,
        Command::Stop(a) => commands::stop(g, a).await,
        Command::Down(a) => commands::down(g, a).await,
        Command::Gc(a) => commands::gc(g, a).await,
        Command::Restart(a) => commands::restart(g, a).await,
        Command::Status(a) => commands::status(g, a).await,
        Command::Logs(a) => commands::logs(g, a).await,
        Command::Events => commands::events(g).await,
        Command::Daemon(a) => commands::daemon(g, a).await,
        Command::Rollback(a) => commands::rollback(g, a).await,
        Command::History(a) => commands::history(g, a),
        Command::Doctor => commands::doctor(g).await,
        Command::Completions { shell } => commands::completions(*shell),
        Command::Man => commands::man(),
    }
}

/// Teach this process's output what is secret before anything is printed:
/// the secret variables of `-e` and the environment; for a command that
/// acts on what is recorded, the fingerprints in the state dir (a command
/// that reads a file learns the rest as it loads it: `load`).
fn learn_secrets(command: &Command, g: &args::Global) {
    telefig::redact::learn(&telefig::redact::Redactor::new(
        load::request(g).vars().secret_values(&[]),
    ));
    let from_file = matches!(
        command,
        Command::Validate | Command::Render(_) | Command::Plan | Command::Start(_)
    );
    let offline = matches!(command, Command::Completions { .. } | Command::Man);
    if !from_file && !offline {
        let state = telefig::state::StateDir::new(&g.state_dir);
        telefig::redact::learn(&state.recorded_secrets());
    }
}

/// Exit code for an error: 2 when the input was wrong, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let bad_input = err.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<telefig::diagnostic::LoadError>()
            || e.is::<telefig::graph::Error>()
            || e.is::<telefig::name::NameError>()
            || e.is::<telefig::ops::load::Error>()
            || e.is::<telefig::duration::Error>()
            || e.downcast_ref::<telefig::ops::Error>()
                .is_some_and(telefig::ops::Error::is_bad_input)
    });
    if bad_input { 2 } else { 1 }
}
