//! Image references: `<registry>/<image>:<version>` and where to pull it.
//!
//! An image whose first path part is not a registry host (no `.` or `:`,
//! not `localhost`) comes from the platform's registries: the primary first,
//! then each mirror. The container is always configured with the primary's
//! reference, so its config hash does not depend on which registry answered.

use serde::{Deserialize, Serialize};

use super::Registries;
use super::reference::{self, Reference};

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

/// Where the image comes from, or what is wrong: the field it concerns
/// (`image`, `version`, `registry`) and why.
pub fn resolve(
    req: &ImageRequest,
    registries: &Registries,
) -> Result<Image, (&'static str, String)> {
    let named = req
        .registry
        .map(str::trim)
        .filter(|r| !matches!(*r, "" | "dockerhub" | "docker.io"));
    if let Some(host) = named {
        reference::check_host(host).map_err(|e| ("registry", e.to_string()))?;
    }
    resolve_reference(req, registries).map_err(|m| ("version", m))
}

fn resolve_reference(req: &ImageRequest, registries: &Registries) -> Result<Image, String> {
    let mut reference = Reference::parse(req.image).map_err(|e| e.to_string())?;
    match (req.version, &reference.digest) {
        (Some(v), Some(_)) => {
            return Err(format!(
                "`{}` is pinned by digest; remove version `{v}` or the digest",
                req.image.trim()
            ));
        }
        (Some(v), None) => reference.tag = Some(check_version(v)?.to_owned()),
        (None, None) if reference.tag.is_none() => match req.fallback_version {
            Some(v) => reference.tag = Some(check_version(v)?.to_owned()),
            None => {
                return Err(format!(
                    "no version for image `{}`: set `version:` or export BUILD_COMMIT",
                    req.image.trim()
                ));
            }
        },
        (None, _) => {}
    }
    if reference.has_host() {
        return Ok(single(reference.to_string()));
    }
    match req.registry.map(str::trim) {
        Some("dockerhub" | "docker.io") => Ok(single(reference.to_string())),
        Some(host) if !host.is_empty() => Ok(single(reference.on_host(host).to_string())),
        _ if registries.primary.is_empty() => Ok(single(reference.to_string())),
        _ => {
            let sources = std::iter::once(&registries.primary)
                .chain(&registries.mirrors)
                .map(|r| reference.on_host(r).to_string())
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

/// A `version:` (or BUILD_COMMIT), used as the image tag.
fn check_version(version: &str) -> Result<&str, String> {
    if version.is_empty() {
        return Err("the image version is empty: set `version:` or export BUILD_COMMIT".into());
    }
    reference::check_tag(version).map_err(|e| e.to_string())
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
        .map_err(|(_, m)| m)
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
    fn a_registry_is_a_host_or_refused() {
        let req = |registry| ImageRequest {
            image: "x",
            version: Some("v1"),
            registry: Some(registry),
            fallback_version: None,
        };
        let err = resolve(&req("http://evil host/../"), &regs()).unwrap_err();
        assert_eq!(err.0, "registry");
        assert!(err.1.contains("is not a registry host"), "{}", err.1);
        let ok = resolve(&req("my.registry:5000"), &regs()).unwrap();
        assert_eq!(ok.reference, "my.registry:5000/x:v1");
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
