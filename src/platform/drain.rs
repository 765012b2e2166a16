//! Drain before stop, as configured: how long a container keeps serving
//! after its discovery sidecar deregistered it, and the platform's optional
//! check that it is drained (polled until it passes or the period ends).
//!
//! `drain_period` sits beside `docker:` in the serviceset (it orchestrates,
//! it does not configure the container, so it is outside the config hash);
//! `defaults.drain_period` and `defaults.drain_check` in the platform file
//! give the default for every declared service; with neither, the period is
//! left unset and `plan::drain` gives a registered service its built-in
//! default. Sidecars and jobs are not drained. Whether a given stop drains is `plan`'s decision
//! (`plan::drain`); this module only resolves the configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::serviceset::schema::{DurationValue, Words};
use crate::serviceset::template::{self, Vars};

/// How long to poll a drain check between runs, unless the platform says.
const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// A container's drain configuration, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainSpec {
    /// What the file says: zero stops it at once (Docker's grace period
    /// still applies); `None`, nothing set: `plan::drain` decides (a
    /// registered service drains for its built-in default).
    #[serde(default)]
    pub period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub check: Option<DrainCheck>,
}

/// A command that exits 0 once the container is drained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainCheck {
    pub argv: Vec<String>,
    pub place: CheckPlace,
    pub interval: Duration,
}

/// Where a drain check runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckPlace {
    /// On the host, as telefig's user (a string through `/bin/sh -c`).
    #[default]
    Host,
    /// Inside the container being drained (`docker exec`).
    Container,
}

/// `defaults.drain_check` of the platform file; strings are templates
/// (`{{container}}`, `{{serviceset}}` and the serviceset's variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainCheckTemplate {
    pub command: Words,
    #[serde(default, rename = "in")]
    pub place: CheckPlace,
    pub interval: Option<DurationValue>,
}

impl DrainCheckTemplate {
    /// The check for one container: templated, a string command run by `sh -c`.
    pub fn resolve(&self, vars: &Vars) -> Result<DrainCheck, template::TemplateError> {
        let argv = match &self.command {
            Words::Line(line) => vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                template::render_str(line, vars)?,
            ],
            Words::List(list) => list
                .iter()
                .map(|w| template::render_str(w, vars))
                .collect::<Result<_, _>>()?,
        };
        Ok(DrainCheck {
            argv,
            place: self.place,
            interval: self.interval.map_or(DEFAULT_CHECK_INTERVAL, |d| d.0),
        })
    }
}
