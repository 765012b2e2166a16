//! The stop walk: `stop`, `down`, the daemon's re-gating, and a start's
//! stops before it recreates or restarts. Which containers, whether each
//! drains first, and what follows its stop (kept aside, removed, nothing)
//! the plan decided; this walks the graph in stop order over them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::bounds::CONCURRENT_STOPS;
use super::execute::Event;
use super::{Engine, Error};
use crate::graph::{Direction, Graph, Milestone};
use crate::plan::{AfterStop, RemoveReason, StopAction};

/// Stop `actions`' containers, dependents first, each with its own grace
/// period (after its drain, if the plan gave one); independent ones
/// together, those the graph does not know alongside. A container kept
/// aside is renamed before its dependencies stop. With `abort`, no stop
/// begins once it is true. Returns, for each container kept aside, the id
/// of the one now aside.
///
/// Up to [`CONCURRENT_STOPS`] stops are under way at once (a drain waits
/// outside that bound); of the ready ones, the plan's longest chains go
/// first ([`StopAction::chain`]). Removals (`down`) wait until every stop
/// has begun, then go while the last stops finish: a removal is work for
/// dockerd that nothing waits for.
pub async fn stop_walk(
    engine: &Engine,
    graph: &Graph,
    actions: &[StopAction],
    abort: Option<&watch::Receiver<bool>>,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<HashMap<String, String>, Error> {
    let to_stop = |name: &str| actions.iter().position(|a| a.container == name && a.stop);
    let check_abort = || match abort {
        Some(a) if *a.borrow() => Err(Error::Interrupted),
        _ => Ok(()),
    };
    let mut walk = graph.walk_subset(Direction::Stop, |n| to_stop(n).is_some());
    // Ready stops: the longest chain first, then the plan's order.
    let mut ready: BinaryHeap<(usize, Reverse<usize>)> = BinaryHeap::new();
    let mut unstarted = actions.iter().filter(|a| a.stop).count();
    let mut removals_due: Vec<&StopAction> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        if a.stop && !graph.contains(&a.container) {
            ready.push((a.chain, Reverse(i)));
        } else if let (false, Some(_)) = (a.stop, a.removal()) {
            removals_due.push(a);
        }
    }
    let mut stops = FuturesUnordered::new();
    let mut removals = FuturesUnordered::new();
    let mut kept_aside = HashMap::new();
    // Stops under way that hold (or wait for) a stop permit, not a drain.
    let mut stopping = 0;
    loop {
        for name in walk.ready() {
            let i = to_stop(&name).expect("walked nodes are in the plan");
            ready.push((actions[i].chain, Reverse(i)));
        }
        while let Some(&(_, Reverse(i))) = ready.peek() {
            let a = &actions[i];
            if a.drain.is_none() && stopping >= CONCURRENT_STOPS {
                break;
            }
            ready.pop();
            check_abort()?;
            stopping += usize::from(a.drain.is_none());
            unstarted -= 1;
            stops.push(stop_one(engine, a, emit));
        }
        // Every stop has begun (or none can: nothing is under way).
        if unstarted == 0 || stops.is_empty() {
            for a in removals_due.drain(..) {
                let why = a.removal().expect("only removals are due");
                removals.push(remove_one(engine, a, why, emit));
            }
        }
        tokio::select! {
            Some(done) = stops.next() => {
                let a = done?;
                stopping -= usize::from(a.drain.is_none());
                walk.reach(&a.container, Milestone::Stopped);
                if a.removal().is_some() {
                    removals_due.push(a);
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
