//! The front of the pipeline shared by the commands that read a file:
//! serviceset → template → expand with the platform → graph.

use std::path::PathBuf;

use super::UsageError;
use super::args::Global;
use crate::cli::output::errln;
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::platform::GcPolicy;
use crate::platform::paths::{self, Bases, ResolvedPath};
use crate::platform::{Expanded, Platform, expand_on};
use crate::serviceset::{self, Vars};

pub struct Loaded {
    pub name: ServicesetName,
    /// The serviceset file, absolute.
    pub file: PathBuf,
    /// Relative paths of the input and the absolute ones used for them.
    pub resolved: Vec<ResolvedPath>,
    pub vars: Vars,
    pub expanded: Expanded,
    pub graph: Graph,
    /// The platform's image settings (cleanup, pull margin).
    pub images: GcPolicy,
    /// The file as parsed, to point at its lines.
    pub set: serviceset::Serviceset,
}

pub fn vars(g: &Global) -> Vars {
    Vars::from_process(g.env.iter().cloned())
}

pub fn config_path(g: &Global) -> Result<PathBuf, UsageError> {
    g.config
        .clone()
        .ok_or_else(|| UsageError("no serviceset file: pass -c FILE".into()))
}

/// The declared container a sidecar belongs to.
fn owner_of(spec: &crate::platform::ContainerSpec) -> Option<&str> {
    match &spec.role {
        crate::platform::Role::Sidecar { owner, .. } => Some(owner),
        _ => None,
    }
}

/// Say on stderr which files a relative path stood for (`render` and
/// `plan` print their result on stdout).
pub fn say_resolved(loaded: &Loaded) {
    for r in &loaded.resolved {
        errln!("using {}", super::printable(&r.to_string()));
    }
}

/// Mask the values of the variables `platform` lists as secret in this
/// process's output (those whose names look secret are already: `cli::run`).
fn learn_listed(vars: &Vars, platform: &Platform) {
    crate::redact::learn(&crate::redact::Redactor::new(
        vars.secret_values(&platform.secrets),
    ));
}

pub fn load(g: &Global) -> anyhow::Result<Loaded> {
    load_with(g, |_| {})
}

/// [`load`], telling `named` the serviceset's name as soon as it is known:
/// before the file is parsed (it comes from `--name`, `ENV_NAME` or the
/// file's name). Errors come in the same order as from [`load`].
pub fn load_with(g: &Global, named: impl FnOnce(&ServicesetName)) -> anyhow::Result<Loaded> {
    let given = config_path(g)?;
    let vars = vars(g);
    let bases = Bases::current(&vars);
    // A relative -c is relative to the build: the current directory, then $TARGET.
    let (file, from) = paths::resolve(&given, &bases).map_err(|m| {
        UsageError(format!(
            "cannot use the serviceset file: {m}; pass -c with an absolute path or set TARGET to the build directory"
        ))
    })?;
    let mut resolved = Vec::new();
    if let Some(from) = from {
        resolved.push(ResolvedPath {
            container: None,
            given: given.display().to_string(),
            used: file.clone(),
            from,
        });
    }
    // Messages name the file as given when it was found as given.
    let shown = if from == Some(paths::Base::CurrentDir) {
        &given
    } else {
        &file
    };
    // `--name` was checked as it was parsed; ENV_NAME and the file name here
    // (reported after the file's own errors).
    let name = ServicesetName::parse(&serviceset::serviceset_name(
        g.name.as_deref(),
        &vars,
        &file,
    ))
    .map_err(|e| UsageError(e.to_string()));
    if let Ok(name) = &name {
        named(name);
    }
    // What the platform lists as secret is masked in the file's errors too.
    let set = serviceset::load(shown, &vars).inspect_err(|_| {
        if let Ok(platform) = Platform::load(g.platform.as_deref()) {
            learn_listed(&vars, &platform);
        }
    })?;
    let platform = Platform::load(g.platform.as_deref())?;
    learn_listed(&vars, &platform);
    let name = name?;
    let on_host = expand_on(&set, &name, &platform, &vars, &bases)?;
    let expanded = on_host.expanded;
    crate::redact::learn(&expanded.secrets);
    resolved.extend(on_host.resolved);
    // A cycle is a mistake in the file: point at the first member's entry.
    let graph = Graph::build(&expanded).map_err(|err| {
        let crate::graph::Error::Cycle(members) = &err;
        let first = members.first().map(String::as_str).unwrap_or_default();
        let owner = set.get(first).map_or_else(
            || {
                expanded
                    .get(first)
                    .and_then(owner_of)
                    .unwrap_or(first)
                    .to_owned()
            },
            |d| d.name.clone(),
        );
        serviceset::Error::from(set.error_at(&owner, Some("depends_on"), err.to_string()))
    })?;
    Ok(Loaded {
        name,
        file,
        resolved,
        vars,
        expanded,
        graph,
        images: platform.images,
        set,
    })
}
