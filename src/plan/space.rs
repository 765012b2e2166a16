//! Room for a pull: does what `start` is about to download fit on Docker's
//! data root, and if not, is it worth an image cleanup first or is the
//! deploy refused before anything changes?
//!
//! Pure: fed the layers of each image to pull (digest, size as the
//! registry's manifest gives it, diff id from the image config), the layer
//! diff ids the host already has, the free bytes on the data root and the
//! platform's margin. Sizes are the registry's (compressed) sizes; the
//! margin stands for the extraction. Where the registry cannot tell a size
//! the caller does not ask: an unknown size never blocks a deploy.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::platform::GcPolicy;

/// One layer of an image to pull, as its registry describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The blob's digest (what is downloaded).
    pub digest: String,
    /// The uncompressed layer's digest (what Docker keeps), when known.
    pub diff_id: Option<String>,
    /// Bytes to download.
    pub size: u64,
}

/// Bytes to download for `images`' layers: each layer once (images share
/// base layers), none the host already has.
pub fn download(images: &[Vec<Layer>], present: &BTreeSet<String>) -> u64 {
    let mut seen = BTreeSet::new();
    images
        .iter()
        .flatten()
        .filter(|l| !l.diff_id.as_ref().is_some_and(|d| present.contains(d)))
        .filter(|l| seen.insert(l.digest.as_str()))
        .map(|l| l.size)
        .sum()
}

/// The numbers a verdict rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Space {
    /// Bytes the pull downloads (layers not on the host).
    pub download: u64,
    /// Bytes asked for on top, from the platform's `pull_margin`.
    pub margin: u64,
    /// Bytes free on the data root now.
    pub free: u64,
    /// Docker's data root (`docker info`'s DockerRootDir).
    pub data_root: String,
}

impl Space {
    pub fn new(download: u64, free: u64, data_root: &str, policy: &GcPolicy) -> Space {
        let margin = (download as f64 * policy.pull_margin.max(0.0) / 100.0).ceil() as u64;
        Space {
            download,
            margin,
            free,
            data_root: data_root.to_owned(),
        }
    }

    /// Bytes that must be free for the pull to start.
    pub fn needed(&self) -> u64 {
        self.download.saturating_add(self.margin)
    }

    /// Bytes missing (0 when it fits).
    pub fn short(&self) -> u64 {
        self.needed().saturating_sub(self.free)
    }
}

/// What to do before pulling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Nothing to download, or it fits with its margin: pull.
    Fits,
    /// It does not fit: run the image cleanup (asking it to free
    /// [`Space::needed`]), then look again.
    CleanFirst,
    /// It does not fit even after the cleanup: refuse before touching anything.
    Refuse,
}

/// The verdict on `space`; `cleaned`: the image cleanup already ran.
pub fn fit(space: &Space, cleaned: bool) -> Fit {
    if space.download == 0 || space.short() == 0 {
        Fit::Fits
    } else if cleaned {
        Fit::Refuse
    } else {
        Fit::CleanFirst
    }
}

/// `120.0 MiB`, `3.2 GiB`: sizes for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `needs 300.0 MiB (100.0 MiB to download + 200.0 MiB margin), 50.0 MiB free on /var/lib/docker`
impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "needs {} ({} to download + {} margin), {} free on {}",
            bytes(self.needed()),
            bytes(self.download),
            bytes(self.margin),
            bytes(self.free),
            self.data_root
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn layer(digest: &str, diff: &str, size: u64) -> Layer {
        Layer {
            digest: digest.into(),
            diff_id: Some(diff.into()),
            size,
        }
    }

    #[test]
    fn download_counts_each_missing_layer_once() {
        let base = layer("sha256:b", "sha256:db", 50 * MB);
        let a = vec![base.clone(), layer("sha256:a", "sha256:da", 10 * MB)];
        let b = vec![base, layer("sha256:c", "sha256:dc", 20 * MB)];
        let none = BTreeSet::new();
        assert_eq!(download(&[a.clone(), b.clone()], &none), 80 * MB);
        // The base layer is on the host already.
        let present = BTreeSet::from(["sha256:db".to_owned()]);
        assert_eq!(download(&[a, b], &present), 30 * MB);
        // A layer whose diff id is unknown is counted.
        let unknown = vec![Layer {
            digest: "sha256:u".into(),
            diff_id: None,
            size: 5 * MB,
        }];
        assert_eq!(download(&[unknown], &present), 5 * MB);
    }

    #[test]
    fn fits_cleans_first_or_refuses() {
        let policy = GcPolicy::default(); // margin 100 %
        let cases = [
            // download, free, cleaned, verdict
            (0, 0, false, Fit::Fits),
            (100 * MB, 200 * MB, false, Fit::Fits),
            (100 * MB, 199 * MB, false, Fit::CleanFirst),
            (100 * MB, 199 * MB, true, Fit::Refuse),
            (100 * MB, 500 * MB, true, Fit::Fits),
        ];
        for (download, free, cleaned, want) in cases {
            let space = Space::new(download, free, "/var/lib/docker", &policy);
            assert_eq!(fit(&space, cleaned), want, "{space}, cleaned: {cleaned}");
        }
        let no_margin = GcPolicy {
            pull_margin: 0.0,
            ..GcPolicy::default()
        };
        let space = Space::new(100 * MB, 100 * MB, "/d", &no_margin);
        assert_eq!(fit(&space, false), Fit::Fits);
    }

    #[test]
    fn the_numbers_are_named() {
        let space = Space::new(100 * MB, 50 * MB, "/var/lib/docker", &GcPolicy::default());
        assert_eq!(space.short(), 150 * MB);
        assert_eq!(
            space.to_string(),
            "needs 200.0 MiB (100.0 MiB to download + 100.0 MiB margin), 50.0 MiB free on /var/lib/docker"
        );
        assert_eq!(bytes(512), "512 B");
    }
}
