//! Relative host paths, resolved the way deploy hooks expect.
//!
//! The deploy agent unpacks a build into `$TARGET` and runs its hooks from
//! `$TARGET/teletraan/` (or `$TARGET/teletraan/$ENV_NAME/`), and real hooks
//! name files from the top of the build: `-c teletraan/config/x.conf`,
//! `logrotate: {file: teletraan/config/logrotate/x}`. A relative path is
//! looked up in the current directory, then under `$TARGET`; Docker never
//! receives a relative bind source. This module owns only that lookup; the
//! container set it rewrites comes from [`super::expand`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::container::{LABEL_CONFIG_HASH, config_hash};
use super::{Expanded, Role};
use crate::diagnostic::SourceError;
use crate::serviceset::{Serviceset, Vars};

/// Where relative paths are looked up, in order.
#[derive(Debug, Clone, Default)]
pub struct Bases {
    pub cwd: Option<PathBuf>,
    /// `$TARGET` (from `-e TARGET=…` or the environment).
    pub target: Option<PathBuf>,
}

impl Bases {
    /// This process's current directory and `TARGET` from `vars`.
    pub fn current(vars: &Vars) -> Bases {
        let cwd = std::env::current_dir().ok();
        let target = vars
            .get("TARGET")
            .filter(|t| !t.is_empty())
            .map(|t| match &cwd {
                Some(cwd) => cwd.join(t),
                None => PathBuf::from(t),
            });
        Bases { cwd, target }
    }

    fn describe(&self) -> String {
        let show = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("unset".to_owned(), |p| p.display().to_string())
        };
        format!(
            "neither in the current directory ({}) nor under $TARGET ({})",
            show(&self.cwd),
            show(&self.target)
        )
    }
}

/// Which base a relative path was found under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    CurrentDir,
    Target,
}

impl std::fmt::Display for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Base::CurrentDir => "the current directory",
            Base::Target => "$TARGET",
        })
    }
}

/// A relative path of the file and the absolute one used for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedPath {
    /// The container whose bind it is; `None` for the serviceset file.
    pub container: Option<String>,
    pub given: String,
    pub used: PathBuf,
    pub from: Base,
}

impl std::fmt::Display for ResolvedPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.container {
            Some(c) => write!(f, "{c}: bind source `{}`", self.given)?,
            None => write!(f, "serviceset file `{}`", self.given)?,
        }
        write!(f, " → {} (found under {})", self.used.display(), self.from)
    }
}

/// `given` if absolute, else the first of `cwd/given`, `$TARGET/given` that exists.
pub fn resolve(given: &Path, bases: &Bases) -> Result<(PathBuf, Option<Base>), String> {
    if given.is_absolute() {
        return Ok((given.to_path_buf(), None));
    }
    let candidates = [
        (bases.cwd.as_ref(), Base::CurrentDir),
        (bases.target.as_ref(), Base::Target),
    ];
    for (base, which) in candidates {
        let Some(path) = base.map(|b| b.join(given)) else {
            continue;
        };
        // Found, or there but unusable (a loop of links, no permission):
        // say so rather than that it is missing.
        match std::fs::metadata(&path) {
            Ok(_) => return Ok((path, Some(which))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(format!("{} is a loop of symbolic links", path.display()));
            }
            Err(e) => return Err(format!("cannot look at {}: {e}", path.display())),
        }
    }
    Err(format!(
        "`{}` is a relative path, found {}",
        given.display(),
        bases.describe()
    ))
}

/// Whether a bind's source is a relative host path (`a/b`, `./a`, `..`),
/// as opposed to an absolute path or a named volume (`data`).
fn is_relative_source(source: &str) -> bool {
    !source.starts_with('/') && (source.contains('/') || source.starts_with('.'))
}

/// Make every relative bind source absolute, recomputing the config hash of
/// the containers that change. A source found under neither base is an
/// error pointing at the volume or sidecar that asked for it.
pub fn resolve_binds(
    set: &Serviceset,
    expanded: &mut Expanded,
    bases: &Bases,
) -> Result<Vec<ResolvedPath>, SourceError> {
    let mut resolved = Vec::new();
    for spec in &mut expanded.containers {
        let mut changed = false;
        for bind in &mut spec.create.host_config.binds {
            let (source, rest) = bind.split_once(':').unwrap_or((bind.as_str(), ""));
            if !is_relative_source(source) {
                continue;
            }
            let (used, from) = resolve(Path::new(source), bases).map_err(|m| {
                let (owner, field) = match &spec.role {
                    Role::Sidecar { owner, kind } => (owner.as_str(), kind.as_str()),
                    _ => (spec.name.as_str(), "volumes"),
                };
                set.error_at(
                    owner,
                    Some(field),
                    format!(
                        "{}: bind source {m}; Docker takes only absolute host paths",
                        spec.name
                    ),
                )
                .with_help(Some(
                    "give an absolute path, or run from the build directory with TARGET set to it"
                        .to_owned(),
                ))
            })?;
            resolved.push(ResolvedPath {
                container: Some(spec.name.clone()),
                given: source.to_owned(),
                used: used.clone(),
                from: from.unwrap_or(Base::CurrentDir),
            });
            *bind = if rest.is_empty() {
                used.display().to_string()
            } else {
                format!("{}:{rest}", used.display())
            };
            changed = true;
        }
        if changed {
            spec.create.labels.remove(LABEL_CONFIG_HASH);
            spec.config_hash = config_hash(&spec.create);
            spec.create
                .labels
                .insert(LABEL_CONFIG_HASH.into(), spec.config_hash.clone());
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_dir_then_target() {
        let root = std::env::temp_dir().join(format!("telefig-paths-{}", std::process::id()));
        let cwd = root.join("target/teletraan");
        let target = root.join("target");
        std::fs::create_dir_all(target.join("teletraan/config")).unwrap();
        std::fs::write(target.join("teletraan/config/x.conf"), "").unwrap();
        std::fs::write(cwd.join("here.conf"), "").unwrap();
        let bases = Bases {
            cwd: Some(cwd.clone()),
            target: Some(target.clone()),
        };
        let found = |p: &str| resolve(Path::new(p), &bases);
        assert_eq!(
            found("teletraan/config/x.conf").unwrap(),
            (target.join("teletraan/config/x.conf"), Some(Base::Target))
        );
        assert_eq!(
            found("here.conf").unwrap(),
            (cwd.join("here.conf"), Some(Base::CurrentDir))
        );
        assert_eq!(found("/abs").unwrap(), (PathBuf::from("/abs"), None));
        let err = found("nowhere.conf").unwrap_err();
        assert!(err.contains("neither in the current directory"), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn named_volumes_and_absolute_sources_are_left_alone() {
        for (source, relative) in [
            ("data", false),
            ("/var/log", false),
            ("teletraan/x", true),
            ("./x", true),
            ("..", true),
        ] {
            assert_eq!(is_relative_source(source), relative, "{source}");
        }
    }
}
