//! Image references: `<registry>/<image>:<version>` and where to pull it.
//!
//! An image whose first path part is not a registry host (no `.` or `:`,
//! not `localhost`) comes from the platform's registries: the primary first,
//! then each mirror. The container is always configured with the primary's
//! reference, so its config hash does not depend on which registry answered.

use serde::{Deserialize, Serialize};

use super::Registries;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// What the container is created from (`docker ps` shows it).
    pub reference: String,
    /// Where to pull it from, in order; the first is `reference` itself.
    pub sources: Vec<String>,
}

/// What the file said about an image.
pub struct ImageRequest<'a> {
    pub image: &'a str,
    pub version: Option<&'a str>,
    pub registry: Option<&'a str>,
    /// Used when neither `version` nor the image carries a tag (BUILD_COMMIT).
    pub fallback_version: Option<&'a str>,
}

pub fn resolve(req: &ImageRequest, registries: &Registries) -> Result<Image, String> {
    let image = req.image.trim();
    if image.is_empty() {
        return Err("the image name is empty".into());
    }
    let (name, suffix) = split_tag(image)?;
    let suffix = match (req.version, suffix) {
        (Some(v), Suffix::Digest(_)) => {
            return Err(format!(
                "`{image}` is pinned by digest; remove version `{v}` or the digest"
            ));
        }
        (Some(v), _) => Suffix::Tag(check_tag(v)?),
        (None, Suffix::None) => match req.fallback_version {
            Some(v) => Suffix::Tag(check_tag(v)?),
            None => {
                return Err(format!(
                    "no version for image `{image}`: set `version:` or export BUILD_COMMIT"
                ));
            }
        },
        (None, s) => s,
    };
    let tail = match &suffix {
        Suffix::Tag(t) => format!("{name}:{t}"),
        Suffix::Digest(d) => format!("{name}@{d}"),
        Suffix::None => unreachable!("handled above"),
    };
    if has_registry_host(name) {
        return Ok(single(tail));
    }
    match req.registry.map(str::trim) {
        Some("dockerhub" | "docker.io") => Ok(single(tail)),
        Some(host) if !host.is_empty() => Ok(single(format!("{host}/{tail}"))),
        _ if registries.primary.is_empty() => Ok(single(tail)),
        _ => {
            let sources = std::iter::once(&registries.primary)
                .chain(&registries.mirrors)
                .map(|r| format!("{r}/{tail}"))
                .collect::<Vec<_>>();
            Ok(Image {
                reference: sources[0].clone(),
                sources,
            })
        }
    }
}

fn single(reference: String) -> Image {
    Image {
        sources: vec![reference.clone()],
        reference,
    }
}

enum Suffix<'a> {
    None,
    Tag(&'a str),
    Digest(&'a str),
}

fn split_tag(image: &str) -> Result<(&str, Suffix<'_>), String> {
    if let Some((name, digest)) = image.split_once('@') {
        return Ok((name, Suffix::Digest(digest)));
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            Ok((&image[..at], Suffix::Tag(check_tag(&image[at + 1..])?)))
        }
        None => Ok((image, Suffix::None)),
    }
}

/// Docker's tag rule: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<&str, String> {
    let mut chars = tag.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(tag)
    } else if tag.is_empty() {
        Err("the image version is empty: set `version:` or export BUILD_COMMIT".into())
    } else {
        Err(format!(
            "`{tag}` is not a valid image tag: use letters, digits, `_`, `.`, `-` (up to 128, not starting with `.` or `-`)"
        ))
    }
}

fn has_registry_host(name: &str) -> bool {
    match name.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> Registries {
        Registries {
            primary: "reg.internal".into(),
            mirrors: vec!["mirror.internal".into()],
        }
    }

    fn resolve_str(
        image: &str,
        version: Option<&str>,
        registry: Option<&str>,
    ) -> Result<Image, String> {
        resolve(
            &ImageRequest {
                image,
                version,
                registry,
                fallback_version: None,
            },
            &regs(),
        )
    }

    #[test]
    fn table() {
        type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a str, usize);
        let cases: &[Case] = &[
            (
                "vitess/vtctld",
                Some("abc123"),
                None,
                "reg.internal/vitess/vtctld:abc123",
                2,
            ),
            (
                "vitess/vtctld",
                Some("abc123"),
                Some("dockerhub"),
                "vitess/vtctld:abc123",
                1,
            ),
            ("singer:latest", None, None, "reg.internal/singer:latest", 2),
            (
                "127.0.0.1:5000/x",
                Some("v1"),
                None,
                "127.0.0.1:5000/x:v1",
                1,
            ),
            ("localhost/x:v2", None, None, "localhost/x:v2", 1),
            ("x", Some("v"), Some("other.io"), "other.io/x:v", 1),
        ];
        for (image, version, registry, want, n) in cases {
            let got = resolve_str(image, *version, *registry).unwrap();
            assert_eq!(got.reference, *want);
            assert_eq!(got.sources.len(), *n, "{image}");
        }
    }

    #[test]
    fn mirrors_follow_primary() {
        let got = resolve_str("singer:latest", None, None).unwrap();
        assert_eq!(
            got.sources,
            [
                "reg.internal/singer:latest",
                "mirror.internal/singer:latest"
            ]
        );
    }

    #[test]
    fn bad_versions() {
        assert!(
            resolve_str("x", None, None)
                .unwrap_err()
                .contains("no version")
        );
        assert!(
            resolve_str("x", Some(""), None)
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            resolve_str("x", Some("-bad"), None)
                .unwrap_err()
                .contains("not a valid image tag")
        );
        assert!(
            resolve_str("x", Some("a/b"), None)
                .unwrap_err()
                .contains("not a valid image tag")
        );
    }
}
