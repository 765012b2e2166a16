//! Pulling: every image a plan needs, in parallel, before anything changes.
//!
//! Each image is tried at its primary reference, then at each mirror; an
//! image served by a mirror is tagged under the primary's reference so the
//! container's config (and hash) does not depend on who answered.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use futures_util::future::join_all;

use super::{Engine, Error};
use crate::platform::Image;

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
    if policy != Policy::Always && engine.image_present(&image.reference).await? {
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
        match engine.pull(source).await {
            Ok(()) => {
                if *source != image.reference {
                    engine.tag(source, &image.reference).await?;
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

/// Credentials for the registry of `reference` from the Docker config file
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), if any.
pub fn credentials_for(reference: &str) -> Option<DockerCredentials> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let host = registry_host(reference);
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find(|(k, _)| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        k.split('/').next() == Some(host)
    })?;
    let encoded = entry.1.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(DockerCredentials {
        username: Some(user.to_owned()),
        password: Some(pass.to_owned()),
        serveraddress: Some(host.to_owned()),
        ..Default::default()
    })
}

fn registry_host(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}
