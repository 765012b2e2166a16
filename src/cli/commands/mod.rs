//! One function per subcommand; each is a few calls into the library.

mod offline;

pub use offline::{completions, man, render, validate};

use super::Outcome;
use super::args::{Global, LogsArgs, RestartArgs, StartArgs, TimeoutArgs};

fn not_yet(what: &str) -> Outcome {
    Err(anyhow::anyhow!(
        "`telefig {what}` is not available in this build"
    ))
}

pub async fn plan(_: &Global) -> Outcome {
    not_yet("plan")
}
pub async fn start(_: &Global, _: &StartArgs) -> Outcome {
    not_yet("start")
}
pub async fn stop(_: &Global, _: &TimeoutArgs) -> Outcome {
    not_yet("stop")
}
pub async fn down(_: &Global, _: &TimeoutArgs) -> Outcome {
    not_yet("down")
}
pub async fn restart(_: &Global, _: &RestartArgs) -> Outcome {
    not_yet("restart")
}
pub async fn status(_: &Global) -> Outcome {
    not_yet("status")
}
pub async fn logs(_: &Global, _: &LogsArgs) -> Outcome {
    not_yet("logs")
}
