//! `platform`: what the infrastructure team owns, and expansion.
//!
//! The platform file (`/etc/telefig/platform.yaml`, or the compiled-in
//! default) names the registries, the environment injected into every
//! container, and one template per sidecar kind. [`expand`] applies it to a
//! parsed [`Serviceset`](crate::serviceset::Serviceset) and returns [`Expanded`]:
//! every container, declared or sidecar, fully resolved. The stages after
//! this one see only that model, never the YAML.

mod asks;
pub mod bind;
mod container;
mod cron;
mod defaults;
pub mod drain;
mod expand;
mod fields;
mod gate;
mod image;
mod images;
pub mod paths;
pub mod policy;
pub mod reference;
mod resources;
pub mod schedule;
mod secrets;
mod sidecar;
pub mod updatable;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use container::*;
pub use defaults::{Defaults, log_config};
pub use expand::{CronJob, Expanded, OnHost, expand, expand_on};
pub use gate::Gate;
pub use image::Image;
pub use images::GcPolicy;
pub use policy::Policy;
pub use reference::Reference;
pub use secrets::{conceal_body, conceal_env_entry, is_secret_key, mask_body_but_secret_env};
pub use updatable::{LABEL_FIXED_HASH, Updatable, fixed_hash};

use crate::diagnostic::{SourceError, UnknownName};
use crate::serviceset::schema::KeyValues;
use crate::serviceset::{self, DockerSection};
use crate::yaml::{self, UniqueMap, Value};

/// Where the platform file lives when `--platform` is not given.
pub const DEFAULT_PLATFORM_PATH: &str = "/etc/telefig/platform.yaml";
const BUILT_IN: &str = include_str!("default.yaml");

/// A platform file that could not be loaded.
pub type Error = crate::diagnostic::LoadError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    #[serde(default)]
    pub primary: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Platform {
    pub source: PathBuf,
    pub registries: Registries,
    pub environment: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub sidecars: Vec<SidecarTemplate>,
    pub defaults: Defaults,
    /// Image cleanup: versions kept, disk high and low water marks.
    pub images: GcPolicy,
    /// What a serviceset may ask of the host (`policy:`); by default, anything.
    pub policy: Policy,
    /// Template variables that are secret whatever their name (`secrets:`).
    pub secrets: Vec<String>,
}

/// Where a sidecar sits relative to its owner (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Started before the owner (which waits for `gate`), stopped after it.
    Before,
    /// Started once the owner is healthy, stopped before it.
    AfterHealthy,
    /// Started once the owner is running, stopped before it.
    AfterStarted,
}

#[derive(Debug, Clone)]
pub struct SidecarTemplate {
    pub kind: String,
    pub aliases: Vec<String>,
    pub order: Order,
    pub gate: Gate,
    /// Declared parameters and their defaults; `None` means required.
    pub params: Vec<(String, Option<String>)>,
    /// The container fields, strings not yet templated.
    pub body: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformFile {
    #[serde(default)]
    registries: Registries,
    #[serde(default)]
    environment: KeyValues,
    #[serde(default)]
    labels: KeyValues,
    #[serde(default)]
    sidecars: UniqueMap<Value>,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    images: GcPolicy,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    secrets: Vec<String>,
}

/// The kinds telefig knows without a template (run on the host, not as a container).
pub const HOST_KINDS: [&str; 1] = ["cron"];

impl Platform {
    /// The compiled-in default.
    pub fn built_in() -> Platform {
        Platform::parse(Path::new("<built-in platform>"), BUILT_IN)
            .expect("the built-in platform parses")
    }

