//! Stopping in reverse order, and removing: `stop`, `down`, the daemon's
//! re-gating.

use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::execute::Event;
use super::{Engine, Error};
use crate::graph::{Direction, Graph, Milestone};
use crate::plan::{Observed, RunState};
use crate::platform::Expanded;

/// Grace period for containers the graph does not know (orphans, versions kept aside).
const STRAY_GRACE: Duration = Duration::from_secs(10);

/// Stop the serviceset's running containers, dependents first, each with
/// its grace period; independent ones at once. Containers the graph does
/// not know are stopped alongside. With `remove`, each container is removed
/// as soon as it has stopped (its dependencies do not wait for that), and
/// those already stopped are removed at once.
pub async fn stop_in_order(
    engine: &Engine,
    expanded: &Expanded,
    graph: &Graph,
    observed: &[Observed],
    remove: bool,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    let live = |o: &Observed| {
        !matches!(
            o.state,
            RunState::Exited | RunState::Created | RunState::Dead
        )
    };
    let find = |name: &str| observed.iter().find(|o| o.name == name && live(o));
    let mut walk = graph.walk_subset(Direction::Stop, |n| find(n).is_some());
    let mut stops = FuturesUnordered::new();
    let mut removals = FuturesUnordered::new();
    for o in observed {
        if !graph.contains(&o.name) && live(o) {
            stops.push(stop_one(engine, o, STRAY_GRACE, emit));
        } else if remove && !live(o) {
            removals.push(remove_one(engine, o, emit));
        }
    }
    loop {
        for name in walk.ready() {
            let o = find(&name).expect("walked nodes are running");
            let grace = expanded.get(&name).map_or(STRAY_GRACE, |c| c.stop_grace);
            stops.push(stop_one(engine, o, grace, emit));
        }
        tokio::select! {
            Some(done) = stops.next() => {
                let o = done?;
                walk.reach(&o.name, Milestone::Stopped);
                if remove {
                    removals.push(remove_one(engine, o, emit));
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
    o: &'a Observed,
    grace: Duration,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<&'a Observed, Error> {
    engine.stop(&o.id, &o.name, grace).await?;
    emit(Event::Stopped {
        container: o.name.clone(),
    });
    Ok(o)
}

async fn remove_one(
    engine: &Engine,
    o: &Observed,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    engine.remove(&o.id, &o.name).await?;
    emit(Event::Removed {
        container: o.name.clone(),
        why: "down".into(),
    });
    Ok(())
}
