//! The front of the pipeline shared by the commands that read a file:
//! serviceset → template → expand with the platform → graph.

use std::path::PathBuf;

use super::UsageError;
use super::args::Global;
use crate::graph::Graph;
use crate::name::ServicesetName;
use crate::platform::{Expanded, Platform, expand};
use crate::spec::{self, Vars};

pub struct Loaded {
    pub name: ServicesetName,
    pub file: PathBuf,
    pub vars: Vars,
    pub expanded: Expanded,
    pub graph: Graph,
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

pub fn load(g: &Global) -> anyhow::Result<Loaded> {
    let file = config_path(g)?;
    let vars = vars(g);
    let set = spec::load(&file, &vars)?;
    let platform = Platform::load(g.platform.as_deref())?;
    // `--name` was checked as it was parsed; ENV_NAME and the file name here.
    let name = ServicesetName::parse(&spec::serviceset_name(g.name.as_deref(), &vars, &file))
        .map_err(|e| UsageError(e.to_string()))?;
    let expanded = expand(&set, &name, &platform, &vars)?;
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
        spec::Error::from(set.error_at(&owner, Some("depends_on"), err.to_string()))
    })?;
    Ok(Loaded {
        name,
        file,
        vars,
        expanded,
        graph,
    })
}
