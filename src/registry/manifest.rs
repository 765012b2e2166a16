//! Asking a registry itself what an image's layers weigh, before a pull:
//! dockerd's distribution endpoint names the manifest but gives no layer
//! sizes. `GET /v2/<name>/manifests/<tag>` (Docker v2 schema 2 or OCI; a
//! manifest list or index → the entry for this host's platform), then the
//! image config blob for the layers' diff ids, so the caller can tell which
//! layers the host already has (`Engine::layers_present`).
//!
//! Over HTTPS with the host's trusted roots, and — as dockerd — the CAs and
//! client certificate in `/etc/docker/certs.d/<host[:port]>/` (see
//! [`super::certs`]); plain HTTP only to a loopback registry, after HTTPS
//! failed, as dockerd treats loopback registries as insecure. Credentials as a pull sends them (`credentials::for_registry`),
//! through the registry's token service when it asks for one. Blocking HTTP
//! (`ureq`) on a blocking thread, every call bounded. Which layers count and
//! whether they fit is `plan::space`'s decision; this only asks.
//!
//! No secret leaves this file: errors name the registry and its status,
//! never a credential or a token.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use super::certs::{self, CERTS_DIR, RegistryTrust};
use super::credentials::{self, Credentials};
use crate::plan::space::Layer;
use crate::platform::Reference;
use crate::platform::reference::DOCKER_HUB;

const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json";

/// Why a registry could not tell an image's size (the deploy goes on).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot tell the size of {image} from {registry}: {why}")]
pub struct SizeUnknown {
    pub image: String,
    pub registry: String,
    pub why: String,
}

/// The layers of `reference`, as its registry describes them; every call
/// ends by `until` (the runtime waits for a blocking call at exit, so it
/// must end on its own).
pub async fn layers(reference: &str, until: Instant) -> Result<Vec<Layer>, SizeUnknown> {
    layers_trusting(reference, until, Path::new(CERTS_DIR)).await
}

/// [`layers`], trusting what `certs_dir` holds for the registry (Docker's
/// layout: `<certs_dir>/<host[:port]>/*.crt`, `*.cert`, `*.key`).
pub async fn layers_trusting(
    reference: &str,
    until: Instant,
    certs_dir: &Path,
) -> Result<Vec<Layer>, SizeUnknown> {
    let parsed = Reference::parse(reference).map_err(|e| SizeUnknown {
        image: reference.to_owned(),
        registry: String::new(),
        why: e.to_string(),
    })?;
    let registry = parsed.registry().to_owned();
    let unknown = |why: String| SizeUnknown {
        image: reference.to_owned(),
        registry: registry.clone(),
        why,
    };
    let credentials = credentials::for_registry(&registry)
        .await
        .map_err(|e| unknown(e.to_string()))?;
    let image = parsed.clone();
    let certs_dir = certs_dir.to_owned();
    tokio::task::spawn_blocking(move || {
        Client::new(&image, credentials, until, &certs_dir)?.layers(&image)
    })
    .await
    .map_err(|e| unknown(format!("the lookup did not finish ({e})")))?
    .map_err(unknown)
}

/// One registry, spoken to over HTTPS (or HTTP on loopback), with the
/// token it handed out once asked.
struct Client {
    agent: ureq::Agent,
    /// `https://host` (Docker Hub: its API host).
    base: String,
    /// The `http://` fallback, for a loopback registry only.
    insecure: Option<String>,
    credentials: Option<Credentials>,
    authorization: Option<String>,
    until: Instant,
    /// What certs.d holds for the registry, to explain a refused handshake.
    trust: RegistryTrust,
}

