//! The API version spoken with dockerd, remembered between runs: a
//! connection made with a known version costs no `/version` round trip.
//!
//! The caller keeps the version (in the state dir, keyed by endpoint) and
//! passes it in; when dockerd refuses it (downgraded since), the engine
//! negotiates afresh, tells the caller the new version, and the refused
//! call is made again (`Engine::list`, the first call of every command).

use std::sync::Arc;

use bollard::{ClientVersion, Docker};

use super::docker::CLIENT_TIMEOUT;
use super::{Engine, Error, host::endpoint};

/// Told the version negotiated with dockerd, to remember it.
pub type Remember = Arc<dyn Fn(&str) + Send + Sync>;

impl Engine {
    /// Connect through `DOCKER_HOST` speaking `known` (e.g. "1.41") without
    /// asking dockerd first; with no `known` (or an endpoint other than a
    /// unix socket or plain tcp), negotiate. `remember` is told every
    /// version negotiated, now or later after a refusal.
    pub async fn connect_known(known: Option<&str>, remember: Remember) -> Result<Engine, Error> {
        let endpoint = endpoint();
        let version = known.and_then(parse_version);
        let docker = match &version {
            Some(v) if endpoint.starts_with("unix://") => {
                Docker::connect_with_unix(&endpoint, CLIENT_TIMEOUT.as_secs(), v).map(Some)
            }
            Some(v) if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") => {
                Docker::connect_with_http(&endpoint, CLIENT_TIMEOUT.as_secs(), v).map(Some)
            }
            _ => Ok(None),
        }
        .map_err(|source| Error::Connect {
            endpoint: endpoint.clone(),
            source,
        })?;
        match docker {
            Some(docker) => Ok(Engine::from_docker(
                docker.with_timeout(CLIENT_TIMEOUT),
                Some(remember),
            )),
            None => {
                let mut engine = Engine::connect().await?;
                remember(&engine.api_version());
                engine.remember = Some(remember);
                Ok(engine)
            }
        }
    }

    /// The API version this connection speaks.
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// Whether `err` is dockerd refusing the API version (HTTP 400 "client
    /// version 1.47 is too new. Maximum supported API version is 1.41").
    pub(super) fn version_refused(&self, err: &Error) -> bool {
        matches!(err, Error::Docker { source: bollard::errors::Error::DockerResponseServerError { status_code: 400, message }, .. }
            if message.contains("API version") || message.contains("client version"))
    }

    /// Negotiate afresh after a refusal (every clone speaks the new
    /// version) and tell the caller. Returns whether the version changed.
    pub(super) async fn renegotiate(&self) -> bool {
        let before = self.api_version();
        if self.docker.clone().negotiate_version().await.is_err() {
            return false;
        }
        let now = self.api_version();
        if let Some(remember) = &self.remember {
            remember(&now);
        }
        now != before
    }
}

/// "1.41" → 1.41; anything else → `None` (negotiate instead).
fn parse_version(text: &str) -> Option<ClientVersion> {
    let (major, minor) = text.trim().split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = parse_version("1.41").expect("parses");
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(parse_version("").is_none());
        assert!(parse_version("1").is_none());
        assert!(parse_version("one.two").is_none());
    }
}
