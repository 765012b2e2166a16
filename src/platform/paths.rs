//! Relative host paths, resolved the way deploy hooks expect.
//!
//! The deploy agent unpacks a build into `$TARGET` and runs its hooks from
//! `$TARGET/teletraan/` (or `$TARGET/teletraan/$ENV_NAME/`), and real hooks
//! name files from the top of the build: `-c teletraan/config/x.conf`,
//! `logrotate: {file: teletraan/config/logrotate/x}`. A relative path is
//! looked up in the current directory, then under `$TARGET`; Docker never
//! receives a relative bind source. This module owns that lookup (for `-c`
//! and for each bind, which it also normalizes) and the real path a bind
//! source leads to; expansion calls it for every bind it builds.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::bind::{Bind, normalize};
use crate::serviceset::Vars;

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

/// `bind` with its source absolute and normalized: a relative one looked
/// up in the current directory, then under `$TARGET` (the first that
/// exists), and what it was found as, for `container`'s report.
pub fn place_bind(
    mut bind: Bind,
    container: &str,
    bases: &Bases,
) -> Result<(Bind, Option<ResolvedPath>), String> {
    if bind.source.is_absolute() {
        bind.source = normalize(&bind.source);
        return Ok((bind, None));
    }
    let candidates = [
        (bases.cwd.as_ref(), Base::CurrentDir),
        (bases.target.as_ref(), Base::Target),
    ];
    let (used, from) = candidates
        .into_iter()
        .filter_map(|(base, which)| Some((normalize(&base?.join(&bind.source)), which)))
        .find(|(path, _)| path.exists())
        .ok_or_else(|| {
            format!(
                "bind source `{}` is a relative path, found {}; Docker takes only absolute host paths",
                bind.source.display(),
                bases.describe()
            )
        })?;
    let found = ResolvedPath {
        container: Some(container.to_owned()),
        given: bind.source.display().to_string(),
        used: used.clone(),
        from,
    };
    bind.source = used;
    Ok((bind, Some(found)))
}

/// Where `path` leads once symlinks are followed: the real path of its
/// longest existing ancestor, and the rest as written (Docker creates a
/// missing bind source as a directory, following the links above it).
pub fn real_path(path: &Path) -> Option<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return Some(rest.iter().rev().fold(real, |p: PathBuf, c| p.join(c)));
        }
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
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
    fn bind_sources_are_looked_up_and_normalized() {
        let root = std::env::temp_dir().join(format!("telefig-binds-{}", std::process::id()));
        let cwd = root.join("build/teletraan");
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::write(cwd.join("lr.conf"), "").unwrap();
        std::fs::write(root.join("build/top.conf"), "").unwrap();
        let bases = Bases {
            cwd: Some(cwd.clone()),
            target: Some(root.join("build")),
        };
        let place = |source: &str| {
            let bind = Bind::from_parts(source, "/x", "ro").unwrap();
            place_bind(bind, "web", &bases).map(|(b, found)| (b.source, found.map(|f| f.from)))
        };
        // A bare name is a file of the build, not a named volume.
        assert_eq!(
            place("lr.conf").unwrap(),
            (cwd.join("lr.conf"), Some(Base::CurrentDir))
        );
        assert_eq!(
            place("../top.conf").unwrap(),
            (root.join("build/top.conf"), Some(Base::CurrentDir))
        );
        assert_eq!(
            place("teletraan/./lr.conf").unwrap(),
            (cwd.join("lr.conf"), Some(Base::Target))
        );
        assert_eq!(
            place("/var/log/../../etc").unwrap(),
            (PathBuf::from("/etc"), None)
        );
        let err = place("nowhere.conf").unwrap_err();
        assert!(err.contains("neither in the current directory"), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn real_paths_follow_links_above_a_missing_tail() {
        let root = std::env::temp_dir().join(format!("telefig-real-{}", std::process::id()));
        std::fs::create_dir_all(root.join("allowed")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("allowed/escape")).unwrap();
        let real = |p: &str| real_path(&root.join(p)).unwrap();
        let root_real = std::fs::canonicalize(&root).unwrap();
        assert_eq!(real("allowed/escape"), PathBuf::from("/etc"));
        assert_eq!(
            real("allowed/escape/not/yet"),
            PathBuf::from("/etc/not/yet")
        );
        assert_eq!(real("allowed/new"), root_real.join("allowed/new"));
        std::fs::remove_dir_all(root).unwrap();
    }
}
