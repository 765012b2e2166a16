//! `start`, `restart`, `rollback` and `plan`: parse flags, load the file,
//! call `ops`, print.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use tokio::task::JoinHandle;

use super::session::{Progress, target};
use crate::cli::args::{Global, PullPolicy, RestartArgs, RollbackArgs, StartArgs};
use crate::cli::load::{load, request};
use crate::cli::output::{errln, out, outln, print_json};
use crate::cli::{Outcome, UsageError};
use telefig::engine::pull::Policy;
use telefig::ops::{self, Converged, Ctx};
use telefig::platform::paths::ResolvedPath;
use telefig::state::StateDir;

pub async fn start(g: &Global, args: &StartArgs) -> Outcome {
    let began = StdInstant::now();
    let progress = Progress::new(g.json);
    let sink = |e| progress.record(e);
    // The file is loaded on a blocking thread while this one connects, takes
    // the serviceset's lock (if free) and asks Docker what runs: the wait for
    // dockerd's answer and the parsing overlap. The file's errors still come
    // first.
    let (named_tx, named) = tokio::sync::oneshot::channel();
    let given = request(g);
    let loading = tokio::task::spawn_blocking(move || {
        ops::load::load_with(&given, |name| {
            let _ = named_tx.send(name.clone());
        })
    });
    let opened = open(g, args.timeout.timeout, &progress, &sink).await;
    let early = match (&opened, named.await) {
        (Ok((ctx, ..)), Ok(name)) => ctx.observe_early(&name, "start"),
        _ => None,
    };
    let loaded = loading
        .await
        .map_err(|e| anyhow::anyhow!("loading the serviceset file failed: {e}"))??;
    let (mut ctx, _signals, ticker) = opened?;
    if !g.json {
        crate::cli::load::say_resolved(&loaded);
    }
    let options = ops::StartOptions {
        pull: policy(args.pull),
    };
    let done = ops::start(&mut ctx, early, &loaded, options).await;
    stop_ticker(ticker);
    finish(g, &done?, began, &loaded.resolved)
}

pub async fn rollback(g: &Global, args: &RollbackArgs) -> Outcome {
    let began = StdInstant::now();
    let state = StateDir::new(&g.state_dir);
    if state.load(&args.name)?.is_none() {
        return Err(UsageError(format!(
            "no record of serviceset `{}` in {}",
            args.name,
            g.state_dir.display()
        ))
        .into());
    }
    let progress = Progress::new(g.json);
    let sink = |e| progress.record(e);
    let (mut ctx, _signals, ticker) = open(g, args.timeout.timeout, &progress, &sink).await?;
    let done = ops::rollback(&mut ctx, &args.name, &g.env, args.to.as_deref()).await;
    stop_ticker(ticker);
    finish(g, &done?, began, &[])
}

pub async fn restart(g: &Global, args: &RestartArgs) -> Outcome {
    let began = StdInstant::now();
    let progress = Progress::new(g.json);
    let sink = |e| progress.record(e);
    let target = target(g, &sink)?;
    let (mut ctx, _signals, ticker) = open(g, args.timeout.timeout, &progress, &sink).await?;
    let done = ops::restart(&mut ctx, &target, args.container.as_deref(), Some(&g.env)).await;
    stop_ticker(ticker);
    finish(g, &done?, began, &[])
}

pub async fn plan(g: &Global) -> Outcome {
    let loaded = load(g)?;
    crate::cli::load::say_resolved(&loaded);
    let options = ops::Options {
        timeout: None,
        no_drain: g.no_drain,
    };
    let abort = tokio::sync::watch::channel(false).1;
    let ctx = Ctx::connect(StateDir::new(&g.state_dir), options, abort, &|_| {}).await?;
    let plan = ops::preview(&ctx, &loaded).await?;
    if g.json {
        print_json(&serde_json::json!({
            "plan": plan,
            "start_order": loaded.graph.start_order(),
            "stop_order": loaded.graph.stop_order(),
        }))?;
    } else {
        out!("{plan}");
        outln!("start order: {}", loaded.graph.start_order().join(" → "));
        outln!("stop order:  {}", loaded.graph.stop_order().join(" → "));
    }
    Ok(ExitCode::SUCCESS)
}

fn policy(p: PullPolicy) -> Policy {
    match p {
        PullPolicy::Missing => Policy::Missing,
        PullPolicy::Always => Policy::Always,
        PullPolicy::Never => Policy::Never,
    }
}

/// Connect for a converging command: SIGTERM/SIGINT abort it (keep the
/// returned task alive), and a ticker notes slow gates (stop it with
/// [`stop_ticker`] before printing the outcome).
async fn open<'a>(
    g: &Global,
    timeout: Option<Duration>,
    progress: &Arc<Progress>,
    sink: ops::Sink<'a>,
) -> anyhow::Result<(Ctx<'a>, JoinHandle<()>, Option<JoinHandle<()>>)> {
    let (abort, signals) = progress.abort_on_signal();
    let options = ops::Options {
        timeout,
        no_drain: g.no_drain,
    };
    let ctx = Ctx::connect(StateDir::new(&g.state_dir), options, abort, sink).await?;
    Ok((ctx, signals, progress.ticker()))
}

fn stop_ticker(ticker: Option<JoinHandle<()>>) {
    if let Some(t) = ticker {
        t.abort();
    }
}

/// Print the outcome; `resolved`: the relative paths of the input and the
/// absolute ones used (in `--json`, its `resolved` field; else on stderr
/// as the file was loaded).
fn finish(g: &Global, done: &Converged, began: StdInstant, resolved: &[ResolvedPath]) -> Outcome {
    let Converged { plan, report } = done;
    let millis = began.elapsed().as_millis();
    if g.json {
        print_json(&serde_json::json!({
            "ok": report.failure.is_none(),
            "millis": millis,
            "report": report,
            "resolved": resolved,
        }))?;
    } else if plan.is_noop() && report.failure.is_none() {
        outln!(
            "serviceset {}: unchanged — {} ({millis} ms)",
            plan.serviceset,
            plan.summary()
        );
    } else if report.failure.is_none() {
        outln!(
            "serviceset {}: up — {} ({millis} ms)",
            plan.serviceset,
            plan.summary()
        );
    }
    // The evidence goes right above the last line: a deploy agent keeps
    // only the end of a hook's output.
    if !g.json && report.failure.is_some() {
        for line in report.evidence.iter().flat_map(|e| e.lines()) {
            errln!("{line}");
        }
    }
    match &report.failure {
        None => Ok(ExitCode::SUCCESS),
        Some(why) => Err(anyhow::anyhow!(
            "serviceset {} did not converge: {why}",
            plan.serviceset
        )),
    }
}
