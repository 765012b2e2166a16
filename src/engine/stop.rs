//! Carrying out a [`StopPlan`]: `stop`, `down`, the daemon's re-gating.
//! Which containers, and whether each is removed, the plan decided; this
//! walks the graph in stop order over them, draining first where the plan
//! says (after the dependents, discovery, have stopped).

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::execute::Event;
use super::{Engine, Error};
use crate::graph::{Direction, Graph, Milestone};
use crate::plan::{StopAction, StopPlan};

/// Stop the plan's containers, dependents first, each with its own grace
/// period; independent ones at once, those the graph does not know
/// alongside. A container to remove is removed as soon as it has stopped
/// (its dependencies do not wait for that); one already stopped at once.
pub async fn stop_in_order(
    engine: &Engine,
    graph: &Graph,
    plan: &StopPlan,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    let to_stop = |name: &str| plan.get(name).filter(|a| a.stop);
    let mut walk = graph.walk_subset(Direction::Stop, |n| to_stop(n).is_some());
    let mut stops = FuturesUnordered::new();
    let mut removals = FuturesUnordered::new();
    for a in &plan.actions {
        if a.stop && !graph.contains(&a.container) {
            stops.push(stop_one(engine, a, emit));
        } else if !a.stop && a.remove {
            removals.push(remove_one(engine, a, emit));
        }
    }
    loop {
        for name in walk.ready() {
            let a = to_stop(&name).expect("walked nodes are in the plan");
            stops.push(stop_one(engine, a, emit));
        }
        tokio::select! {
            Some(done) = stops.next() => {
                let a = done?;
                walk.reach(&a.container, Milestone::Stopped);
                if a.remove {
                    removals.push(remove_one(engine, a, emit));
                }
            }
            Some(done) = removals.next() => done?,
            else => break,
        }
    }
    Ok(())
}

async fn stop_one<'a>(
    engine: &Engine,
    a: &'a StopAction,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<&'a StopAction, Error> {
    if let Some(d) = &a.drain {
        super::drain::drain(engine, &a.id, &a.container, d, emit).await?;
    }
    engine.stop(&a.id, &a.container).await?;
    emit(Event::Stopped {
        container: a.container.clone(),
    });
    Ok(a)
}

async fn remove_one(
    engine: &Engine,
    a: &StopAction,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    engine.remove(&a.id, &a.container).await?;
    emit(Event::Removed {
        container: a.container.clone(),
        why: "down".into(),
    });
    Ok(())
}
