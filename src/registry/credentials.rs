//! Registry credentials, found the way the docker CLI finds them.
//!
//! The Docker config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`) is read once per process and kept. For a
//! registry host, `credHelpers[host]` names a helper, else `credsStore`
//! does, else the `auths` entry for the host applies. A helper is run as
//! `docker-credential-<name> get` with the server on stdin, as the CLI runs
//! it (on every pull: helpers hand out short-lived tokens). Docker Hub is
//! `https://index.docker.io/v1/` in the config and to helpers.
//!
//! No secret leaves this file except inside the credentials handed to
//! dockerd: errors name the helper and the host, never a value.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use crate::platform::reference::{self, DOCKER_HUB};

/// How Docker Hub is keyed in the config and named to helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// What to log in to one registry with, as the docker CLI would send it.
/// Its `Debug` names which parts are set, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    /// An OAuth refresh token (a helper's `<token>` user, or `auths`'s).
    pub identitytoken: Option<String>,
    /// The server name the config or the helper knows the registry by.
    pub serveraddress: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("Credentials")
            .field("username", &set(&self.username))
            .field("password", &set(&self.password))
            .field("identitytoken", &set(&self.identitytoken))
            .field("serveraddress", &self.serveraddress)
            .finish()
    }
}

/// The parts of the Docker config that say how to log in.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// A credential helper that could not answer.
#[derive(Debug, thiserror::Error)]
#[error("credential helper docker-credential-{helper} failed for {registry}: {why}")]
pub struct HelperError {
    helper: String,
    registry: String,
    why: String,
}

/// Credentials for `registry` (a host, `docker.io` for Docker Hub).
pub async fn for_registry(registry: &str) -> Result<Option<Credentials>, HelperError> {
    static CONFIG: OnceCell<DockerConfig> = OnceCell::const_new();
    let config = CONFIG.get_or_init(load).await;
    config.lookup(registry).await
}

async fn load() -> DockerConfig {
    let Some(dir) = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
    else {
        return DockerConfig::default();
    };
    let path = dir.join("config.json");
    // Small and never blocking (a FIFO is refused), so read in place.
    match crate::read::text(&path, crate::read::SMALL_CAP) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!("ignoring {}: not a Docker config ({e})", path.display());
            DockerConfig::default()
        }),
        Err(_) => DockerConfig::default(),
    }
}

/// `docker.io` → the server name Docker Hub goes by; other hosts as they are.
fn server_name(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_SERVER
    } else {
        registry
    }
}

/// The host an `auths` key names: `https://index.docker.io/v1/` → `docker.io`,
/// `https://reg:5000/v2/` → `reg:5000`.
fn key_host(key: &str) -> &str {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    reference::registry_of(host)
}

impl DockerConfig {
    async fn lookup(&self, registry: &str) -> Result<Option<Credentials>, HelperError> {
        let server = server_name(registry);
        let helper = self
            .cred_helpers
            .iter()
            .find(|(k, _)| key_host(k) == registry)
            .map(|(_, v)| v)
            .or(self.creds_store.as_ref())
            .filter(|h| !h.is_empty());
        match helper {
            Some(helper) => run_helper(helper, registry, server).await,
            None => Ok(self.in_auths(registry)),
        }
    }

    fn in_auths(&self, registry: &str) -> Option<Credentials> {
        let entry = self
            .auths
            .iter()
            .find(|(k, _)| key_host(k) == registry)
            .map(|(_, v)| v)?;
        let (username, password) = match entry.auth.as_deref().filter(|a| !a.is_empty()) {
            Some(encoded) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()?;
                let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
                (Some(user.to_owned()), Some(pass.to_owned()))
            }
            None => (entry.username.clone(), entry.password.clone()),
        };
        if username.is_none() && entry.identitytoken.is_none() {
            return None;
        }
        Some(Credentials {
            username,
            password,
            identitytoken: entry.identitytoken.clone(),
            serveraddress: Some(server_name(registry).to_owned()),
        })
    }
}

/// `docker-credential-<helper> get`, the server on stdin, JSON on stdout.
async fn run_helper(
    helper: &str,
    registry: &str,
    server: &str,
) -> Result<Option<Credentials>, HelperError> {
    let fail = |why: String| HelperError {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        why,
    };
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run it ({e}); is it installed and on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| fail(format!("cannot write to it ({e})")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| fail(format!("it did not finish ({e})")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The protocol's "no credentials for this server": pull anonymously.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let said = said.lines().next().unwrap_or_default();
        return Err(fail(format!("it exited with {} ({said})", out.status)));
    }
    // Never echo the answer: it holds the secret.
    let answer: HelperAnswer = serde_json::from_str(&stdout)
        .map_err(|_| fail("it did not print {\"Username\": …, \"Secret\": …} JSON".to_owned()))?;
    let (username, password, identitytoken) = if answer.username == "<token>" {
        (None, None, Some(answer.secret))
    } else {
        (Some(answer.username), Some(answer.secret), None)
    };
    Ok(Some(Credentials {
        username,
        password,
        identitytoken,
        serveraddress: Some(server.to_owned()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DockerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn debug_output_names_which_parts_are_set_but_no_value() {
        let c = Credentials {
            username: Some("alice".into()),
            password: Some("hunter2".into()),
            identitytoken: None,
            serveraddress: Some("reg.internal".into()),
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("<set>") && shown.contains("reg.internal"),
            "{shown}"
        );
    }

    #[test]
    fn docker_hub_auths_key_matches_docker_io() {
        // `user:pass`
        let c = config(r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"}}}"#);
        let creds = c.in_auths("docker.io").expect("Docker Hub's key matches");
        assert_eq!(creds.username.as_deref(), Some("user"));
        assert_eq!(creds.password.as_deref(), Some("pass"));
        assert_eq!(creds.serveraddress.as_deref(), Some(DOCKER_HUB_SERVER));
        assert!(c.in_auths("registry.internal").is_none());
    }

    #[test]
    fn auths_keys_with_scheme_port_and_path() {
        let c = config(
            r#"{"auths": {
                "https://reg.internal:5000/v2/": {"auth": "YTpi"},
                "mirror.internal": {"username": "u", "password": "p"},
                "token.internal": {"identitytoken": "t"},
                "empty.internal": {}
            }}"#,
        );
        assert_eq!(
            c.in_auths("reg.internal:5000").unwrap().username.as_deref(),
            Some("a")
        );
        assert_eq!(
            c.in_auths("mirror.internal").unwrap().password.as_deref(),
            Some("p")
        );
        assert_eq!(
            c.in_auths("token.internal")
                .unwrap()
                .identitytoken
                .as_deref(),
            Some("t")
        );
        assert!(c.in_auths("empty.internal").is_none());
        assert!(
            c.in_auths("reg.internal").is_none(),
            "the port is part of the host"
        );
    }

    #[tokio::test]
    async fn a_missing_helper_is_an_error_naming_it() {
        let c = config(
            r#"{"credHelpers": {"ecr.internal": "telefig-absent-helper"}, "auths": {"ecr.internal": {"auth": "YTpi"}}}"#,
        );
        let err = c.lookup("ecr.internal").await.unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-telefig-absent-helper"),
            "{err}"
        );
        assert!(err.contains("ecr.internal"), "{err}");
        // Another host falls back to `auths` (no credsStore).
        assert!(c.lookup("other.internal").await.unwrap().is_none());
    }
}
