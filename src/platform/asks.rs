//! What a container asks of the host, during expansion: its binds built as
//! structures ([`Bind`]) and placed on the host (`paths`), and what the
//! serviceset asked for held to the platform's [`policy`](super::policy).
//!
//! A declared container's binds are its `volumes`, all the serviceset's. A
//! sidecar's come from its template, whose parts are templated one by one;
//! such a bind counts as the serviceset's when its source or options use
//! a value from outside the platform file (a parameter the serviceset
//! passed, or a variable of the deploy), since then the serviceset chose
//! the host path.

use std::collections::BTreeSet;

use super::bind::{self, Bind};
use super::expand::{Context, FieldError};
use super::paths::{self, ResolvedPath};
use super::policy::{self, Request, Violation};
use crate::diagnostic::SourceError;
use crate::serviceset::schema::DockerSection;
use crate::serviceset::template::{self, Vars};

/// Template variables the platform fills in itself, never from the serviceset's values.
const PLATFORM_VARIABLES: [&str; 5] = ["owner", "name", "kind", "serviceset", "container"];

/// A template bind and whether the serviceset chose its host path.
pub(super) struct TemplateBind {
    pub(super) bind: Bind,
    pub(super) asked: bool,
}

impl Context<'_> {
    /// A declared container's `volumes`, parsed and placed on the host.
    pub(super) fn declared_binds(
        &self,
        name: &str,
        docker: &DockerSection,
        resolved: &mut Vec<ResolvedPath>,
    ) -> Result<Vec<Bind>, FieldError> {
        docker
            .volumes
            .iter()
            .map(|text| {
                let bind = Bind::parse(text)?;
                self.place(name, bind, resolved)
            })
            .collect::<Result<_, String>>()
            .map_err(|m| (Some("volumes"), m))
    }

    /// A template's volume (`"{{file}}:/etc/x:ro"`): split into its parts,
    /// each templated alone, then built and placed on the host. `platform`
    /// are the variables the platform fills in ([`platform_variables`]).
    pub(super) fn template_bind(
        &self,
        name: &str,
        text: &str,
        vars: &Vars,
        platform: &BTreeSet<&str>,
        resolved: &mut Vec<ResolvedPath>,
    ) -> Result<TemplateBind, String> {
        let parts = bind::template_parts(text);
        let rendered = parts
            .iter()
            .map(|p| template::render_str(p, vars).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let built = match rendered.as_slice() {
            [source, target] => Bind::from_parts(source, target, ""),
            [source, target, options] => Bind::from_parts(source, target, options),
            _ => Err("it is not SOURCE:TARGET[:OPTIONS]".to_owned()),
        }
        .map_err(|m| format!("volume `{text}` of the template: {m}"))?;
        let chooses =
            |part: Option<&&str>| part.is_some_and(|p| uses_serviceset_values(p, platform));
        let asked = chooses(parts.first()) || chooses(parts.get(2));
        Ok(TemplateBind {
            bind: self.place(name, built, resolved)?,
            asked,
        })
    }

    fn place(
        &self,
        name: &str,
        bind: Bind,
        resolved: &mut Vec<ResolvedPath>,
    ) -> Result<Bind, String> {
        let (bind, found) = paths::place_bind(bind, name, self.bases)?;
        resolved.extend(found);
        Ok(bind)
    }

    /// Hold what a declared container asks for (its own fields and binds)
    /// to the platform's policy.
    pub(super) fn police(&self, docker: &DockerSection, binds: &[Bind]) -> Result<(), Violation> {
        let request = Request {
            privileged: docker.privileged == Some(true),
            cap_add: &docker.cap_add,
            user: docker.user.as_ref().map(|u| u.0.as_str()),
            cgroup_parent: docker.cgroup_parent.is_some(),
            binds: binds.iter().collect(),
        };
        policy::check(&self.platform.policy, &request, &paths::real_path)
    }

    /// Hold the binds the serviceset chose through a sidecar's parameters
    /// to the platform's policy.
    pub(super) fn police_sidecar(&self, binds: &[TemplateBind]) -> Result<(), Violation> {
        let request = Request {
            binds: binds.iter().filter(|b| b.asked).map(|b| &b.bind).collect(),
            ..Default::default()
        };
        policy::check(&self.platform.policy, &request, &paths::real_path)
    }

    /// A policy violation at `field` of `owner`, naming where the policy is.
    pub(super) fn policy_error(
        &self,
        owner: &str,
        field: Option<&str>,
        message: String,
    ) -> SourceError {
        self.set.error_at(owner, field, message).with_help(Some(format!(
            "the policy is the platform's (`policy:` in {}): ask its owners, or change what the serviceset asks for",
            self.platform.source.display()
        )))
    }
}

/// Whether the template text `part` uses a value the serviceset chose:
/// any variable but those in `platform` (filled in by the platform).
fn uses_serviceset_values(part: &str, platform: &BTreeSet<&str>) -> bool {
    if !part.contains("{{") && !part.contains("{%") {
        return false;
    }
    let env = minijinja::Environment::new();
    let Ok(parsed) = env.template_from_str(part) else {
        return true;
    };
    parsed
        .undeclared_variables(false)
        .iter()
        .any(|v| !platform.contains(v.as_str()))
}

/// The variables of a sidecar template the platform fills in: its own
/// names, and the parameters the serviceset did not pass (their defaults).
pub(super) fn platform_variables<'a>(
    declared: impl Iterator<Item = &'a str>,
    given: impl Fn(&str) -> bool,
) -> BTreeSet<&'a str> {
    declared
        .filter(|p| !given(p))
        .chain(PLATFORM_VARIABLES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_the_serviceset_s_when_it_uses_a_value_the_platform_does_not_fill() {
        let platform = platform_variables(["file", "schedule"].into_iter(), |p| p == "file");
        for (part, chosen) in [
            ("/etc/logrotate.d/{{owner}}", false),
            ("/var/log", false),
            ("{{file}}", true),
            ("{{ file|default('/x') }}", true),
            ("/var/{{schedule}}", false),
            ("{{ LOG_DIR }}", true),
            ("{% if file %}/a{% endif %}", true),
            ("{{ unclosed", true),
        ] {
            assert_eq!(uses_serviceset_values(part, &platform), chosen, "{part}");
        }
    }
}
