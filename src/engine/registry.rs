//! Asking dockerd about a registry: the Engine API's distribution inspect
//! (`GET /distribution/{name}/json`), which makes dockerd resolve an image
//! reference on the registry itself — over TLS or plain HTTP as dockerd is
//! configured, through dockerd's network path, with the credentials a pull
//! would send. `doctor` judges the answer; this file only reports it.
//! The credentials themselves are `registry::credentials`'; this file hands
//! them to bollard.

use bollard::auth::DockerCredentials;
use serde::Serialize;

use super::{Engine, Error};
use crate::registry::{self, HelperError};

/// What dockerd got from the registry for one image reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum RegistryAnswer {
    /// The registry resolved the reference to a manifest.
    Serves { digest: String },
    /// The registry answered, but not with the image: no such image (404),
    /// or the credentials were refused (401, 403). It is reachable.
    Answered { status: u16, message: String },
    /// dockerd got no usable answer: it could not resolve or connect to the
    /// registry, the TLS handshake failed, or the registry erred.
    Unreachable { message: String },
}

/// The credentials a pull sends to `registry` (a host, `docker.io` for
/// Docker Hub), as bollard carries them to dockerd.
pub(super) async fn credentials_for(
    registry: &str,
) -> Result<Option<DockerCredentials>, HelperError> {
    let found = registry::credentials::for_registry(registry).await?;
    Ok(found.map(|c| DockerCredentials {
        username: c.username,
        password: c.password,
        identitytoken: c.identitytoken,
        serveraddress: c.serveraddress,
        ..Default::default()
    }))
}

impl Engine {
    /// Have dockerd resolve `reference` (`registry/name:tag`) on its registry.
    /// Err only when dockerd itself did not answer.
    pub async fn inspect_distribution(&self, reference: &str) -> Result<RegistryAnswer, Error> {
        // The credentials a pull would send; a helper that fails sends none
        // and the registry's 401 says so.
        let registry = crate::platform::Reference::parse(reference)
            .map(|r| r.registry().to_owned())
            .unwrap_or_default();
        let credentials = credentials_for(&registry).await.ok().flatten();
        match self
            .call(
                "distribution inspect",
                reference,
                self.docker.inspect_registry_image(reference, credentials),
            )
            .await?
        {
            Ok(inspect) => Ok(RegistryAnswer::Serves {
                digest: inspect.descriptor.digest.unwrap_or_default(),
            }),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            }) => Ok(classify(status_code, message)),
            Err(source) => Err(Error::Docker {
                op: "distribution inspect",
                target: reference.to_owned(),
                source,
            }),
        }
    }
}

/// dockerd answers 401/403/404 when the registry did; anything else (500
/// with the dial, DNS or TLS error) means it reached no registry.
fn classify(status: u16, message: String) -> RegistryAnswer {
    match status {
        401 | 403 | 404 => RegistryAnswer::Answered { status, message },
        _ => RegistryAnswer::Unreachable { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerd_status_tells_an_answering_registry_from_none() {
        let answered = classify(404, "manifest unknown: manifest unknown".into());
        assert!(matches!(
            answered,
            RegistryAnswer::Answered { status: 404, .. }
        ));
        assert!(matches!(
            classify(401, "unauthorized".into()),
            RegistryAnswer::Answered { status: 401, .. }
        ));
        let refused =
            "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused";
        assert_eq!(
            classify(500, refused.into()),
            RegistryAnswer::Unreachable {
                message: refused.into()
            }
        );
    }
}
