//! The front of the pipeline shared by the commands that read a file:
//! serviceset → template → expand with the platform → graph.

use std::path::PathBuf;

use anyhow::Context;

use super::UsageError;
use super::args::Global;
use crate::graph::Graph;
use crate::platform::{Expanded, Platform, expand};
use crate::spec::{self, Vars};

pub struct Loaded {
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

pub fn load(g: &Global) -> anyhow::Result<Loaded> {
    let file = config_path(g)?;
    let vars = vars(g);
    let set = spec::load(&file, &vars)?;
    let platform = Platform::load(g.platform.as_deref())?;
    let name = spec::serviceset_name(g.name.as_deref(), &vars, &file);
    if !(spec::is_docker_name(&name) || name.chars().all(|c| c.is_ascii_alphanumeric()))
        || name.is_empty()
    {
        return Err(UsageError(format!(
            "serviceset name `{name}` is not usable as a label and lock name: pass --name with letters, digits, `_`, `.`, `-`"
        ))
        .into());
    }
    let expanded = expand(&set, &name, &platform, &vars)?;
    let graph = Graph::build(&expanded).with_context(|| format!("in {}", file.display()))?;
    Ok(Loaded {
        file,
        vars,
        expanded,
        graph,
    })
}
