//! What a plan observes: Docker's one list call and, for the containers
//! `plan::to_read` names (updated in place earlier, or about to be), the
//! settings `docker update` changes, read by inspect.

use crate::engine::{self, Engine};
use crate::plan::{self, Observed};
use crate::platform::Expanded;

/// Every container on the host, with what `plan::plan` needs to compare
/// them with `desired`.
pub async fn observe(engine: &Engine, desired: &Expanded) -> Result<Vec<Observed>, engine::Error> {
    let mut observed = engine.list(None).await?;
    read_updatable(engine, desired, &mut observed).await?;
    Ok(observed)
}

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
