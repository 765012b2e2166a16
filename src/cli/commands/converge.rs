//! `start`, `restart` and `plan`: the commands that run the planner.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
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
use crate::name::ServicesetName;
use crate::plan::ActionKind;
use crate::plan::{self, Observed, Plan};
use crate::platform::{ContainerSpec, Expanded};
use crate::state::{Record, StateDir, restore_secrets};

pub async fn start(g: &Global, args: &StartArgs) -> Outcome {
    let began = StdInstant::now();
    let loaded = load(g)?;
    let name = loaded.name.clone();
    let mut session = Session::open(g, args.timeout.timeout, Some(&name), "start").await?;
    let recorded = recorded_specs(&session.state, &name);
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
            &name,
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
    super::gc::after_start(g, &session, &name, &report).await;
    finish(g, &plan, &report, began)
}

/// Re-apply the record before the current one, through the same path as
/// `start`. It leaves the history only once the rollback succeeded.
pub async fn rollback(g: &Global, name: &ServicesetName, timeout: Option<Duration>) -> Outcome {
    let began = StdInstant::now();
    let mut session = Session::open(g, timeout, Some(name), "rollback").await?;
    let Some(previous) = session.state.previous(name)? else {
        return Err(UsageError(format!(
            "serviceset `{name}` has no earlier record to roll back to"
        ))
        .into());
    };
    let mut expanded = previous.record.expanded.clone();
    let graph = Graph::build(&expanded)?;
    let recorded = recorded_specs(&session.state, name);
    // The record keeps secret values as digests: take them back from the
    // containers running now, or from `-e`, matched by digest.
    let observed = session.engine.list(None).await?;
    let first = plan::plan(&expanded, &graph, &observed, &recorded)?;
    put_back_secrets(&session, g, name, &mut expanded, &first).await?;
    let (plan, report) = converge(
        g,
        &mut session,
        &expanded,
        &graph,
        Policy::Missing,
        |observed| plan::plan(&expanded, &graph, observed, &recorded),
    )
    .await?;
    if report.failure.is_none() {
        session.state.rolled_back(previous)?;
    }
    finish(g, &plan, &report, began)
}

/// A record keeps secret values as digests: before creating a container
/// from one, take the values back from the serviceset's containers (backups
/// included) or from `-e`, matched by digest; refuse if one is missing.
async fn put_back_secrets(
    session: &Session,
    g: &Global,
    name: &ServicesetName,
    expanded: &mut Expanded,
    plan: &Plan,
) -> anyhow::Result<()> {
    let creates: Vec<&str> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Recreate))
        .map(|a| a.container.as_str())
        .collect();
    if creates.is_empty() {
        return Ok(());
    }
    let mut candidates = session.engine.serviceset_env_values(name).await?;
    candidates.extend(g.env.iter().map(|(_, v)| v.clone()));
    let missing = restore_secrets(expanded, candidates.iter().map(String::as_str), |c| {
        creates.contains(&c)
    });
    if missing.is_empty() {
        return Ok(());
    }
    let err = crate::state::Error::SecretsNotStored {
        serviceset: name.clone(),
        missing,
    };
    Err(UsageError(format!("{err}; or pass each value again with -e KEY=VALUE")).into())
}

pub async fn restart(g: &Global, args: &RestartArgs) -> Outcome {
    let began = StdInstant::now();
    let (name, mut expanded, graph) = target(g)?;
    if let Some(c) = &args.container
        && !graph.contains(c)
    {
        return Err(UsageError(format!(
            "`{c}` is not a container of serviceset `{name}`; `telefig status --name {name}` lists them"
        ))
        .into());
    }
    let mut session = Session::open(g, args.timeout.timeout, Some(&name), "restart").await?;
    if g.config.is_none() {
        // From the record: a container to create needs its secret values back.
        let observed = session.engine.list(None).await?;
        let first = plan::restart(&expanded, &graph, &observed, args.container.as_deref());
        put_back_secrets(&session, g, &name, &mut expanded, &first).await?;
    }
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
    let progress = Progress::new(g.json);
    let (abort, _signals) = {
        let progress = progress.clone();
        abort_on_signal(move || progress.left())
    };
    let mut attempt = 1;
    loop {
        let outcome = async {
            let observed = session.engine.list(None).await?;
            let mut plan = plan_for(&observed)?;
            if g.no_drain {
                plan.skip_drain();
            }
            let opts = Options {
                pull,
                deadline: session.deadline,
                abort: abort.clone(),
            };
            let report = run(&progress, &session.engine, expanded, graph, &plan, opts).await?;
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
        let bound = session.engine.deadline();
        session.engine = reconnect(session.deadline).await?;
        if let Some(bound) = bound {
            session.engine = session.engine.with_deadline(bound);
        }
        attempt += 1;
    }
}

pub async fn plan(g: &Global) -> Outcome {
    let loaded = load(g)?;
    crate::cli::load::say_resolved(&loaded);
    let engine = Engine::connect().await?;
    let observed = engine.list(None).await?;
    let state = StateDir::new(&g.state_dir);
    let mut plan = plan::plan(
        &loaded.expanded,
        &loaded.graph,
        &observed,
        &recorded_specs(&state, &loaded.name),
    )?;
    if g.no_drain {
        plan.skip_drain();
    }
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

/// The containers the last `start` applied, to name changed fields.
fn recorded_specs(
    state: &StateDir,
    serviceset: &ServicesetName,
) -> BTreeMap<String, ContainerSpec> {
    state
        .load(serviceset)
        .ok()
        .flatten()
        .map(|r| {
            r.expanded
                .containers
                .into_iter()
                .map(|c| (c.name.clone(), c))
                .collect()
        })
        .unwrap_or_default()
}

async fn run(
    progress: &Arc<Progress>,
    engine: &Engine,
    expanded: &Expanded,
    graph: &Graph,
    plan: &Plan,
    opts: Options,
) -> Result<Report, crate::engine::Error> {
    let ticker = progress.ticker();
    let emit = |e: Event| progress.record(e);
    let report = execute::apply(engine, expanded, graph, plan, opts, &emit).await;
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
