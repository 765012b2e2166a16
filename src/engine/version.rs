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
        let version: Option<ClientVersion> = known.and_then(ApiVersion::parse).map(Into::into);
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

/// An Engine API version, `major.minor`, ordered as numbers (1.9 < 1.41).
/// The one parser of version text: the remembered version, `doctor`'s check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: usize,
    pub minor: usize,
}

impl ApiVersion {
    /// "1.41" → 1.41; anything else → `None`.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl From<ApiVersion> for ClientVersion {
    fn from(v: ApiVersion) -> Self {
        ClientVersion {
            major_version: v.major,
            minor_version: v.minor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_parses_as_two_numbers_and_orders_as_numbers() {
        let v = ApiVersion::parse("1.41").expect("parses");
        assert_eq!((v.major, v.minor), (1, 41));
        assert_eq!(v.to_string(), "1.41");
        assert!(ApiVersion::parse(" 1.9 ").unwrap() < v);
        assert!(ApiVersion::parse("").is_none());
        assert!(ApiVersion::parse("1").is_none());
        assert!(ApiVersion::parse("one.two").is_none());
    }
}
