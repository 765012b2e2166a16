//! The stop walk: `stop`, `down`, the daemon's re-gating, and a start's
//! stops before it recreates or restarts. Which containers, whether each
//! drains first, and what follows its stop (kept aside, removed, nothing)
//! the plan decided; this walks the graph in stop order over them.

use std::collections::HashMap;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::execute::Event;
use super::{Engine, Error};
use crate::graph::{Direction, Graph, Milestone};
use crate::plan::{AfterStop, RemoveReason, StopAction};

/// Stop `actions`' containers, dependents first, each with its own grace
/// period (after its drain, if the plan gave one); independent ones at
/// once, those the graph does not know alongside. A container kept aside
/// is renamed before its dependencies stop; one to remove is removed as
/// soon as it has stopped (its dependencies do not wait for that), one
/// already stopped at once. With `abort`, no stop begins once it is true.
/// Returns, for each container kept aside, the id of the one now aside.
pub async fn stop_walk(
    engine: &Engine,
    graph: &Graph,
    actions: &[StopAction],
    abort: Option<&watch::Receiver<bool>>,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<HashMap<String, String>, Error> {
    let to_stop = |name: &str| actions.iter().find(|a| a.container == name && a.stop);
    let check_abort = || match abort {
        Some(a) if *a.borrow() => Err(Error::Interrupted),
        _ => Ok(()),
    };
    let mut walk = graph.walk_subset(Direction::Stop, |n| to_stop(n).is_some());
    let mut stops = FuturesUnordered::new();
    let mut removals = FuturesUnordered::new();
    for a in actions {
        if a.stop && !graph.contains(&a.container) {
            check_abort()?;
            stops.push(stop_one(engine, a, emit));
        } else if let (false, Some(why)) = (a.stop, a.removal()) {
            removals.push(remove_one(engine, a, why, emit));
        }
    }
    let mut kept_aside = HashMap::new();
    loop {
        for name in walk.ready() {
            let a = to_stop(&name).expect("walked nodes are in the plan");
            check_abort()?;
            stops.push(stop_one(engine, a, emit));
        }
        tokio::select! {
            Some(done) = stops.next() => {
                let a = done?;
                walk.reach(&a.container, Milestone::Stopped);
                if let Some(why) = a.removal() {
                    removals.push(remove_one(engine, a, why, emit));
                } else if let AfterStop::KeepAside { .. } = &a.then {
                    kept_aside.insert(a.container.clone(), a.id.clone());
                }
            }
            Some(done) = removals.next() => done?,
            else => break,
        }
    }
    Ok(kept_aside)
}

/// Drain (if the plan says), stop, and rename aside (if the plan says).
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
    if let AfterStop::KeepAside { aside } = &a.then {
        engine.rename(&a.id, aside).await?;
        emit(Event::KeptAside {
            container: a.container.clone(),
            aside: aside.clone(),
        });
    }
    Ok(a)
}

async fn remove_one(
    engine: &Engine,
    a: &StopAction,
    why: RemoveReason,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    engine.remove(&a.id, &a.container).await?;
    emit(Event::Removed {
        container: a.container.clone(),
        why,
    });
    Ok(())
}