    /// `--platform FILE`, else `/etc/telefig/platform.yaml` if present, else built in.
    pub fn load(explicit: Option<&Path>) -> Result<Platform, Error> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            // Anything at that path is meant to be read, even a broken link:
            // reading it says what is wrong rather than silently not using it.
            None if Path::new(DEFAULT_PLATFORM_PATH).symlink_metadata().is_ok() => {
                PathBuf::from(DEFAULT_PLATFORM_PATH)
            }
            None => return Ok(Platform::built_in()),
        };
        let text =
            crate::read::text(&path, crate::read::CONFIG_CAP).map_err(|source| Error::Read {
                what: "platform file",
                path: path.clone(),
                source,
                hint: "pass --platform FILE or fix its permissions",
            })?;
        Platform::parse(&path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Platform, Error> {
        let file: PlatformFile =
            yaml::from_str(text).map_err(|e| serviceset::yaml_error(path, text, e))?;
        let sidecars = file
            .sidecars
            .0
            .into_iter()
            .map(|(kind, body)| SidecarTemplate::parse(path, text, kind, body))
            .collect::<Result<Vec<_>, _>>()?;
        let platform = Platform {
            source: path.to_path_buf(),
            registries: file.registries,
            environment: file.environment.0,
            labels: file.labels.0,
            sidecars,
            defaults: file.defaults,
            images: file.images,
            policy: file.policy,
            secrets: file.secrets,
        };
        platform.check(text)?;
        Ok(platform)
    }

    fn check(&self, text: &str) -> Result<(), SourceError> {
        let at_key = |key: &str, message: String| {
            let err = SourceError::new(&self.source, message);
            match text.lines().position(|l| l.starts_with(&format!("{key}:"))) {
                Some(i) => err.at(text, i + 1, 1),
                None => err,
            }
        };
        let hosts = std::iter::once(&self.registries.primary)
            .filter(|p| !p.is_empty())
            .chain(&self.registries.mirrors);
        for host in hosts {
            reference::check_host(host).map_err(|e| at_key("registries", e.to_string()))?;
        }
        images::check(&self.images).map_err(|m| at_key("images", m))?;
        if let Some(bad) = self.secrets.iter().find(|n| !is_variable_name(n)) {
            let line = text.lines().position(|l| l.starts_with("secrets:"));
            let err = SourceError::new(
                &self.source,
                format!("`secrets:` lists `{bad}`, which is not a variable name"),
            )
            .with_help(Some(
                "list the names of template variables: letters, digits and `_`, not starting with a digit".into(),
            ));
            return Err(match line {
                Some(i) => err.at(text, i + 1, 1),
                None => err,
            });
        }
        let mut names: Vec<&str> = Vec::new();
        for t in &self.sidecars {
            for name in std::iter::once(&t.kind).chain(&t.aliases) {
                if !is_kind_name(name) {
                    return Err(template_error(
                        &self.source,
                        text,
                        &t.kind,
                        format!(
                            "sidecar kind `{}` is not a plain name: it names containers (`<owner>-<kind>`), so use letters, digits, `_`, `.` and `-`, starting with a letter or digit",
                            name.escape_debug()
                        ),
                    ));
                }
                if names.contains(&name.as_str()) || HOST_KINDS.contains(&name.as_str()) {
                    return Err(template_error(
                        &self.source,
                        text,
                        &t.kind,
                        format!("sidecar kind `{name}` is defined twice"),
                    ));
                }
                names.push(name);
            }
        }
        Ok(())
    }

    /// The template for `kind` or one of its aliases.
    pub fn template(&self, kind: &str) -> Option<&SidecarTemplate> {
        self.sidecars
            .iter()
            .find(|t| t.kind == kind || t.aliases.iter().any(|a| a == kind))
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.sidecars
            .iter()
            .flat_map(|t| {
                std::iter::once(t.kind.as_str()).chain(t.aliases.iter().map(String::as_str))
            })
            .chain(HOST_KINDS)
    }
}

/// Keys of a template that orchestrate rather than configure the container.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TemplateMeta {
    #[serde(default)]
    aliases: Vec<String>,
    order: Option<Order>,
    gate: Option<serviceset::Condition>,
    #[serde(default)]
    params: UniqueMap<Value>,
}

const META_KEYS: [&str; 4] = ["aliases", "order", "gate", "params"];

impl SidecarTemplate {
    fn parse(
        path: &Path,
        text: &str,
        kind: String,
        body: Value,
    ) -> Result<SidecarTemplate, SourceError> {
        let fail = |msg: String| template_error(path, text, &kind, msg);
        let Value::Mapping(map) = body else {
            return Err(fail(format!(
                "sidecar template `{kind}` must be a map of container fields"
            )));
        };
        let (meta, docker): (yaml::Mapping, yaml::Mapping) = map
            .into_iter()
            .partition(|(k, _)| k.as_str().is_some_and(|k| META_KEYS.contains(&k)));
        let meta: TemplateMeta = yaml::from_value(Value::Mapping(meta))
            .map_err(|e| fail(format!("in sidecar template `{kind}`: {e}")))?;
        let docker = Value::Mapping(docker);
        // Check the container fields now, so a typo fails at load, not at first use.
        let fields = yaml::from_value::<DockerSection>(docker.clone()).map_err(|e| {
            let hint = field_hint(&e.message);
            fail(format!("in sidecar template `{kind}`: {}", e.message)).with_help(hint)
        })?;
        // Each volume is built from its parts once templated: check there are parts.
        if let Some(v) = fields
            .volumes
            .iter()
            .find(|v| !(2..=3).contains(&bind::template_parts(v).len()))
        {
            return Err(fail(format!(
                "in sidecar template `{kind}`: volume `{v}` is not SOURCE:TARGET[:OPTIONS]"
            )));
        }
        let order = meta.order.unwrap_or(Order::Before);
        let gate = meta.gate.unwrap_or_default().into();
        if order != Order::Before && meta.gate.is_some() {
            return Err(fail(format!(
                "sidecar template `{kind}`: `gate` applies to `order: before` only (the owner waits for the sidecar)"
            )));
        }
        let params = meta
            .params
            .0
            .into_iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k, None)),
                v => param_text(&v)
                    .map(|s| (k.clone(), Some(s)))
                    .map_err(|m| fail(format!("param `{k}`: {m}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(SidecarTemplate {
            kind,
            aliases: meta.aliases,
            order,
            gate,
            params,
            body: docker,
        })
    }
}

