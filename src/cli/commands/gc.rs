//! `telefig gc [--dry-run]`, and the cleanup after a successful `start`:
//! gather what `plan::gc` needs (images, containers, records, disk use),
//! let it decide, remove what it chose, and forget those in the state dir.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::Outcome;
use crate::cli::args::{GcArgs, Global};
use crate::cli::output::print_json;
use crate::engine::Engine;
use crate::engine::images::disk_use;
use crate::name::ServicesetName;
use crate::plan::gc::{Disk, GcInput, GcPlan, GcPolicy, gc as decide};
use crate::platform::Platform;
use crate::state::StateDir;

/// Decide the cleanup of `name`'s images and, unless `dry_run`, do it.
pub async fn cleanup(
    engine: &Engine,
    state: &StateDir,
    name: &ServicesetName,
    policy: GcPolicy,
    dry_run: bool,
) -> anyhow::Result<GcPlan> {
    let images = engine.images().await?;
    let pulled = state.pulled(name)?;
    let others = state.pulled_by_others(name)?;
    let in_use = engine.images_in_use().await?;
    let versions: Vec<_> = state
        .load(name)?
        .into_iter()
        .chain(state.history(name)?)
        .map(|r| {
            r.expanded
                .containers
                .iter()
                .map(|c| c.image.reference.clone())
                .collect()
        })
        .collect();
    let disk = engine
        .data_root()
        .await?
        .and_then(|root| disk_use(Path::new(&root)))
        .unwrap_or(Disk { used: 0, total: 0 });
    let plan = decide(&GcInput {
        images: &images,
        pulled: &pulled,
        pulled_by_others: &others,
        in_use: &in_use,
        versions: &versions,
        disk,
        policy,
    });
    if !dry_run {
        let mut removed = Vec::new();
        for r in &plan.remove {
            engine.remove_image(&r.reference).await?;
            removed.push(r.reference.clone());
        }
        state.update_pulled(name, [], &removed)?;
    }
    Ok(plan)
}

pub async fn gc(g: &Global, args: &GcArgs) -> Outcome {
    let platform = Platform::load(g.platform.as_deref())?;
    let state = StateDir::new(&g.state_dir);
    let names: Vec<ServicesetName> = match &g.name {
        Some(n) => vec![n.clone()],
        None => state.list()?.into_iter().map(|r| r.serviceset).collect(),
    };
    let engine = Engine::connect().await?;
    let mut plans = Vec::new();
    for name in names {
        let plan = cleanup(&engine, &state, &name, platform.images, args.dry_run).await?;
        if !g.json {
            let verb = if args.dry_run {
                "would remove"
            } else {
                "removed"
            };
            print!("serviceset {name}: {plan}");
            println!("serviceset {name}: {verb} {} image(s)", plan.remove.len());
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

/// After `start`: remember what it pulled for `name`; after a successful
/// one, clean up. A cleanup failure is a warning: the deploy succeeded.
pub async fn after_start(
    g: &Global,
    engine: &Engine,
    state: &StateDir,
    name: &ServicesetName,
    done: &crate::ops::Converged,
) {
    let report = &done.report;
    let pulled = report
        .pulled
        .iter()
        .flat_map(|p| [p.reference.clone(), p.from.clone()]);
    if !report.pulled.is_empty()
        && let Err(e) = state.update_pulled(name, pulled, &[])
    {
        eprintln!("warning: cannot note the pulled images of {name}: {e}");
    }
    if !crate::plan::gc::after_start(&done.plan, done.ok()) {
        return;
    }
    let policy = match Platform::load(g.platform.as_deref()) {
        Ok(p) => p.images,
        Err(_) => GcPolicy::default(),
    };
    match cleanup(engine, state, name, policy, false).await {
        Ok(_) if g.json => {}
        Ok(plan) => {
            for r in &plan.remove {
                println!("removed    image {} (image cleanup)", r.reference);
            }
        }
        Err(e) => eprintln!("warning: image cleanup of {name} failed: {e:#}"),
    }
}
