//! Expansion: a serviceset + the platform → every container, resolved.
//!
//! For each declared container this builds its own [`ContainerSpec`] and one
//! per sidecar it asks for (named `<owner>-<kind>`, from the platform
//! template with the sidecar's parameters as template variables), wires the
//! order edges (SPEC §3), and collects cron entries for the daemon.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Gate;
use super::bind::Bind;
use super::container::*;
pub use super::cron::CronJob;
use super::fields::*;
use super::image::{self, ImageRequest};
use super::paths::{Bases, ResolvedPath};
use super::{Error, Order, Platform};
use crate::diagnostic::{SourceError, did_you_mean};
use crate::redact::Redactor;
use crate::serviceset::schema::{DockerSection, SidecarEntry};
use crate::serviceset::template::{self, Vars};
use crate::serviceset::{ContainerKind, Declared, Serviceset};

mod inherited;

/// The full container set of one serviceset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expanded {
    pub serviceset: String,
    pub containers: Vec<ContainerSpec>,
    pub cron: Vec<CronJob>,
    /// Its secret values (`platform::secrets`); never serialized: a record
    /// keeps their fingerprints instead.
    #[serde(skip)]
    pub secrets: Redactor,
}

impl Expanded {
    pub fn get(&self, name: &str) -> Option<&ContainerSpec> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// An expansion on this host: the containers, and each relative path of
/// the file with the absolute one used for it.
#[derive(Debug)]
pub struct OnHost {
    pub expanded: Expanded,
    pub resolved: Vec<ResolvedPath>,
}

/// [`expand_on`] with nowhere to look relative paths up: a relative bind
/// source is an error. For callers that have no host (tests, tools).
pub fn expand(
    set: &Serviceset,
    name: &str,
    platform: &Platform,
    vars: &Vars,
) -> Result<Expanded, Error> {
    expand_on(set, name, platform, vars, &Bases::default()).map(|e| e.expanded)
}

/// Every container of `set` under `name`, relative bind sources looked up
/// under `bases`, and what the serviceset asks of the host held to the
/// platform's policy.
pub fn expand_on(
    set: &Serviceset,
    name: &str,
    platform: &Platform,
    vars: &Vars,
    bases: &Bases,
) -> Result<OnHost, Error> {
    let mut out = Expanded {
        serviceset: name.to_owned(),
        ..Expanded::default()
    };
    let mut resolved = Vec::new();
    let base = vars.with_layer(BTreeMap::from([("serviceset".to_owned(), name.to_owned())]));
    // Names taken so far, of containers and of cron jobs: sets, so that a
    // big serviceset costs what its size costs.
    let mut taken = Taken::default();
    for declared in &set.containers {
        let ctx = Context {
            set,
            platform,
            serviceset: name,
            vars: &base,
            bases,
            owner_cgroup: None,
        };
        let before = out.containers.len();
        expand_declared(&ctx, declared, &mut out, &mut taken, &mut resolved)?;
        (taken.containers).extend(out.containers[before..].iter().map(|c| c.name.clone()));
    }
    check_dependencies(set, &out, &taken.containers)?;
    out.secrets = super::secrets::collect(set, platform, vars, &out);
    super::secrets::check_public(set, &out)?;
    Ok(OnHost {
        expanded: out,
        resolved,
    })
}

/// The names of the containers and cron jobs expanded so far.
#[derive(Default)]
struct Taken {
    containers: HashSet<String>,
    cron: HashSet<String>,
}

fn expand_declared(
    ctx: &Context,
    declared: &Declared,
    out: &mut Expanded,
    taken: &mut Taken,
    resolved: &mut Vec<ResolvedPath>,
) -> Result<(), Error> {
    let (set, platform, vars) = (ctx.set, ctx.platform, ctx.vars);
    let owner = &declared.name;
    let entry = &declared.entry;
    let role = match entry.kind {
        ContainerKind::Service => Role::Main,
        ContainerKind::Job => Role::Job,
    };
    let build_commit = vars.get("BUILD_COMMIT").filter(|v| !v.is_empty());
    let field_error =
        |(field, msg): FieldError| set.error_at(owner, field, format!("{owner}: {msg}"));
    let binds = ctx
        .declared_binds(owner, &entry.docker, resolved)
        .map_err(field_error)?;
    let mut main = ctx
        .build(owner, role, &entry.docker, &binds, owner, build_commit)
        .map_err(field_error)?;
    ctx.police(&entry.docker, &binds)
        .map_err(|v| ctx.policy_error(owner, Some(v.field), format!("{owner}: {v}")))?;
    if main.role == Role::Main {
        main.drain = ctx
            .drain(owner, entry.drain_period)
            .map_err(|msg| set.error_at(owner, Some("drain_period"), format!("{owner}: {msg}")))?;
        main.bake = entry
            .bake_period
            .or(platform.defaults.bake_period)
            .map_or(Duration::ZERO, |b| b.0);
    }
    // Sidecars run under their owner's cgroup unless their template names one.
    let owner_cgroup = main.create.host_config.cgroup_parent.clone();
    let ctx = Context {
        owner_cgroup: owner_cgroup.as_deref(),
        ..*ctx
    };
    main.depends_on = entry
        .depends_on
        .0
        .iter()
        .map(|(name, gate)| Dependency {
            name: name.clone(),
            gate: (*gate).into(),
        })
        .collect();

    let mut sidecars = Vec::new();
    for (kind, sidecar) in &entry.sidecars.0 {
        let params = match sidecar {
            SidecarEntry::Cron(entries) => {
                let jobs = super::cron::jobs(set, owner, entries, &mut taken.cron)?;
                out.cron.extend(jobs);
                continue;
            }
            SidecarEntry::Params(params) => params,
        };
        let template = platform.template(kind).ok_or_else(|| {
            set.error_at(
                owner,
                Some(kind),
                format!("unknown sidecar kind `{kind}` on `{owner}`"),
            )
            .with_help(did_you_mean(kind, platform.kinds()).or_else(|| {
                Some(format!(
                    "the platform ({}) defines: {}",
                    platform.source.display(),
                    platform.kinds().collect::<Vec<_>>().join(", ")
                ))
            }))
        })?;
        let name = format!("{owner}-{}", template.kind);
        // `logging` and its alias `singer` would both be `<owner>-logging`.
        let same_kind = |k: &str| {
            platform
                .template(k)
                .is_some_and(|t| t.kind == template.kind)
        };
        let mut earlier = entry.sidecars.0.iter().take_while(|(k, _)| k != kind);
        if let Some((first, _)) = earlier.find(|(k, _)| same_kind(k)) {
            let message = format!(
                "sidecars `{first}` and `{kind}` of `{owner}` are the same kind (`{}`) and would both be `{name}`; keep one",
                template.kind
            );
            return Err(set.error_at(owner, Some(kind), message).into());
        }
        if set.get(&name).is_some() || taken.containers.contains(&name) {
            return Err(set
                .error_at(owner, Some(kind), format!("sidecar `{name}` of `{owner}` has the same name as a declared container; rename that container"))
                .into());
        }
        let mut spec = ctx.sidecar(owner, &name, template, params, resolved)?;
        // A sidecar is baked with its owner: a deploy of one is of both.
        spec.bake = main.bake;
        match template.order {
            Order::Before => main.depends_on.push(Dependency {
                name: name.clone(),
                gate: template.gate,
            }),
            Order::AfterHealthy => spec.depends_on.push(Dependency {
                name: owner.clone(),
                gate: Gate::Healthy,
            }),
            Order::AfterStarted => spec.depends_on.push(Dependency {
                name: owner.clone(),
                gate: Gate::Started,
            }),
        }
        sidecars.push(spec);
    }
    out.containers.push(main);
    out.containers.extend(sidecars);
    Ok(())
}

/// What building a container needs besides its own section.
pub(super) struct Context<'a> {
    pub(super) set: &'a Serviceset,
    pub(super) platform: &'a Platform,
    pub(super) serviceset: &'a str,
    pub(super) vars: &'a Vars,
    /// Where relative bind sources are looked up.
    pub(super) bases: &'a Bases,
    /// The owner's cgroup parent, inherited by its sidecars.
    pub(super) owner_cgroup: Option<&'a str>,
}

