//! `gc`: a serviceset's image cleanup, under its host lock, so that it
//! cannot race a `start` pulling or creating from those images. The same
//! path runs by hand (`telefig gc`: everything that may go goes), after a
//! `start` that changed something (`plan::gc::after_start`: only above the
//! high-water mark), and before a pull that does not fit (`ops::space`):
//! gather what `plan::gc` needs (the host's images, the images its
//! containers use, the records, the data root's use), let it decide,
//! remove what it chose and forget those in the state dir.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Converged, Ctx, Error, Event};
use crate::disk::Disk;
use crate::disk::disk_use;
use crate::name::ServicesetName;
use crate::plan::gc::{self, GcInput, GcPlan};
use crate::platform::GcPolicy;

/// What a cleanup runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cleanup {
    /// `telefig gc`: everything that may go, now (nothing with `dry_run`).
    ByHand { dry_run: bool },
    /// After a `start`: only above the high-water mark.
    AfterStart,
    /// Before a pull: until `need_free` bytes are free, whatever the marks.
    MakeRoom { need_free: u64 },
}

/// Decide the cleanup of `name`'s images by hand and, unless `dry_run`, do it.
pub async fn gc(
    ctx: &Ctx<'_>,
    name: &ServicesetName,
    policy: GcPolicy,
    dry_run: bool,
) -> Result<GcPlan, Error> {
    let _lock = ctx.lock(name, "gc", ctx.deadline).await?;
    cleanup(ctx, name, policy, Cleanup::ByHand { dry_run }).await
}

/// The cleanup itself; the caller holds `name`'s lock.
pub(super) async fn cleanup(
    ctx: &Ctx<'_>,
    name: &ServicesetName,
    policy: GcPolicy,
    why: Cleanup,
) -> Result<GcPlan, Error> {
    let engine = &ctx.engine;
    let images = engine.images().await?;
    let pulled = ctx.state.pulled(name)?;
    let others = ctx.state.pulled_by_others(name)?;
    let in_use = engine.images_in_use().await?;
    let versions: Vec<BTreeSet<String>> = ctx
        .state
        .load(name)?
        .into_iter()
        .chain(ctx.state.history(name)?)
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
    let plan = gc::gc(&GcInput {
        images: &images,
        pulled: &pulled,
        pulled_by_others: &others,
        in_use: &in_use,
        versions: &versions,
        disk,
        policy,
        need_free: match why {
            Cleanup::MakeRoom { need_free } => need_free,
            _ => 0,
        },
        by_hand: matches!(why, Cleanup::ByHand { .. }),
    });
    if why != (Cleanup::ByHand { dry_run: true }) {
        let mut removed = Vec::new();
        for r in &plan.remove {
            engine.remove_image(&r.reference).await?;
            (ctx.sink)(Event::ImageRemoved {
                reference: r.reference.clone(),
            });
            removed.push(r.reference.clone());
        }
        ctx.state.update_pulled(name, [], &removed)?;
    }
    Ok(plan)
}

/// After `start` (the caller holds the lock): remember what it pulled for
/// `name`; after one that succeeded and changed something, clean up. A
/// failure here is a warning: the deploy itself succeeded.
pub(super) async fn after_start(
    ctx: &Ctx<'_>,
    name: &ServicesetName,
    done: &Converged,
    policy: GcPolicy,
) {
    let pulled = &done.report.pulled;
    if !pulled.is_empty() {
        let references = pulled
            .iter()
            .flat_map(|p| [p.reference.clone(), p.from.clone()]);
        if let Err(e) = ctx.state.update_pulled(name, references, &[]) {
            (ctx.sink)(Event::Warning {
                message: format!("cannot note the pulled images of {name}: {e}"),
            });
        }
    }
    if !gc::after_start(&done.plan, done.ok()) {
        return;
    }
    if let Err(e) = cleanup(ctx, name, policy, Cleanup::AfterStart).await {
        (ctx.sink)(Event::Warning {
            message: format!("image cleanup of {name} failed: {e}"),
        });
    }
}
