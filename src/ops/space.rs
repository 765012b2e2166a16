//! Room for a pull, before `start` touches anything: the images its plan
//! will pull (those not on the host, unless `--pull always`), their layers'
//! sizes from the registry (`registry::manifest`), the free space on Docker's
//! data root (statvfs: telefig runs on the Docker host). `plan::space`
//! decides: pull, clean up first (`ops::gc`, asked to free what the pull
//! needs), or refuse before any container is stopped or created. A size
//! the registry cannot tell, or a data root that cannot be read, is a
//! warning and the deploy goes on as it would without the check.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::gc::Cleanup;
use super::{Ctx, Error, Event};
use crate::disk::disk_use;
use crate::engine::pull::Policy;
use crate::name::ServicesetName;
use crate::plan::space::{self, Fit, Space};
use crate::plan::{ActionKind, Plan};
use crate::platform::GcPolicy;
use crate::platform::{Expanded, Image};
use crate::registry::manifest;

/// The longest the registries are asked for sizes before a pull.
const LOOKUP_BUDGET: Duration = Duration::from_secs(20);

/// Check that what `plan` pulls fits; clean up first if it does not.
pub(super) async fn make_room(
    ctx: &Ctx<'_>,
    name: &ServicesetName,
    expanded: &Expanded,
    plan: &Plan,
    pull: Policy,
    policy: GcPolicy,
) -> Result<(), Error> {
    if pull == Policy::Never {
        return Ok(());
    }
    let wanted: BTreeMap<&str, &Image> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Recreate))
        .filter_map(|a| expanded.get(&a.container))
        .map(|c| (c.image.reference.as_str(), &c.image))
        .collect();
    let mut to_pull = Vec::new();
    for image in wanted.into_values() {
        if pull == Policy::Always || !ctx.engine.image_present(&image.reference).await? {
            to_pull.push(image);
        }
    }
    if to_pull.is_empty() {
        return Ok(());
    }
    let warn = |message: String| (ctx.sink)(Event::Warning { message });
    let Some(root) = ctx.engine.data_root().await? else {
        warn("the Docker Engine does not say where its data root is: pulling without checking its free space".into());
        return Ok(());
    };
    let Some(free) = free_bytes(&root) else {
        warn(format!(
            "cannot read the free space of Docker's data root {root} (is the Docker Engine on another host?): pulling without checking it"
        ));
        return Ok(());
    };
    // The sizes are a courtesy to the deploy: they may take at most half
    // of what is left of its time (and 20 s), the pull needs the rest.
    let left = ctx
        .deadline
        .saturating_duration_since(tokio::time::Instant::now());
    let budget = (left / 2).min(LOOKUP_BUDGET);
    let until = std::time::Instant::now() + budget;
    let lookup = async {
        let mut layers = Vec::new();
        for image in &to_pull {
            layers.push(image_layers(image, until).await?);
        }
        Ok::<_, manifest::SizeUnknown>(layers)
    };
    let layers = match tokio::time::timeout(budget, lookup).await {
        Ok(Ok(layers)) => layers,
        Ok(Err(e)) => {
            warn(format!(
                "{e}; pulling without checking that it fits on {root}"
            ));
            return Ok(());
        }
        Err(_) => {
            warn(format!(
                "the registries did not tell the images' sizes within {} s; pulling without checking that they fit on {root}",
                budget.as_secs_f32()
            ));
            return Ok(());
        }
    };
    let present = ctx.engine.layers_present().await?;
    let download = space::download(&layers, &present);
    let first = Space::new(download, free, &root, &policy);
    let fit = space::fit(&first, false);
    (ctx.sink)(Event::PullSpace {
        space: first.clone(),
        fit,
    });
    if fit != Fit::CleanFirst {
        return Ok(());
    }
    let need_free = first.needed();
    let cleaned = super::gc::cleanup(ctx, name, policy, Cleanup::MakeRoom { need_free }).await?;
    let free = free_bytes(&root).unwrap_or(free);
    let after = Space::new(download, free, &root, &policy);
    match space::fit(&after, true) {
        Fit::Refuse => Err(Error::NoRoom {
            serviceset: name.clone(),
            space: after,
            removed: cleaned.remove.len(),
        }),
        fit => {
            (ctx.sink)(Event::PullSpace { space: after, fit });
            Ok(())
        }
    }
}

/// Bytes free to Docker on the file system holding `root`.
fn free_bytes(root: &str) -> Option<u64> {
    disk_use(Path::new(root)).map(|d| d.total.saturating_sub(d.used))
}

/// The layers of `image` from the first of its sources that answers, in
/// the order a pull tries them; the first source's failure otherwise.
async fn image_layers(
    image: &Image,
    until: std::time::Instant,
) -> Result<Vec<space::Layer>, manifest::SizeUnknown> {
    let mut first_error = None;
    for source in &image.sources {
        match manifest::layers(source, until).await {
            Ok(layers) => return Ok(layers),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| manifest::SizeUnknown {
        image: image.reference.clone(),
        registry: String::new(),
        why: "it has no source to pull from".into(),
    }))
}