/// A build failure: the field it concerns (to point at) and the message.
/// A field that is wrong: which one (if known) and why.
pub(super) type FieldError = (Option<&'static str>, String);

impl Context<'_> {
    /// Build one container from its `docker:` section (or a templated sidecar body).
    pub(super) fn build(
        &self,
        name: &str,
        role: Role,
        docker: &DockerSection,
        binds: &[Bind],
        default_image: &str,
        fallback_version: Option<&str>,
    ) -> Result<ContainerSpec, FieldError> {
        let image = image::resolve(
            &ImageRequest {
                image: docker.image.as_deref().unwrap_or(default_image),
                version: docker.version.as_ref().map(|v| v.0.as_str()),
                registry: docker.registry.as_deref(),
                fallback_version,
            },
            &self.platform.registries,
        )
        .map_err(|(field, m)| (Some(field), m))?;

        let container_vars = self
            .vars
            .with_layer(BTreeMap::from([("container".to_owned(), name.to_owned())]));
        let mut env = Pairs::default();
        for (k, v) in &self.platform.environment {
            let v = template::render_str(v, &container_vars).map_err(|e| {
                (
                    None,
                    format!(
                        "platform environment `{k}` ({}): {e}",
                        self.platform.source.display()
                    ),
                )
            })?;
            env.set(k, v);
        }
        for (k, v) in &docker.environment.0 {
            env.set(k, v.clone());
        }

        let mut labels: BTreeMap<String, String> = self.platform.labels.iter().cloned().collect();
        labels.extend(docker.labels.0.iter().cloned());
        labels.insert(LABEL_SERVICESET.into(), self.serviceset.to_owned());
        labels.insert(LABEL_CONTAINER.into(), name.to_owned());
        labels.insert(LABEL_ROLE.into(), role.label().into());
        if let Role::Sidecar { kind, owner } = &role {
            labels.insert(LABEL_SIDECAR.into(), kind.clone());
            labels.insert(LABEL_OWNER.into(), owner.clone());
        }
        for (label, var) in [
            (LABEL_COMMIT, "BUILD_COMMIT"),
            (LABEL_DEPLOY_ID, "DEPLOY_ID"),
        ] {
            if let Some(v) = self.vars.get(var).filter(|v| !v.is_empty()) {
                labels.insert(label.into(), v.to_owned());
            }
        }

        let (healthcheck, health) = healthcheck(docker).map_err(|m| (Some("healthcheck"), m))?;
        let (stop_grace, stop_timeout) = stop_grace(docker)?;
        let mut host_config = host_config(docker, &role, binds)?;
        host_config.log_config = Some(super::log_config(
            docker.logging.as_ref(),
            &self.platform.defaults.logging,
        ));
        host_config.cgroup_parent = self.cgroup_parent(docker)?;
        let mut create = CreateBody {
            image: image.reference.clone(),
            entrypoint: docker
                .entrypoint
                .as_ref()
                .map(split_words)
                .transpose()
                .map_err(|m| (Some("entrypoint"), m))?,
            cmd: docker
                .command
                .as_ref()
                .map(split_words)
                .transpose()
                .map_err(|m| (Some("command"), m))?,
            env: (env.into_vec().into_iter())
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            user: docker.user.as_ref().map(|u| u.0.clone()),
            working_dir: docker.working_dir.clone(),
            labels,
            healthcheck,
            stop_signal: docker.stop_signal.clone(),
            stop_timeout,
            host_config,
        };
        let config_hash = config_hash(&create);
        let fixed = super::fixed_hash(&create);
        let labels = &mut create.labels;
        labels.insert(LABEL_CONFIG_HASH.into(), config_hash.clone());
        labels.insert(super::LABEL_FIXED_HASH.into(), fixed);
        Ok(ContainerSpec {
            name: name.to_owned(),
            role,
            image,
            depends_on: Vec::new(),
            health,
            stop_grace,
            drain: Default::default(),
            bake: Duration::ZERO,
            config_hash,
            create,
        })
    }
}

fn check_dependencies(
    set: &Serviceset,
    out: &Expanded,
    names: &HashSet<String>,
) -> Result<(), SourceError> {
    for c in &out.containers {
        for dep in &c.depends_on {
            if !names.contains(&dep.name) {
                let names = out.containers.iter().map(|c| c.name.as_str());
                return Err(set
                    .error_at(
                        &c.name,
                        Some("depends_on"),
                        format!(
                            "`{}` depends on `{}`, which is not in the serviceset",
                            c.name, dep.name
                        ),
                    )
                    .with_help(did_you_mean(&dep.name, names)));
            }
        }
    }
    Ok(())
}
