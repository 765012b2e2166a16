//! Carrying out a drain: wait the period the plan gave, polling its check
//! (on the host, or `docker exec` in the container) until it passes or the
//! period ends. Whether a stop drains, and how, is `plan::drain`'s
//! decision; this only waits and reports what it saw.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::time::Instant;

use super::execute::Event;
use super::{Engine, Error};
use crate::plan::Drain;
use crate::platform::drain::{CheckPlace, DrainCheck};

/// How a drain ended, for the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainOutcome {
    /// No check: the whole period was waited.
    Waited,
    /// The check passed before the period ended.
    CheckPassed,
    /// The period ended before the check passed (the stop goes on).
    CheckNotPassed,
    /// `--no-drain`: not waited.
    Skipped,
}

impl DrainOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            DrainOutcome::Waited => "period over",
            DrainOutcome::CheckPassed => "check passed",
            DrainOutcome::CheckNotPassed => "check did not pass, stopping anyway",
            DrainOutcome::Skipped => "skipped (--no-drain)",
        }
    }
}

/// Drain `name` (container `id`) as `drain` says, then report it.
pub async fn drain(
    engine: &Engine,
    id: &str,
    name: &str,
    drain: &Drain,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    let began = Instant::now();
    let outcome = if drain.skipped {
        DrainOutcome::Skipped
    } else {
        // The operation's deadline bounds the drain too: the stop still
        // needs its grace period after it.
        let mut end = began + drain.period;
        if let Some(d) = engine.deadline() {
            end = end.min(d.at);
        }
        match &drain.check {
            None => {
                tokio::time::sleep_until(end).await;
                DrainOutcome::Waited
            }
            Some(check) => poll(engine, id, check, end).await,
        }
    };
    emit(Event::Drained {
        container: name.to_owned(),
        millis: began.elapsed().as_millis(),
        outcome,
    });
    Ok(())
}

async fn poll(engine: &Engine, id: &str, check: &DrainCheck, end: Instant) -> DrainOutcome {
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return DrainOutcome::CheckNotPassed;
        }
        let ran = tokio::time::timeout(left, run_check(engine, id, check)).await;
        if matches!(ran, Ok(true)) {
            return DrainOutcome::CheckPassed;
        }
        let next = (Instant::now() + check.interval).min(end);
        tokio::time::sleep_until(next).await;
    }
}

/// Whether the check exits 0. A check that cannot run has not passed.
async fn run_check(engine: &Engine, id: &str, check: &DrainCheck) -> bool {
    let Some((program, args)) = check.argv.split_first() else {
        return false;
    };
    match check.place {
        CheckPlace::Host => tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .is_ok_and(|s| s.success()),
        CheckPlace::Container => engine.exec_succeeds(id, &check.argv).await,
    }
}

impl Engine {
    /// `docker exec ID ARGV`: whether it ran and exited 0.
    async fn exec_succeeds(&self, id: &str, argv: &[String]) -> bool {
        let options = CreateExecOptions {
            cmd: Some(argv.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let Ok(exec) = self.docker.create_exec(id, options).await else {
            return false;
        };
        match self
            .docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await
        {
            Ok(StartExecResults::Attached { mut output, .. }) => {
                while output.next().await.is_some() {}
            }
            Ok(StartExecResults::Detached) => {}
            Err(_) => return false,
        }
        // The stream ends when the process does; its exit code follows.
        for _ in 0..50 {
            match self.docker.inspect_exec(&exec.id).await {
                Ok(r) if r.running == Some(true) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(r) => return r.exit_code == Some(0),
                Err(_) => return false,
            }
        }
        false
    }
}