impl Client {
    fn new(
        image: &Reference,
        credentials: Option<Credentials>,
        until: Instant,
        certs_dir: &Path,
    ) -> Result<Client, String> {
        let host = match image.registry() {
            DOCKER_HUB => "registry-1.docker.io".to_owned(),
            other => other.to_owned(),
        };
        let trust = RegistryTrust::read(certs_dir, &host).map_err(|e| e.to_string())?;
        let roots = if trust.cas.is_empty() {
            ureq::tls::RootCerts::PlatformVerifier
        } else {
            // Docker adds them to the host's roots; so does this.
            let mut roots: Vec<ureq::tls::Certificate<'static>> =
                rustls_native_certs::load_native_certs()
                    .certs
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
            roots.extend(trust.cas.iter().cloned());
            ureq::tls::RootCerts::new_with_certs(&roots)
        };
        let tls = ureq::tls::TlsConfig::builder()
            .unversioned_rustls_crypto_provider(certs::provider())
            .root_certs(roots)
            .client_cert(trust.client.clone())
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Client {
            agent,
            base: format!("https://{host}"),
            insecure: is_loopback(&host).then(|| format!("http://{host}")),
            credentials,
            authorization: None,
            until,
            trust,
        })
    }

    /// What the HTTPS error `e` means for the registry's certs.d files, if
    /// it is about a certificate: `; <what to do>`.
    fn about_certs(&self, e: &ureq::Error) -> String {
        self.trust
            .explain(e)
            .map(|refusal| format!("; {refusal}"))
            .unwrap_or_default()
    }

    /// What is left of the time given, for the next call.
    fn left(&self) -> Result<Option<Duration>, String> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("it did not answer in time".to_owned());
        }
        Ok(Some(left))
    }

    /// The manifest (the host platform's, from a list), then its config.
    fn layers(&mut self, image: &Reference) -> Result<Vec<Layer>, String> {
        let name = image.api_path();
        let wanted = image
            .digest
            .clone()
            .or_else(|| image.tag.clone())
            .unwrap_or_else(|| "latest".to_owned());
        let mut manifest = self.get_json(&format!("/v2/{name}/manifests/{wanted}"))?;
        if let Some(entries) = manifest.get("manifests").and_then(Value::as_array) {
            let digest = for_this_host(entries).ok_or_else(|| {
                format!(
                    "its manifest list has no entry for linux/{}",
                    host_architecture()
                )
            })?;
            manifest = self.get_json(&format!("/v2/{name}/manifests/{digest}"))?;
        }
        let blobs = manifest
            .get("layers")
            .and_then(Value::as_array)
            .ok_or("its manifest lists no layers (an old schema 1 manifest?)")?;
        let diff_ids: Vec<String> = match manifest.pointer("/config/digest").and_then(Value::as_str)
        {
            Some(config) => self
                .get_json(&format!("/v2/{name}/blobs/{config}"))
                .ok()
                .and_then(|c| {
                    c.pointer("/rootfs/diff_ids")?.as_array().map(|ids| {
                        ids.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        blobs
            .iter()
            .enumerate()
            .map(|(i, blob)| {
                Ok(Layer {
                    digest: blob
                        .get("digest")
                        .and_then(Value::as_str)
                        .ok_or("a layer without a digest")?
                        .to_owned(),
                    // Foreign layers are not downloaded by dockerd either
                    // way; a missing diff id list means "assume missing".
                    diff_id: (diff_ids.len() == blobs.len()).then(|| diff_ids[i].clone()),
                    size: blob
                        .get("size")
                        .and_then(Value::as_u64)
                        .ok_or("a layer without a size")?,
                })
            })
            .collect()
    }

    /// GET `path` as JSON, authenticating once if the registry asks.
    fn get_json(&mut self, path: &str) -> Result<Value, String> {
        let mut response = self.get(path)?;
        if response.status() == 401 {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            self.authorization = Some(self.authenticate(&challenge)?);
            response = self.get(path)?;
        }
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{path} answered HTTP {}", status.as_u16()));
        }
        response
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_json()
            .map_err(|e| format!("{path} is not JSON ({e})"))
    }

    fn get(&mut self, path: &str) -> Result<ureq::http::Response<ureq::Body>, String> {
        let left = self.left()?;
        let send = |base: &str| {
            let mut request = self
                .agent
                .get(format!("{base}{path}"))
                .config()
                .timeout_global(left)
                .build()
                .header("Accept", MANIFEST_TYPES);
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            request.call()
        };
        match send(&self.base) {
            Ok(r) => Ok(r),
            Err(e) => match self.insecure.take() {
                // A loopback registry without TLS: plain HTTP from now on.
                Some(insecure) => match send(&insecure) {
                    // Go's answer to plain HTTP on its TLS port: the
                    // registry speaks HTTPS only, and that is what failed.
                    Ok(r) if r.status() == 400 => Err(format!(
                        "no answer over HTTPS ({e}{}); it speaks HTTPS only (HTTP answered 400)",
                        self.about_certs(&e)
                    )),
                    Ok(r) => {
                        self.base = insecure;
                        Ok(r)
                    }
                    Err(plain) => Err(format!(
                        "no answer over HTTPS ({e}{}) nor HTTP ({plain})",
                        self.about_certs(&e)
                    )),
                },
                None => Err(format!("no answer ({e}{})", self.about_certs(&e))),
            },
        }
    }

    /// The `Authorization` value for a `WWW-Authenticate` challenge.
    fn authenticate(&self, challenge: &str) -> Result<String, String> {
        let (scheme, params) = parse_challenge(challenge);
        let basic = self.credentials.as_ref().and_then(|c| {
            let user = c.username.as_deref()?;
            let pass = c.password.as_deref().unwrap_or_default();
            Some(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
        });
        if scheme.eq_ignore_ascii_case("basic") {
            return basic
                .map(|b| format!("Basic {b}"))
                .ok_or_else(|| "it asks for a login and none is configured".to_owned());
        }
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.as_str())
            .ok_or("it asks for credentials in a way telefig does not speak")?;
        let mut request = self
            .agent
            .get(realm)
            .config()
            .timeout_global(self.left()?)
            .build();
        for (key, value) in params
            .iter()
            .filter(|(k, _)| k == "service" || k == "scope")
        {
            request = request.query(key, value);
        }
        if let Some(b) = &basic {
            request = request.header("Authorization", format!("Basic {b}"));
        }
        let mut answer = request
            .call()
            .map_err(|e| format!("its token service did not answer ({e})"))?;
        if !answer.status().is_success() {
            return Err(format!(
                "its token service answered HTTP {}",
                answer.status().as_u16()
            ));
        }
        let body: Value = answer
            .body_mut()
            .read_json()
            .map_err(|_| "its token service did not answer with JSON".to_owned())?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(Value::as_str)
            .ok_or("its token service gave no token")?;
        Ok(format!("Bearer {token}"))
    }
}

/// `Bearer realm="https://auth",service="reg",scope="repository:x:pull"`
/// → ("Bearer", [(realm, …), (service, …), (scope, …)]).
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((v, next)) => (v, next),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.push((key, value.to_owned()));
        rest = next.trim().trim_start_matches(',').trim();
    }
    (scheme.to_owned(), params)
}

/// The digest of the list entry for linux on this host's architecture.
fn for_this_host(entries: &[Value]) -> Option<String> {
    let arch = host_architecture();
    entries
        .iter()
        .find(|e| {
            e.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                && e.pointer("/platform/architecture").and_then(Value::as_str) == Some(arch)
        })
        .and_then(|e| e.get("digest")?.as_str().map(str::to_owned))
}

/// This host's architecture as image platforms name it.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `127.0.0.1:5000`, `[::1]:5000`, `localhost:5000`: where dockerd allows plain HTTP.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            [
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:library/busybox:pull".into()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(params, [("realm".into(), "Registry Realm".into())]);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.2.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.internal"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn a_manifest_list_picks_this_hosts_platform() {
        let entries: Vec<Value> = serde_json::from_str(&format!(
            r#"[{{"digest": "sha256:arm", "platform": {{"os": "linux", "architecture": "riscv"}}}},
               {{"digest": "sha256:win", "platform": {{"os": "windows", "architecture": "{a}"}}}},
               {{"digest": "sha256:ok", "platform": {{"os": "linux", "architecture": "{a}"}}}}]"#,
            a = host_architecture()
        ))
        .unwrap();
        assert_eq!(for_this_host(&entries).as_deref(), Some("sha256:ok"));
        assert_eq!(for_this_host(&entries[..2]), None);
    }
}
