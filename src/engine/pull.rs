//! Pulling: every image a plan needs, in parallel, before anything changes.
//!
//! Each image is tried at its primary reference, then at each mirror; an
//! image served by a mirror is tagged under the primary's reference so the
//! container's config (and hash) does not depend on who answered. An image
//! pinned by digest cannot be tagged: the engine creates its container from
//! the name it is present under (the content is the same by definition).

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::future::join_all;

use super::{Engine, Error};
use crate::platform::{Image, Reference};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Missing,
    Always,
    Never,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Pulled {
    pub reference: String,
    /// The reference it came from (a mirror's, when the primary failed).
    pub from: String,
    pub millis: u128,
}

/// Make every image present, or fail naming each that could not be had.
pub async fn ensure_images<'a>(
    engine: &Engine,
    images: impl IntoIterator<Item = &'a Image>,
    policy: Policy,
) -> Result<Vec<Pulled>, Error> {
    let unique: BTreeMap<&str, &Image> = images
        .into_iter()
        .map(|i| (i.reference.as_str(), i))
        .collect();
    let results = join_all(
        unique
            .values()
            .map(|image| ensure_one(engine, image, policy)),
    )
    .await;
    let mut pulled = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(Some(p)) => pulled.push(p),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    // The deadline passing is the news, whatever else failed with it.
    if let Some(at) = errors
        .iter()
        .position(|e| matches!(e, Error::Deadline { .. }))
    {
        return Err(errors.swap_remove(at));
    }
    match errors.len() {
        0 => Ok(pulled),
        1 => Err(errors.remove(0)),
        n => Err(Error::Failed(
            n,
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

async fn ensure_one(
    engine: &Engine,
    image: &Image,
    policy: Policy,
) -> Result<Option<Pulled>, Error> {
    let wanted = parse(image, &image.reference)?;
    if policy != Policy::Always && present(engine, image, &wanted).await? {
        return Ok(None);
    }
    if policy == Policy::Never {
        return Err(Error::ImageMissing {
            image: image.reference.clone(),
        });
    }
    let started = Instant::now();
    let mut attempts = Vec::new();
    for source in &image.sources {
        match engine.pull(&parse(image, source)?).await? {
            Ok(()) => {
                if *source != image.reference {
                    if wanted.digest.is_some() {
                        engine.present_as(&image.reference, source);
                    } else {
                        engine.tag(source, &wanted).await?;
                    }
                }
                return Ok(Some(Pulled {
                    reference: image.reference.clone(),
                    from: source.clone(),
                    millis: started.elapsed().as_millis(),
                }));
            }
            Err(message) => attempts.push(format!("{source}: {message}")),
        }
    }
    Err(Error::Pull {
        image: image.reference.clone(),
        attempts,
    })
}

/// Whether `image` is on the host, as a pull with policy `missing` would
/// find it (see [`present`]).
pub async fn is_present(engine: &Engine, image: &Image) -> Result<bool, Error> {
    present(engine, image, &parse(image, &image.reference)?).await
}

/// Whether the image is present under its reference, or — pinned by
/// digest, the same content whoever served it — under a mirror's name.
async fn present(engine: &Engine, image: &Image, wanted: &Reference) -> Result<bool, Error> {
    if engine.image_present(&image.reference).await? {
        return Ok(true);
    }
    if wanted.digest.is_some() {
        for source in image.sources.iter().filter(|s| **s != image.reference) {
            if engine.image_present(source).await? {
                engine.present_as(&image.reference, source);
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn parse(image: &Image, text: &str) -> Result<Reference, Error> {
    Reference::parse(text).map_err(|e| Error::Pull {
        image: image.reference.clone(),
        attempts: vec![e.to_string()],
    })
}
