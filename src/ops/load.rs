//! The front of the pipeline for the operations that read a file: the
//! serviceset file found (as given, then under `$TARGET`), named, templated,
//! expanded with the platform file, its graph built — a cycle pointed back
//! at the file's line. The caller says what its flags said ([`Request`]);
//! it gets a [`Loaded`] or an [`Error`] that is always bad input (exit 2).
//!
//! Not here: printing which files a relative path stood for (the caller
//! prints `Loaded::resolved`), the record a start keeps (`ops::start`).

use std::path::PathBuf;

use crate::diagnostic::LoadError;
use crate::graph::Graph;
use crate::name::{NameError, ServicesetName};
use crate::platform::GcPolicy;
use crate::platform::paths::{self, Bases, ResolvedPath};
use crate::platform::{ContainerSpec, Expanded, Platform, Role, expand_on};
use crate::serviceset::{self, Vars};

/// What the caller was given: `-c`, `--name`, `-e` and `--platform`.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub config: Option<PathBuf>,
    /// `--name`, checked as it was parsed.
    pub name: Option<ServicesetName>,
    /// `-e KEY=VALUE`, in order; they come before the process environment.
    pub env: Vec<(String, String)>,
    pub platform: Option<PathBuf>,
}

impl Request {
    /// The template variables: `-e` first, then the process environment.
    pub fn vars(&self) -> Vars {
        Vars::from_process(self.env.iter().cloned())
    }
}

/// A serviceset file, loaded and expanded, with its graph.
pub struct Loaded {
    pub name: ServicesetName,
    /// The serviceset file, absolute.
    pub file: PathBuf,
    /// Relative paths of the input and the absolute ones used for them.
    pub resolved: Vec<ResolvedPath>,
    /// `-e` as given (the record keeps it, secrets as digests).
    pub env: Vec<(String, String)>,
    pub vars: Vars,
    pub expanded: Expanded,
    pub graph: Graph,
    /// The platform's image settings (cleanup, pull margin).
    pub images: GcPolicy,
    /// The file as parsed, to point at its lines.
    pub set: serviceset::Serviceset,
}

/// Why a file could not be loaded; every one is the input's fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no serviceset file: pass -c FILE")]
    NoFile,
    #[error(
        "cannot use the serviceset file: {0}; pass -c with an absolute path or set TARGET to the build directory"
    )]
    NotFound(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    File(#[from] LoadError),
}

/// Load `request`'s file (see the module note).
pub fn load(request: &Request) -> Result<Loaded, Error> {
    load_with(request, |_| {})
}

/// [`load`], telling `named` the serviceset's name as soon as it is known:
/// before the file is parsed (it comes from `--name`, `ENV_NAME` or the
/// file's name), so a caller may take the lock meanwhile. Errors come in
/// the same order as from [`load`]: the file's own first.
pub fn load_with(request: &Request, named: impl FnOnce(&ServicesetName)) -> Result<Loaded, Error> {
    let given = request.config.clone().ok_or(Error::NoFile)?;
    let vars = request.vars();
    let bases = Bases::current(&vars);
    // A relative -c is relative to the build: the current directory, then $TARGET.
    let (file, from) = paths::resolve(&given, &bases).map_err(Error::NotFound)?;
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
        request.name.as_deref(),
        &vars,
        &file,
    ));
    if let Ok(name) = &name {
        named(name);
    }
    let platform_file = request.platform.as_deref();
    // What the platform lists as secret is masked in the file's errors too.
    let set = serviceset::load(shown, &vars).inspect_err(|_| {
        if let Ok(platform) = Platform::load(platform_file) {
            learn_listed(&vars, &platform);
        }
    })?;
    let platform = Platform::load(platform_file)?;
    learn_listed(&vars, &platform);
    let name = name?;
    let on_host = expand_on(&set, &name, &platform, &vars, &bases)?;
    let expanded = on_host.expanded;
    crate::redact::learn(&expanded.secrets);
    resolved.extend(on_host.resolved);
    let graph = Graph::build(&expanded).map_err(|err| cycle_at(&set, &expanded, &err))?;
    Ok(Loaded {
        name,
        file,
        resolved,
        env: request.env.clone(),
        vars,
        expanded,
        graph,
        images: platform.images,
        set,
    })
}

/// Mask the values of the variables `platform` lists as secret in this
/// process's output (those whose names look secret the caller masks as it
/// starts, from `-e` and the environment).
fn learn_listed(vars: &Vars, platform: &Platform) {
    crate::redact::learn(&crate::redact::Redactor::new(
        vars.secret_values(&platform.secrets),
    ));
}

/// A cycle is a mistake in the file: point at the `depends_on` of its first
/// member's entry (a sidecar's, at its owner's).
fn cycle_at(
    set: &serviceset::Serviceset,
    expanded: &Expanded,
    err: &crate::graph::Error,
) -> LoadError {
    let crate::graph::Error::Cycle(members) = err;
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
    set.error_at(&owner, Some("depends_on"), err.to_string())
        .into()
}

/// The declared container a sidecar belongs to.
fn owner_of(spec: &ContainerSpec) -> Option<&str> {
    match &spec.role {
        Role::Sidecar { owner, .. } => Some(owner),
        _ => None,
    }
}
