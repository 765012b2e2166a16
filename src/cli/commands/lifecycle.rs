//! `stop` and `down`: `plan` picks the containers, the engine stops them in
//! reverse order, each with its own grace period.

use std::process::ExitCode;

use super::session::{Session, print_event, target};
use crate::cli::Outcome;
use crate::cli::args::{Global, TimeoutArgs};
use crate::engine::Event;
use crate::engine::stop::stop_in_order;
use crate::plan;

pub async fn stop(g: &Global, args: &TimeoutArgs) -> Outcome {
    let (name, expanded, graph) = target(g)?;
    let session = Session::open(g, args.timeout, Some(&name), "stop").await?;
    let observed = session.engine.list_serviceset(&expanded.serviceset).await?;
    let plan = plan::stop(&expanded.serviceset, &graph, &observed, false)
        .with_drain(Some(&expanded), g.no_drain);
    let emit = |e: Event| print_event(&e);
    stop_in_order(&session.engine, &graph, &plan, &emit).await?;
    session.state.set_stopped(&name, true)?;
    println!("serviceset {}: stopped", expanded.serviceset);
    Ok(ExitCode::SUCCESS)
}

pub async fn down(g: &Global, args: &TimeoutArgs) -> Outcome {
    let (name, expanded, graph) = target(g)?;
    let session = Session::open(g, args.timeout, Some(&name), "down").await?;
    let observed = session.engine.list_serviceset(&expanded.serviceset).await?;
    let plan = plan::stop(&expanded.serviceset, &graph, &observed, true)
        .with_drain(Some(&expanded), g.no_drain);
    let emit = |e: Event| print_event(&e);
    stop_in_order(&session.engine, &graph, &plan, &emit).await?;
    session.state.remove(&name)?;
    println!(
        "serviceset {}: down, {} containers removed",
        expanded.serviceset,
        plan.actions.len()
    );
    Ok(ExitCode::SUCCESS)
}
