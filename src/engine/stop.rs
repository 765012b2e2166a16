//! Stopping in reverse order, and removing: `stop`, `down`.

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::execute::Event;
use super::{Engine, Error};
use crate::graph::{Direction, Graph, Milestone};
use crate::plan::{Observed, RunState};
use crate::platform::Expanded;

/// Stop the serviceset's running containers, dependents first, each with
/// its grace period; independent ones at once. Containers the graph does
/// not know (orphans, versions kept aside) are stopped last.
pub async fn stop_in_order(
    engine: &Engine,
    expanded: &Expanded,
    graph: &Graph,
    observed: &[Observed],
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    let live = |o: &&Observed| {
        !matches!(
            o.state,
            RunState::Exited | RunState::Created | RunState::Dead
        )
    };
    let running: Vec<&Observed> = observed.iter().filter(live).collect();
    let find = |name: &str| running.iter().find(|o| o.name == name).copied();
    let mut walk = graph.walk_subset(Direction::Stop, |n| find(n).is_some());
    let mut in_flight = FuturesUnordered::new();
    loop {
        for name in walk.ready() {
            let o = find(&name).expect("walked nodes are running");
            let grace = expanded
                .get(&name)
                .map_or(std::time::Duration::from_secs(10), |c| c.stop_grace);
            in_flight.push(async move {
                engine.stop(&o.id, &name, grace).await?;
                emit(Event::Stopped {
                    container: name.clone(),
                });
                Ok::<_, Error>(name)
            });
        }
        match in_flight.next().await {
            None => break,
            Some(done) => walk.reach(&done?, Milestone::Stopped),
        }
    }
    let strays = running
        .iter()
        .filter(|o| !graph.contains(&o.name))
        .map(|o| async move {
            engine
                .stop(&o.id, &o.name, std::time::Duration::from_secs(10))
                .await?;
            emit(Event::Stopped {
                container: o.name.clone(),
            });
            Ok::<_, Error>(())
        });
    futures_util::future::try_join_all(strays).await?;
    Ok(())
}

/// Remove every container in `observed` (already stopped), all at once.
pub async fn remove_all(
    engine: &Engine,
    observed: &[Observed],
    emit: &(dyn Fn(Event) + Sync),
) -> Result<(), Error> {
    let removals = observed.iter().map(|o| async move {
        engine.remove(&o.id, &o.name).await?;
        emit(Event::Removed {
            container: o.name.clone(),
            why: "down".into(),
        });
        Ok::<_, Error>(())
    });
    futures_util::future::try_join_all(removals)
        .await
        .map(|_| ())
}
