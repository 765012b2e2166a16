//! Container fields from a `docker:` section or a sidecar template: the
//! command split into words, the healthcheck with Docker's defaults, the
//! host config (restart policy, resources), templated strings.

use std::collections::HashMap;
use std::time::Duration;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

use super::SidecarTemplate;
use super::bind::Bind;
use super::container::*;
use super::expand::FieldError;
use super::resources;
use crate::serviceset::schema::{DockerSection, Words};
use crate::serviceset::template::{self, Vars};
use crate::yaml::Value;

/// A parameter whose declared default is `true`/`false` takes YAML 1.1
/// spellings (`True`, `yes`, `off`) as that boolean, in the template's
/// spelling, so `zum: {wait_for_deps: True}` reaches the command as `true`.
pub(super) fn bool_as_declared(template: &SidecarTemplate, param: &str, text: String) -> String {
    let declared_bool = template
        .params
        .iter()
        .any(|(p, d)| p == param && d.as_deref().is_some_and(|d| d == "true" || d == "false"));
    match crate::serviceset::schema::yaml11_bool_text(&text) {
        Some(b) if declared_bool => b.to_string(),
        _ => text,
    }
}

/// `KEY=VALUE` pairs in the order first set; setting a key again replaces
/// its value in place. Indexed, so n keys cost n lookups.
#[derive(Default)]
pub(super) struct Pairs {
    list: Vec<(String, String)>,
    at: HashMap<String, usize>,
}

impl Pairs {
    pub(super) fn set(&mut self, key: &str, value: String) {
        match self.at.get(key) {
            Some(&i) => self.list[i].1 = value,
            None => {
                self.at.insert(key.to_owned(), self.list.len());
                self.list.push((key.to_owned(), value));
            }
        }
    }

    pub(super) fn into_vec(self) -> Vec<(String, String)> {
        self.list
    }
}

/// A string command is split like a POSIX shell would (quotes honoured), not run by one.
pub(super) fn split_words(words: &Words) -> Result<Vec<String>, String> {
    match words {
        Words::List(list) => Ok(list.clone()),
        Words::Line(line) => {
            shell_words::split(line).map_err(|_| format!("`{line}` has an unclosed quote"))
        }
    }
}

pub(super) fn healthcheck(
    docker: &DockerSection,
) -> Result<(Option<HealthConfig>, Option<HealthTiming>), String> {
    let Some(hc) = &docker.healthcheck else {
        return Ok((None, None));
    };
    if hc.disable {
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        return Ok((Some(none), None));
    }
    let test = match &hc.test {
        None => return Err("a healthcheck needs `test` (or `disable: true`)".into()),
        Some(Words::Line(line)) => vec!["CMD-SHELL".to_owned(), line.clone()],
        Some(Words::List(list)) => match list.first().map(String::as_str) {
            Some("CMD" | "CMD-SHELL") if list.len() > 1 => list.clone(),
            _ => return Err(
                "a healthcheck test list starts with \"CMD\" or \"CMD-SHELL\" and has a command"
                    .into(),
            ),
        },
    };
    let timing = HealthTiming {
        interval: hc.interval.map_or(DEFAULT_INTERVAL, |d| d.0),
        timeout: hc.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        start_period: hc.start_period.map_or(Duration::ZERO, |d| d.0),
        retries: hc.retries.unwrap_or(DEFAULT_RETRIES),
    };
    // Docker reads 0 as "its default": refuse what it would not take as written.
    for (what, d) in [("interval", timing.interval), ("timeout", timing.timeout)] {
        if d < Duration::from_millis(1) {
            return Err(format!("healthcheck {what} must be at least 1ms"));
        }
    }
    if !timing.start_period.is_zero() && timing.start_period < Duration::from_millis(1) {
        return Err("healthcheck start_period must be 0 or at least 1ms".into());
    }
    if timing.retries == 0 {
        return Err(
            "healthcheck retries must be at least 1 (Docker reads 0 as its default, 3)".into(),
        );
    }
    let ns = |d: Duration| d.as_nanos() as i64;
    let config = HealthConfig {
        test,
        interval: ns(timing.interval),
        timeout: ns(timing.timeout),
        start_period: ns(timing.start_period),
        retries: i64::from(timing.retries),
    };
    Ok((Some(config), Some(timing)))
}

/// The grace period, and the same as the whole seconds Docker's
/// `StopTimeout` takes: a fraction is refused, not rounded.
pub(super) fn stop_grace(docker: &DockerSection) -> Result<(Duration, i64), FieldError> {
    let grace = docker.stop_grace_period.map_or(DEFAULT_STOP_GRACE, |d| d.0);
    // At most a year (`duration::MAX`), so the seconds always fit.
    match i64::try_from(grace.as_secs()) {
        Ok(secs) if grace.subsec_nanos() == 0 => Ok((grace, secs)),
        _ => Err((
            Some("stop_grace_period"),
            format!(
                "stop_grace_period {grace:?} is not whole seconds, which is all Docker's stop timeout takes"
            ),
        )),
    }
}

/// The host config of a container from its section, with its binds
/// already built and placed (`bind`, `paths`).
pub(super) fn host_config(
    docker: &DockerSection,
    role: &Role,
    binds: &[Bind],
) -> Result<HostConfig, FieldError> {
    let default_restart = super::container::default_restart_policy(role.label());
    let restart_policy =
        resources::restart_policy(docker.restart.as_deref().unwrap_or(default_restart))
            .map_err(|m| (Some("restart"), m))?;
    let tmpfs = docker
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_owned(), opts.to_owned()),
            None => (t.clone(), String::new()),
        })
        .collect();
    Ok(HostConfig {
        network_mode: docker.network_mode.clone().unwrap_or_else(|| "host".into()),
        restart_policy,
        binds: binds.iter().map(Bind::docker).collect(),
        tmpfs,
        cpuset_cpus: docker
            .cpuset_cpus
            .as_ref()
            .map(|c| field("cpuset_cpus", resources::cpuset(&c.0)))
            .transpose()?,
        memory: docker
            .mem_limit
            .as_ref()
            .map(|m| field("mem_limit", resources::memory(&m.0)))
            .transpose()?,
        nano_cpus: docker
            .cpus
            .as_ref()
            .map(|c| field("cpus", resources::nano_cpus(&c.0)))
            .transpose()?,
        privileged: docker.privileged,
        cap_add: docker.cap_add.clone(),
        log_config: None,
        cgroup_parent: None,
    })
}

fn field<T>(name: &'static str, result: Result<T, String>) -> Result<T, FieldError> {
    result.map_err(|m| (Some(name), m))
}

/// Template every string in a parsed template body.
pub(super) fn template_strings(
    value: &Value,
    vars: &Vars,
) -> Result<Value, template::TemplateError> {
    Ok(match value {
        Value::String(s) => Value::String(template::render_str(s, vars)?),
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .map(|v| template_strings(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => Value::Mapping(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), template_strings(v, vars)?)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}
