//! The platform file's `images:` settings: how many versions cleanup
//! keeps, its water marks, the room a pull asks for. `plan::gc` and
//! `plan::space` decide with them; this file only holds and checks them.

use serde::{Deserialize, Serialize};

/// The platform's `images:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcPolicy {
    /// Versions (deploys, newest first) whose images are always kept.
    pub keep: usize,
    /// Percent of the data root above which cleanup starts.
    pub high: f64,
    /// Percent it cleans down to.
    pub low: f64,
    /// Room asked for on top of a pull's download before it may start, in
    /// percent of the download: layers are stored extracted, and a gzip
    /// layer extracts to about twice its size (see `plan::space`).
    pub pull_margin: f64,
}

impl Default for GcPolicy {
    fn default() -> Self {
        GcPolicy {
            keep: 2,
            high: 85.0,
            low: 80.0,
            pull_margin: 100.0,
        }
    }
}

/// `images: {keep, high, low, pull_margin}` as cleanup can use them.
pub(super) fn check(images: &GcPolicy) -> Result<(), String> {
    let percent = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
    if images.keep == 0 {
        return Err(
            "images: `keep` must be at least 1: the deploy running now is one of the versions kept"
                .into(),
        );
    }
    if !percent(images.high) || !percent(images.low) || images.low > images.high {
        return Err(format!(
            "images: `high` ({}) and `low` ({}) are percent of the disk with 0 <= low <= high <= 100",
            images.high, images.low
        ));
    }
    if !(images.pull_margin.is_finite() && images.pull_margin >= 0.0) {
        return Err(format!(
            "images: `pull_margin` ({}) is a percent of the download, 0 or more",
            images.pull_margin
        ));
    }
    Ok(())
}
