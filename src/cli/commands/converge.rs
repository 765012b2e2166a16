//! `start`, `restart` and `plan`: the commands that run the planner.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant as StdInstant};

use super::session::{Progress, Session, abort_on_signal, target};
use crate::cli::args::{Global, PullPolicy, RestartArgs, StartArgs};
use crate::cli::load::load;
use crate::cli::output::print_json;
use crate::cli::{Outcome, UsageError};
use crate::engine::execute::{self, Options, Report};
use crate::engine::pull::Policy;
use crate::engine::{Engine, Event};
use crate::graph::Graph;
use crate::plan::{self, Observed, Plan};
use crate::platform::{CreateBody, Expanded};
use crate::state::{Record, StateDir};

pub async fn start(g: &Global, args: &StartArgs) -> Outcome {
    let began = StdInstant::now();
    let loaded = load(g)?;
    let name = loaded.expanded.serviceset.clone();
    let mut session = Session::open(g, args.timeout.timeout, Some(&name)).await?;
    let recorded = recorded_bodies(&session.state, &name);
    let (plan, report) = converge(
        g,
        &mut session,
        &loaded.expanded,
        &loaded.graph,
        policy(args.pull),
        |observed| plan::plan(&loaded.expanded, &loaded.graph, observed, &recorded),
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
        // A no-op start of the same deploy leaves the record (and its fsync) alone.
        let unchanged = plan.is_noop()
            && session
                .state
                .load(&name)?
                .is_some_and(|r| r.same_deploy(&record));
        if !unchanged {
            session.state.save(&record)?;
        }
    }
    finish(g, &plan, &report, began)
}

/// Re-apply the record before the current one, through the same path as `start`.
pub async fn rollback(g: &Global, name: &str, timeout: Option<Duration>) -> Outcome {
    let began = StdInstant::now();
    let mut session = Session::open(g, timeout, Some(name)).await?;
    let Some(mut previous) = session.state.previous(name)? else {
        return Err(UsageError(format!(
            "serviceset `{name}` has no earlier record to roll back to"
        ))
        .into());
    };
    let graph = Graph::build(&previous.expanded)?;
    let recorded = recorded_bodies(&session.state, name);
    let (plan, report) = converge(
        g,
        &mut session,
        &previous.expanded,
        &graph,
        Policy::Missing,
        |observed| plan::plan(&previous.expanded, &graph, observed, &recorded),
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
    let name = expanded.serviceset.clone();
    if let Some(c) = &args.container
        && !graph.contains(c)
    {
        return Err(UsageError(format!(
            "`{c}` is not a container of serviceset `{name}`; `telefig status --name {name}` lists them"
        ))
        .into());
    }
    let mut session = Session::open(g, args.timeout.timeout, Some(&name)).await?;
    let (plan, report) = converge(
        g,
        &mut session,
        &expanded,
        &graph,
        Policy::Missing,
        |observed| {
            Ok(plan::restart(
                &expanded,
                &graph,
                observed,
                args.container.as_deref(),
            ))
        },
    )
    .await?;
    session.state.set_stopped(&name, false)?;
    finish(g, &plan, &report, began)
}

/// One converge attempt's failure.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    #[error(transparent)]
    Plan(#[from] plan::Error),
}

/// Connect again, waiting for dockerd to come back (it restarts in seconds).
async fn reconnect(deadline: tokio::time::Instant) -> Result<Engine, crate::engine::Error> {
    let give_up = deadline.min(tokio::time::Instant::now() + Duration::from_secs(60));
    loop {
        match Engine::connect().await {
            Ok(engine) => return Ok(engine),
            Err(e) if tokio::time::Instant::now() >= give_up => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// How many times a converge is planned afresh after a Docker error that a
/// new look may resolve (a container that vanished or changed under us —
/// the work of a killed earlier run still finishing in dockerd — or dockerd
/// restarting).
const ATTEMPTS: u32 = 3;

/// List, plan, apply; on a transient Docker error, reconnect, re-list and
/// plan again. Everything before a gate is idempotent, so this converges.
async fn converge(
    g: &Global,
    session: &mut Session,
    expanded: &Expanded,
    graph: &Graph,
    pull: Policy,
    plan_for: impl Fn(&[Observed]) -> Result<Plan, plan::Error>,
) -> anyhow::Result<(Plan, Report)> {
    let (abort, _signals) = abort_on_signal();
    let mut attempt = 1;
    loop {
        let outcome = async {
            let observed = session.engine.list(None).await?;
            let plan = plan_for(&observed)?;
            let opts = Options {
                pull,
                deadline: session.deadline,
                abort: abort.clone(),
            };
            let report = run(g, &session.engine, expanded, graph, &plan, &observed, opts).await?;
            Ok::<_, AttemptError>((plan, report))
        }
        .await;
        let may_retry = attempt < ATTEMPTS && !*abort.borrow();
        let why = match outcome {
            Ok((_, report)) if report.retryable && may_retry => {
                format!(
                    "containers changed under this run: {}",
                    report.failure.unwrap_or_default()
                )
            }
            Ok(done) => return Ok(done),
            Err(AttemptError::Engine(e)) if e.is_transient() && may_retry => e.to_string(),
            Err(e) => return Err(e.into()),
        };
        eprintln!("retrying (attempt {} of {ATTEMPTS}): {why}", attempt + 1);
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        session.engine = reconnect(session.deadline).await?;
        attempt += 1;
    }
}

pub async fn plan(g: &Global) -> Outcome {
    let loaded = load(g)?;
    crate::cli::load::say_resolved(&loaded);
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
    expanded: &Expanded,
    graph: &Graph,
    plan: &Plan,
    observed: &[Observed],
    opts: Options,
) -> Result<Report, crate::engine::Error> {
    let progress = Progress::new(g.json);
    let ticker = progress.ticker();
    let emit = |e: Event| progress.record(e);
    let report = execute::apply(engine, expanded, graph, plan, observed, opts, &emit).await;
    if let Some(t) = ticker {
        t.abort();
    }
    report
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
