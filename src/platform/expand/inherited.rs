//! What a container takes from the platform's defaults when it says
//! nothing itself: its drain (period and check) and its cgroup parent.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Context, FieldError};
use crate::platform::drain::DrainSpec;
use crate::serviceset::schema::{DockerSection, DurationValue};
use crate::serviceset::template;

impl Context<'_> {
    /// The declared service's drain: its own period, else the platform's
    /// (else unset: `plan::drain` decides), with the platform's check
    /// templated for it unless the period is zero.
    pub(super) fn drain(
        &self,
        name: &str,
        own: Option<DurationValue>,
    ) -> Result<DrainSpec, String> {
        let defaults = &self.platform.defaults;
        let vars = self
            .vars
            .with_layer(BTreeMap::from([("container".to_owned(), name.to_owned())]));
        let period = own.or(defaults.drain_period).map(|d| d.0);
        let check = match &defaults.drain_check {
            Some(t) if period != Some(Duration::ZERO) => Some(t.resolve(&vars).map_err(|e| {
                format!(
                    "platform `defaults.drain_check` ({}): {e}",
                    self.platform.source.display()
                )
            })?),
            _ => None,
        };
        Ok(DrainSpec { period, check })
    }

    /// Own `cgroup_parent`, else the owner's (for a sidecar), else the
    /// platform default templated with the serviceset's name.
    pub(super) fn cgroup_parent(
        &self,
        docker: &DockerSection,
    ) -> Result<Option<String>, FieldError> {
        if let Some(own) = docker.cgroup_parent.as_deref().or(self.owner_cgroup) {
            return Ok(Some(own.to_owned()).filter(|c| !c.is_empty()));
        }
        let Some(text) = &self.platform.defaults.cgroup_parent else {
            return Ok(None);
        };
        let rendered = template::render_str(text, self.vars).map_err(|e| {
            (
                None,
                format!(
                    "platform `defaults.cgroup_parent` ({}): {e}",
                    self.platform.source.display()
                ),
            )
        })?;
        Ok(Some(rendered).filter(|c| !c.is_empty()))
    }
}