/// A sidecar kind (or alias): `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, so that
/// `<owner>-<kind>` is a container name.
fn is_kind_name(kind: &str) -> bool {
    kind.starts_with(|c: char| c.is_ascii_alphanumeric())
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A template variable's name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A parameter value as template text: scalars as written, lists joined by `,`.
pub fn param_text(value: &Value) -> Result<String, String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                yaml::scalar_to_string(i)
                    .ok_or_else(|| "a list parameter holds plain values".to_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        other => yaml::scalar_to_string(other)
            .ok_or_else(|| "expected a plain value or a list of them".into()),
    }
}

fn field_hint(message: &str) -> Option<String> {
    UnknownName::parse(message)?.did_you_mean()
}

/// Point at the template's key in the platform file.
fn template_error(path: &Path, text: &str, kind: &str, message: String) -> SourceError {
    let key = format!("{kind}:");
    let found = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim_start().starts_with(&key) && l.starts_with([' ', '\t']));
    let err = SourceError::new(path, message);
    match found {
        Some((i, l)) => err.at(text, i + 1, l.len() - l.trim_start().len() + 1),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_has_every_kind_of_the_spec() {
        let p = Platform::built_in();
        for kind in [
            "discovery",
            "zum",
            "metrics",
            "logging",
            "singer",
            "proxy",
            "knox",
            "logrotate",
            "cron",
        ] {
            assert!(p.kinds().any(|k| k == kind), "{kind}");
        }
        assert_eq!(p.template("singer").unwrap().kind, "logging");
        assert_eq!(p.template("discovery").unwrap().order, Order::AfterHealthy);
    }

    #[test]
    fn a_template_without_params_says_so() {
        let platform = Platform::parse(
            Path::new("p.yaml"),
            "sidecars:\n  discovery: {image: zk:1, order: after_healthy}\n",
        )
        .unwrap();
        let vars = crate::serviceset::Vars::new([("BUILD_COMMIT".into(), "c1".into())], []);
        let set = crate::serviceset::parse(
            Path::new("s.conf"),
            "web:\n  sidecars:\n    discovery: {port: 8080}\n",
            &vars,
        )
        .unwrap();
        let err = expand(&set, "shop", &platform, &vars)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the platform's `discovery` template (p.yaml) declares no parameters; add `params: {port: …}`"),
            "{err}"
        );
        assert!(!err.contains("its parameters are"), "{err}");
    }

    #[test]
    fn what_the_platform_file_names_is_checked() {
        for (text, why) in [
            (
                "sidecars:\n  ../x: {image: x:1}\n",
                "sidecar kind `../x` is not a plain name",
            ),
            (
                "sidecars:\n  x: {image: x:1, aliases: [\"a b\"]}\n",
                "`a b` is not a plain name",
            ),
            (
                "registries: {primary: \"http://evil host/../\"}\n",
                "is not a registry host",
            ),
            (
                "registries: {primary: r.internal, mirrors: [\"m:0\"]}\n",
                "`m:0` is not a registry host",
            ),
            ("images: {keep: 0}\n", "`keep` must be at least 1"),
            ("images: {high: 200, low: 300}\n", "0 <= low <= high <= 100"),
            ("images: {high: 80, low: 81}\n", "low <= high"),
            ("images: {high: .nan}\n", "low <= high"),
            ("images: {pull_margin: -1}\n", "`pull_margin`"),
            (
                "sidecars:\n  x: {image: x:1, volumes: [\"{{dir}}\"]}\n",
                "volume `{{dir}}` is not SOURCE:TARGET[:OPTIONS]",
            ),
        ] {
            let err = Platform::parse(Path::new("p.yaml"), text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.starts_with("p.yaml:"), "{text}: {err}");
        }
        let ok = "registries: {primary: \"[::1]:5000\", mirrors: [m.internal]}\nsidecars:\n  log.v2: {image: x:1}\n";
        assert!(Platform::parse(Path::new("p.yaml"), ok).is_ok());
    }

    #[test]
    fn secrets_lists_variable_names() {
        let p = Platform::parse(Path::new("p.yaml"), "secrets: [SIGNING, _x1]\n").unwrap();
        assert_eq!(p.secrets, ["SIGNING", "_x1"]);
        assert!(Platform::built_in().secrets.is_empty());
        for (text, want) in [
            (
                "labels: {}\nsecrets: [OK, \"A-B\"]\n",
                "p.yaml:2:1: `secrets:` lists `A-B`, which is not a variable name",
            ),
            ("secrets: [\"\"]\n", "p.yaml:1:1: `secrets:` lists ``"),
            (
                "secrets: OK\n",
                "p.yaml:1:10: secrets: invalid type: string",
            ),
            ("secret: [OK]\n", "did you mean `secrets`?"),
        ] {
            let err = Platform::parse(Path::new("p.yaml"), text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn template_typo_is_reported_with_the_template_line() {
        let text = "sidecars:\n  metrics:\n    imag: x:1\n";
        let err = Platform::parse(Path::new("p.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.yaml:2:3:"), "{err}");
        assert!(err.contains("did you mean `image`?"), "{err}");
    }
}
