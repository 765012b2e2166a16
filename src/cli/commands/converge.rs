//! `start`, `restart` and `plan`: the commands that run the planner.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant as StdInstant;

use super::session::{Progress, Session, abort_on_signal, target};
use crate::cli::Outcome;
use crate::cli::args::{Global, PullPolicy, RestartArgs, StartArgs};
use crate::cli::load::load;
use crate::cli::output::print_json;
use crate::engine::execute::{self, Options, Report};
use crate::engine::pull::Policy;
use crate::engine::{Engine, Event};
use crate::plan::{self, Plan};
use crate::platform::CreateBody;
use crate::state::{Record, StateDir};

pub async fn start(g: &Global, args: &StartArgs) -> Outcome {
    let began = StdInstant::now();
    let loaded = load(g)?;
    let name = loaded.expanded.serviceset.clone();
    let session = Session::open(g, args.timeout.timeout, Some(&name)).await?;
    let observed = session.engine.list(None).await?;
    let plan = plan::plan(
        &loaded.expanded,
        &loaded.graph,
        &observed,
        &recorded_bodies(&session.state, &name),
    )?;
    let (abort, _signals) = abort_on_signal();
    let opts = Options {
        pull: policy(args.pull),
        deadline: session.deadline,
        abort,
    };
    let report = run(
        g,
        &session.engine,
        &loaded.expanded,
        &loaded.graph,
        &plan,
        &observed,
        opts,
    )
    .await?;
    if report.failure.is_none() {
        let vars = &loaded.vars;
        let record = Record::new(
            &loaded.file,
            &g.env,
            &loaded.expanded,
            vars.get("BUILD_COMMIT"),
            vars.get("DEPLOY_ID"),
        );
        session.state.save(&record)?;
    }
    finish(g, &plan, &report, began)
}

/// Re-apply the record before the current one, through the same path as `start`.
pub async fn rollback(g: &Global, name: &str, timeout: Option<std::time::Duration>) -> Outcome {
    let began = StdInstant::now();
    let session = Session::open(g, timeout, Some(name)).await?;
    let Some(mut previous) = session.state.previous(name)? else {
        return Err(crate::cli::UsageError(format!(
            "serviceset `{name}` has no earlier record to roll back to"
        ))
        .into());
    };
    let graph = crate::graph::Graph::build(&previous.expanded)?;
    let observed = session.engine.list(None).await?;
    let plan = plan::plan(
        &previous.expanded,
        &graph,
        &observed,
        &recorded_bodies(&session.state, name),
    )?;
    let (abort, _signals) = abort_on_signal();
    let opts = Options {
        pull: Policy::Missing,
        deadline: session.deadline,
        abort,
    };
    let report = run(
        g,
        &session.engine,
        &previous.expanded,
        &graph,
        &plan,
        &observed,
        opts,
    )
    .await?;
    if report.failure.is_none() {
        previous.applied_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        previous.stopped = false;
        session.state.save(&previous)?;
    }
    finish(g, &plan, &report, began)
}

pub async fn restart(g: &Global, args: &RestartArgs) -> Outcome {
    let began = StdInstant::now();
    let (expanded, graph) = target(g)?;
    if let Some(c) = &args.container
        && !graph.contains(c)
    {
        return Err(crate::cli::UsageError(format!(
            "`{c}` is not a container of serviceset `{}`; `telefig status --name {}` lists them",
            expanded.serviceset, expanded.serviceset
        ))
        .into());
    }
    let session = Session::open(g, args.timeout.timeout, Some(&expanded.serviceset)).await?;
    let observed = session.engine.list_serviceset(&expanded.serviceset).await?;
    let plan = plan::restart(&expanded, &graph, &observed, args.container.as_deref());
    let (abort, _signals) = abort_on_signal();
    let opts = Options {
        pull: Policy::Missing,
        deadline: session.deadline,
        abort,
    };
    let report = run(
        g,
        &session.engine,
        &expanded,
        &graph,
        &plan,
        &observed,
        opts,
    )
    .await?;
    session.state.set_stopped(&expanded.serviceset, false)?;
    finish(g, &plan, &report, began)
}

pub async fn plan(g: &Global) -> Outcome {
    let loaded = load(g)?;
    let engine = Engine::connect().await?;
    let observed = engine.list(None).await?;
    let state = StateDir::new(&g.state_dir);
    let plan = plan::plan(
        &loaded.expanded,
        &loaded.graph,
        &observed,
        &recorded_bodies(&state, &loaded.expanded.serviceset),
    )?;
    if g.json {
        print_json(&serde_json::json!({
            "plan": plan,
            "start_order": loaded.graph.start_order(),
            "stop_order": loaded.graph.stop_order(),
        }))?;
    } else {
        print!("{plan}");
        println!("start order: {}", loaded.graph.start_order().join(" → "));
        println!("stop order:  {}", loaded.graph.stop_order().join(" → "));
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

/// The create bodies the last `start` applied, to name changed fields.
fn recorded_bodies(state: &StateDir, serviceset: &str) -> BTreeMap<String, CreateBody> {
    state
        .load(serviceset)
        .ok()
        .flatten()
        .map(|r| {
            r.expanded
                .containers
                .into_iter()
                .map(|c| (c.name, c.create))
                .collect()
        })
        .unwrap_or_default()
}

async fn run(
    g: &Global,
    engine: &Engine,
    expanded: &crate::platform::Expanded,
    graph: &crate::graph::Graph,
    plan: &Plan,
    observed: &[crate::plan::Observed],
    opts: Options,
) -> anyhow::Result<Report> {
    let progress = Progress::new(g.json);
    let ticker = progress.ticker();
    let emit = |e: Event| progress.record(e);
    let report = execute::apply(engine, expanded, graph, plan, observed, opts, &emit).await;
    if let Some(t) = ticker {
        t.abort();
    }
    Ok(report?)
}

fn finish(g: &Global, plan: &Plan, report: &Report, began: StdInstant) -> Outcome {
    let millis = began.elapsed().as_millis();
    if g.json {
        print_json(
            &serde_json::json!({ "ok": report.failure.is_none(), "millis": millis, "report": report }),
        )?;
    } else if plan.is_noop() && report.failure.is_none() {
        println!(
            "serviceset {}: unchanged — {} ({millis} ms)",
            plan.serviceset,
            plan.summary()
        );
    } else if report.failure.is_none() {
        println!(
            "serviceset {}: up — {} ({millis} ms)",
            plan.serviceset,
            plan.summary()
        );
    }
    match &report.failure {
        None => Ok(ExitCode::SUCCESS),
        Some(why) => Err(anyhow::anyhow!(
            "serviceset {} did not converge: {why}",
            plan.serviceset
        )),
    }
}
