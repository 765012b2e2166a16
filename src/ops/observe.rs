//! What a plan observes: Docker's one list call and, for the containers
//! `plan::to_read` names (updated in place earlier, or about to be), the
//! settings `docker update` changes, read by inspect.

use std::collections::HashSet;

use crate::engine::{self, Engine};
use crate::plan::{self, Observed};
use crate::platform::{Expanded, LABEL_SERVICESET};

/// Every container on the host, with what `plan::plan` needs to compare
/// them with `desired`.
pub async fn observe(engine: &Engine, desired: &Expanded) -> Result<Vec<Observed>, engine::Error> {
    let mut observed = engine.list(None).await?;
    read_updatable(engine, desired, &mut observed).await?;
    Ok(observed)
}

/// What a plan for `desired` looks at, without listing the whole host:
/// the serviceset's own containers (one list filtered by its label) and the
/// holder of each name it wants that none of them holds (one list filtered
/// by that name each), or, when more than [`FEW_LOOKUPS`] names are
/// unaccounted for, every container on the host ([`observe`]). The daemon's
/// repairs and a run's retries use it: each used to list every container
/// on the host, twice, so that what repairs at once held grew with the
/// host's size times their number (3 MiB of list answers for 20 repairs at
/// 100 containers, by a heap profile of a boot repair).
pub async fn observe_own(
    engine: &Engine,
    desired: &Expanded,
) -> Result<Vec<Observed>, engine::Error> {
    let label = format!("{LABEL_SERVICESET}={}", desired.serviceset);
    let mut observed = engine.list(Some(&label)).await?;
    let held: HashSet<&str> = observed.iter().map(|o| o.name.as_str()).collect();
    let missing: Vec<&str> = desired
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| !held.contains(n))
        .collect();
    if missing.len() > FEW_LOOKUPS {
        return observe(engine, desired).await;
    }
    let holders = futures_util::future::join_all(missing.iter().map(|n| engine.holder_of(n))).await;
    for holder in holders {
        observed.extend(holder?);
    }
    read_updatable(engine, desired, &mut observed).await?;
    Ok(observed)
}

/// Names [`observe_own`] looks up one by one before it lists the host instead.
const FEW_LOOKUPS: usize = 4;

/// Fill in `Observed::updatable` where the plan needs it. A container
/// removed since the list call is left without: the plan then recreates
/// it, and the executor finds it gone.
pub(super) async fn read_updatable(
    engine: &Engine,
    desired: &Expanded,
    observed: &mut [Observed],
) -> Result<(), engine::Error> {
    let ids = plan::to_read(desired, observed);
    if ids.is_empty() {
        return Ok(());
    }
    let reads =
        futures_util::future::join_all(ids.iter().map(|id| engine.read_updatable(id))).await;
    for (id, read) in ids.iter().zip(reads) {
        let updatable = match read {
            Ok(u) => u,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        if let Some(o) = observed.iter_mut().find(|o| o.id == *id) {
            o.updatable = Some(updatable);
        }
    }
    Ok(())
}
