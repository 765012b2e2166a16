//! One sidecar from its platform template: the parameters given checked
//! against those the template declares (defaults filled in, a "did you
//! mean" for an unknown one, a port parameter checked), the body templated
//! with them, its binds built from their parts (`asks`), then built like
//! any container.

use std::collections::BTreeMap;

use super::asks::platform_variables;
use super::bind::Bind;
use super::container::*;
use super::expand::Context;
use super::fields::*;
use super::paths::ResolvedPath;
use super::{SidecarTemplate, param_text};
use crate::diagnostic::{SourceError, did_you_mean};
use crate::serviceset::schema::DockerSection;
use crate::yaml::{self, UniqueMap, Value};

impl Context<'_> {
    /// The sidecar `name` of `owner` from its platform `template`, with the
    /// parameters `given` checked against those the template declares and
    /// its body templated with them.
    pub(super) fn sidecar(
        &self,
        owner: &str,
        name: &str,
        template: &SidecarTemplate,
        given: &UniqueMap<Value>,
        resolved: &mut Vec<ResolvedPath>,
    ) -> Result<ContainerSpec, SourceError> {
        let kind = &template.kind;
        let at = |msg: String| self.set.error_at(owner, Some(kind), msg);
        let mut layer = BTreeMap::from([
            ("owner".to_owned(), owner.to_owned()),
            ("kind".to_owned(), kind.clone()),
            ("name".to_owned(), name.to_owned()),
        ]);
        for (param, value) in given.iter() {
            if template.params.is_empty() {
                return Err(at(format!(
                    "sidecar `{kind}` of `{owner}` takes no parameter `{param}`"
                ))
                .with_help(Some(format!(
                    "the platform's `{kind}` template ({}) declares no parameters; add `params: {{{param}: …}}` to it",
                    self.platform.source.display()
                ))));
            }
            if !template.params.iter().any(|(p, _)| p == param) {
                let known = template.params.iter().map(|(p, _)| p.as_str());
                return Err(at(format!(
                    "sidecar `{kind}` of `{owner}` takes no parameter `{param}`"
                ))
                .with_help(did_you_mean(param, known.clone()).or_else(|| {
                    Some(format!(
                        "its parameters are: {}",
                        known.collect::<Vec<_>>().join(", ")
                    ))
                })));
            }
            let text = param_text(value)
                .and_then(|t| check_param(param, t))
                .map_err(|m| {
                    at(format!(
                        "parameter `{param}` of sidecar `{kind}` on `{owner}`: {m}"
                    ))
                })?;
            layer.insert(param.clone(), bool_as_declared(template, param, text));
        }
        for (param, default) in &template.params {
            if layer.contains_key(param) {
                continue;
            }
            match default {
                Some(value) => layer.insert(param.clone(), value.clone()),
                None => {
                    return Err(at(format!(
                        "sidecar `{kind}` of `{owner}` needs parameter `{param}`: add `{kind}: {{{param}: …}}`"
                    )));
                }
            };
        }
        let vars = self.vars.with_layer(layer);
        // Binds are built from their parts, not from templated text.
        let mut body = template.body.clone();
        let volumes = body
            .as_mapping_mut()
            .and_then(|m| m.remove("volumes"))
            .unwrap_or_default();
        let platform = platform_variables(template.params.iter().map(|(p, _)| p.as_str()), |p| {
            given.get(p).is_some()
        });
        let binds = volumes
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|v| {
                let text = v.as_str().unwrap_or_default();
                self.template_bind(name, text, &vars, &platform, resolved)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| {
                at(format!(
                    "sidecar `{name}` (template `{kind}`, {}): {m}",
                    self.platform.source.display()
                ))
            })?;
        self.police_sidecar(&binds).map_err(|v| {
            self.policy_error(
                owner,
                Some(kind),
                format!("sidecar `{kind}` of `{owner}`: {v}"),
            )
        })?;
        let binds: Vec<Bind> = binds.into_iter().map(|b| b.bind).collect();
        let body = template_strings(&body, &vars).map_err(|e| {
            at(format!(
                "sidecar template `{kind}` ({}): {e}",
                self.platform.source.display()
            ))
        })?;
        let docker: DockerSection = yaml::from_value(body).map_err(|e| {
            at(format!(
                "sidecar template `{kind}` ({}): {e}",
                self.platform.source.display()
            ))
        })?;
        if docker.image.is_none() {
            return Err(at(format!(
                "sidecar template `{kind}` ({}) has no `image`",
                self.platform.source.display()
            )));
        }
        let role = Role::Sidecar {
            kind: kind.clone(),
            owner: owner.to_owned(),
        };
        let ctx = Context {
            vars: &vars,
            ..*self
        };
        ctx.build(name, role, &docker, &binds, kind, None)
            .map_err(|(_, msg)| at(format!("sidecar `{name}` (template `{kind}`): {msg}")))
    }
}

/// A parameter that names a port (`port`, `listen`, `…_port`) is one:
/// 1-65535, written as digits.
fn check_param(param: &str, text: String) -> Result<String, String> {
    let is_port_param = param == "port" || param == "listen" || param.ends_with("_port");
    if is_port_param && !crate::serviceset::is_port(&text) {
        return Err(format!("`{text}` is not a port number (1-65535)"));
    }
    Ok(text)
}
