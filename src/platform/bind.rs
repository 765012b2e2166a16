//! Bind mounts as a structure: a host source, a container target and
//! Docker's options, each checked on its own. Docker's `src:dst[:opts]`
//! text is only ever built from a [`Bind`] ([`Bind::docker`]), so a value
//! cannot add a part of its own (`file: "/etc:/host-etc:rw"`).
//!
//! Two ways in: a volume the serviceset wrote (`/a:/b:ro`), read whole by
//! [`Bind::parse`]; and a platform template's volume, whose parts are
//! split before templating and filled in one by one ([`template_parts`],
//! [`Bind::from_parts`]). A source may still be relative here; `paths`
//! looks it up (current directory, then `$TARGET`) and [`normalize`]s it,
//! so Docker only ever gets an absolute, normalized host path.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// One bind mount, as the serviceset or a template asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The host path: relative until `paths` resolves it.
    pub source: PathBuf,
    /// The absolute path inside the container, normalized.
    pub target: PathBuf,
    /// As written, in order (Docker's text keeps it).
    pub options: Vec<BindOption>,
}

/// The options Docker takes on a bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOption {
    ReadOnly,
    ReadWrite,
    /// Mount propagation (`rslave`, `rshared`, …).
    Propagation(&'static str),
    /// SELinux relabelling: `z` (shared) or `Z` (private).
    Relabel(&'static str),
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];
const RELABELS: [&str; 2] = ["z", "Z"];

impl BindOption {
    fn parse(text: &str) -> Result<BindOption, String> {
        match text {
            "ro" => Ok(BindOption::ReadOnly),
            "rw" => Ok(BindOption::ReadWrite),
            _ => {
                if let Some(p) = PROPAGATIONS.iter().find(|p| **p == text) {
                    Ok(BindOption::Propagation(p))
                } else if let Some(r) = RELABELS.iter().find(|r| **r == text) {
                    Ok(BindOption::Relabel(r))
                } else {
                    Err(format!(
                        "unknown bind option `{text}`: use ro or rw, a propagation ({}), or z/Z",
                        PROPAGATIONS.join(", ")
                    ))
                }
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BindOption::ReadOnly => "ro",
            BindOption::ReadWrite => "rw",
            BindOption::Propagation(p) | BindOption::Relabel(p) => p,
        }
    }

    /// Which options exclude each other (one access mode, one propagation, one label).
    fn group(self) -> u8 {
        match self {
            BindOption::ReadOnly | BindOption::ReadWrite => 0,
            BindOption::Propagation(_) => 1,
            BindOption::Relabel(_) => 2,
        }
    }
}

/// Which part of a bind a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Source,
    Target,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Source => "source",
            Part::Target => "target",
        })
    }
}

impl Bind {
    /// A volume as the serviceset wrote it: `SOURCE:TARGET[:OPTIONS]`. A
    /// bare name (`data`) is what Docker takes for a named volume, which
    /// telefig does not create: it is refused, not guessed at.
    pub fn parse(text: &str) -> Result<Bind, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, options) = match parts.as_slice() {
            [s, t] => (*s, *t, ""),
            [s, t, o] if !o.is_empty() => (*s, *t, *o),
            _ => {
                return Err(format!(
                    "volume `{text}` is not SOURCE:TARGET or SOURCE:TARGET:OPTIONS (a path holds no `:`)"
                ));
            }
        };
        let bind = Bind::from_parts(source, target, options)
            .map_err(|m| format!("volume `{text}`: {m}"))?;
        if !source.contains('/') && !source.starts_with('.') {
            return Err(format!(
                "volume `{text}`: `{source}` would be a named Docker volume, which telefig does not manage; write a host path (`/abs/{source}`, or `./{source}` for one of the build)"
            ));
        }
        Ok(bind)
    }

    /// A bind from its parts, each a value of its own: a `:` or `,` in the
    /// source or target, or an empty one, is refused.
    pub fn from_parts(source: &str, target: &str, options: &str) -> Result<Bind, String> {
        let source = check_path(Part::Source, source)?;
        let target = check_path(Part::Target, target)?;
        if !target.is_absolute() {
            return Err(format!(
                "target `{}` is not an absolute path in the container",
                target.display()
            ));
        }
        let target = normalize(&target);
        if target == Path::new("/") {
            return Err("target `/` would hide the container's whole file system".into());
        }
        let mut parsed: Vec<BindOption> = Vec::new();
        for text in options.split(',').filter(|_| !options.is_empty()) {
            let option = BindOption::parse(text)?;
            if let Some(other) = parsed.iter().find(|o| o.group() == option.group()) {
                return Err(format!(
                    "bind options `{}` and `{text}` cannot both be given",
                    other.as_str()
                ));
            }
            parsed.push(option);
        }
        Ok(Bind {
            source,
            target,
            options: parsed,
        })
    }

    pub fn read_only(&self) -> bool {
        self.options.contains(&BindOption::ReadOnly)
    }

    /// Whether mounts made in the container reach the host (`shared`, `rshared`).
    pub fn propagates_to_host(&self) -> bool {
        self.options
            .iter()
            .any(|o| matches!(o, BindOption::Propagation("shared" | "rshared")))
    }

    /// Docker's `Binds` text, built from the parts (checked to hold no `:`).
    pub fn docker(&self) -> String {
        let mut out = format!("{}:{}", self.source.display(), self.target.display());
        if !self.options.is_empty() {
            out.push(':');
            let options: Vec<&str> = self.options.iter().map(|o| o.as_str()).collect();
            out.push_str(&options.join(","));
        }
        out
    }
}

fn check_path(part: Part, text: &str) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        return Err(format!("the {part} is empty"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| matches!(c, ':' | ',') || c.is_control())
    {
        return Err(format!(
            "{part} `{}` holds {}: a path here is one value, and Docker reads `:` and `,` as separators",
            text.escape_debug(),
            match c {
                ':' => "`:`".to_owned(),
                ',' => "`,`".to_owned(),
                c => format!("the control character {}", c.escape_unicode()),
            }
        ));
    }
    Ok(PathBuf::from(text))
}

/// `path` without `.` and `..` and repeated separators, lexically (as
/// Docker cleans a bind source): `/a/./b/../c/` → `/a/c`. `..` at the
/// root stays at the root.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(if path.is_absolute() { "/" } else { "." });
    }
    out
}

/// A template volume's text split at each `:` that is outside Jinja
/// delimiters (`{{ a[1:] }}` stays whole), so each part can be templated
/// on its own.
pub fn template_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut inside: Option<&str> = None;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let rest = &text[i..];
        match inside {
            None => {
                if let Some(close) = ["{{", "{%", "{#"]
                    .iter()
                    .position(|open| rest.starts_with(open))
                    .map(|n| ["}}", "%}", "#}"][n])
                {
                    inside = Some(close);
                    i += 2;
                    continue;
                }
                if bytes[i] == b':' {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
            }
            Some(close) => {
                if rest.starts_with(close) {
                    inside = None;
                    i += 2;
                    continue;
                }
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_as_written() {
        for (text, docker, read_only) in [
            ("/var/log:/var/log", "/var/log:/var/log", false),
            ("/var/log:/var/log:ro", "/var/log:/var/log:ro", true),
            ("/a:/b:rw", "/a:/b:rw", false),
            ("/a:/b:ro,rslave", "/a:/b:ro,rslave", true),
            ("./conf:/etc/app/", "./conf:/etc/app", false),
            ("teletraan/x:/x:Z", "teletraan/x:/x:Z", false),
        ] {
            let bind = Bind::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(bind.docker(), docker, "{text}");
            assert_eq!(bind.read_only(), read_only, "{text}");
        }
    }

    #[test]
    fn bad_volumes_say_why() {
        for (text, why) in [
            ("/a", "is not SOURCE:TARGET"),
            ("/a:/b:ro:x", "is not SOURCE:TARGET"),
            ("/a:/b:", "is not SOURCE:TARGET"),
            (":/b", "the source is empty"),
            ("/a:", "the target is empty"),
            ("/a:b", "not an absolute path"),
            ("/a:/", "target `/`"),
            ("/a:/b:nocopy", "unknown bind option `nocopy`"),
            ("/a:/b:ro,rw", "`ro` and `rw` cannot both"),
            ("/a:/b:ro,ro", "`ro` and `ro` cannot both"),
            ("/a:/b:ro,", "unknown bind option ``"),
            ("/a,b:/b", "holds `,`"),
            ("data:/data", "named Docker volume"),
            ("/a\u{1b}[2J:/b", "control character"),
        ] {
            let err = Bind::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_part_holding_a_separator_is_refused() {
        for (source, target) in [
            ("/etc:/host-etc:rw", "/x"),
            ("/etc,rw", "/x"),
            ("", "/x"),
            (" ", "/x"),
            ("/etc", "/x:/y"),
        ] {
            assert!(
                Bind::from_parts(source, target, "ro").is_err(),
                "{source} {target}"
            );
        }
        let bare = Bind::from_parts("lr.conf", "/etc/lr", "ro").unwrap();
        assert_eq!(bare.source, Path::new("lr.conf"));
    }

    #[test]
    fn normalizing_is_lexical() {
        for (path, want) in [
            ("/a/./b/../c/", "/a/c"),
            ("/../../etc", "/etc"),
            ("//var//log", "/var/log"),
            ("/", "/"),
            ("a/../../b", "../b"),
            ("./a", "a"),
            (".", "."),
        ] {
            assert_eq!(normalize(Path::new(path)), Path::new(want), "{path}");
        }
    }

    #[test]
    fn template_parts_split_outside_jinja_only() {
        assert_eq!(
            template_parts("{{file}}:/etc/logrotate.d/{{owner}}:ro"),
            ["{{file}}", "/etc/logrotate.d/{{owner}}", "ro"]
        );
        assert_eq!(template_parts("{{ a[1:] }}:/b"), ["{{ a[1:] }}", "/b"]);
        assert_eq!(
            template_parts("{% if x %}/a{% else %}/b{% endif %}:/c"),
            ["{% if x %}/a{% else %}/b{% endif %}", "/c"]
        );
        assert_eq!(template_parts("/é:/b"), ["/é", "/b"]);
    }
}
