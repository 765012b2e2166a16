//! The expanded container: what every stage after `platform` works with.
//!
//! [`ContainerSpec`] holds the Engine API create body (so `render` shows
//! exactly what is sent and `engine` sends it unchanged), the image sources,
//! the dependencies with their gates, and the config hash. The hash covers
//! the effective configuration and leaves out the bookkeeping labels, so a
//! new deploy id alone recreates nothing (SPEC §7).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Gate;
use super::image::Image;
use super::secrets::{conceal_body, mask_env_entry};
use super::updatable::LABEL_FIXED_HASH;
use crate::redact::Redactor;

pub const LABEL_SERVICESET: &str = "telefig.serviceset";
pub const LABEL_CONTAINER: &str = "telefig.container";
pub const LABEL_ROLE: &str = "telefig.role";
pub const LABEL_SIDECAR: &str = "telefig.sidecar";
pub const LABEL_OWNER: &str = "telefig.owner";
pub const LABEL_CONFIG_HASH: &str = "telefig.config-hash";
pub const LABEL_COMMIT: &str = "telefig.commit";
pub const LABEL_DEPLOY_ID: &str = "telefig.deploy-id";

/// Labels that describe a deploy rather than the container's config.
const BOOKKEEPING_LABELS: [&str; 4] = [
    LABEL_CONFIG_HASH,
    LABEL_COMMIT,
    LABEL_DEPLOY_ID,
    LABEL_FIXED_HASH,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    Main,
    Sidecar { kind: String, owner: String },
    Job,
}

/// The restart policy a container gets unless the file names one: a job
/// runs once (`no`), anything else `unless-stopped`. `role` is the
/// `telefig.role` label.
pub fn default_restart_policy(role: &str) -> &'static str {
    if role == "job" {
        "no"
    } else {
        "unless-stopped"
    }
}

impl Role {
    pub fn label(&self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Sidecar { .. } => "sidecar",
            Role::Job => "job",
        }
    }
}

/// One edge of the graph as the dependent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    pub gate: Gate,
}

/// Healthcheck timings with Docker's defaults filled in, for gate deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthTiming {
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

impl HealthTiming {
    /// How long a container may take to turn healthy before its gate fails:
    /// start_period + retries × interval, plus one more probe as margin.
    pub fn deadline(&self) -> Duration {
        // Saturating: with extreme values the deadline is "never", and the
        // operation's own deadline bounds the wait.
        self.start_period
            .saturating_add(self.interval.saturating_mul(self.retries.saturating_add(1)))
            .saturating_add(self.timeout)
            .saturating_add(Duration::from_secs(5))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub role: Role,
    pub image: Image,
    pub depends_on: Vec<Dependency>,
    pub health: Option<HealthTiming>,
    pub stop_grace: Duration,
    /// Drain before stop; outside the config hash (it changes no container).
    #[serde(default)]
    pub drain: super::drain::DrainSpec,
    /// How long a deploy that creates it watches it after every gate
    /// passed (the owner's `bake_period` for a sidecar; zero for a job);
    /// outside the config hash. `plan::bake` decides what is watched.
    #[serde(default)]
    pub bake: Duration,
    pub config_hash: String,
    pub create: CreateBody,
}

impl ContainerSpec {
    pub fn is_job(&self) -> bool {
        self.role == Role::Job
    }

    /// The hash of what `docker update` cannot change (`platform::updatable`);
    /// `None` in a record written before telefig set it.
    pub fn fixed_hash(&self) -> Option<&str> {
        self.create.labels.get(LABEL_FIXED_HASH).map(String::as_str)
    }
}

/// The Engine API's `POST /containers/create` body, as far as telefig sets it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBody {
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    pub stop_timeout: i64,
    pub host_config: HostConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    pub test: Vec<String>,
    /// Nanoseconds, as the Engine API wants them.
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub retries: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub binds: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nano_cpus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_config: Option<LogConfig>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cgroup_parent: Option<String>,
}

/// `HostConfig.LogConfig`: the log driver and its options (`max-size`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub driver: String,
    #[serde(rename = "Config", default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_retry_count: Option<i64>,
}

/// The hash of everything in `body` but the bookkeeping labels.
pub fn config_hash(body: &CreateBody) -> String {
    let mut hasher = Sha256::new();
    // The JSON goes straight into the hash; the body is copied only when it
    // carries a bookkeeping label to leave out (a no-op start hashes every
    // container, so this is on its path).
    let written = if BOOKKEEPING_LABELS
        .iter()
        .any(|label| body.labels.contains_key(*label))
    {
        let mut effective = body.clone();
        for label in BOOKKEEPING_LABELS {
            effective.labels.remove(label);
        }
        serde_json::to_writer(&mut hasher, &effective)
    } else {
        serde_json::to_writer(&mut hasher, body)
    };
    written.expect("a CreateBody always serializes");
    hex::encode(&hasher.finalize()[..16])
}

/// The create body as `render` prints it: the name, then the body with
/// secret environment values masked.
#[derive(Serialize)]
pub struct Rendered<'a> {
    #[serde(rename = "Name")]
    pub name: &'a str,
    #[serde(flatten)]
    pub body: CreateBody,
}

impl ContainerSpec {
    pub fn rendered(&self) -> Rendered<'_> {
        let mut body = self.create.clone();
        body.env = body.env.iter().map(|e| mask_env_entry(e)).collect();
        Rendered {
            name: &self.name,
            body,
        }
    }

    /// Which top-level create-body fields differ from `other` (for plan
    /// output); `other` may come from a record, where `secrets`' values are
    /// concealed.
    pub fn changed_fields(&self, other: &CreateBody, secrets: &Redactor) -> Vec<String> {
        let mut ours =
            serde_json::to_value(strip_bookkeeping(&self.create, secrets)).unwrap_or_default();
        let theirs = serde_json::to_value(strip_bookkeeping(other, secrets)).unwrap_or_default();
        let mut fields = Vec::new();
        diff_values("", &mut ours, &theirs, &mut fields);
        fields
    }
}

/// The body as compared for `changed_fields`: no bookkeeping labels, and
/// secret values concealed (a record keeps only their digests).
fn strip_bookkeeping(body: &CreateBody, secrets: &Redactor) -> CreateBody {
    let mut body = conceal_body(body, secrets);
    for label in BOOKKEEPING_LABELS {
        body.labels.remove(label);
    }
    body
}

fn diff_values(
    path: &str,
    ours: &mut serde_json::Value,
    theirs: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value::Object;
    match (ours, theirs) {
        (Object(a), Object(b)) if path.is_empty() || path == "HostConfig" => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let mut mine = a.get(key).cloned().unwrap_or_default();
                let other = b.get(key).cloned().unwrap_or_default();
                diff_values(&sub, &mut mine, &other, out);
            }
        }
        (a, b) if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Running containers carry the hash in a label: the way it is computed
    /// must not change, or every container would look changed after an upgrade.
    #[test]
    fn hash_is_the_one_running_containers_carry() {
        let mut body = CreateBody {
            image: "registry.local/svc:v1".into(),
            cmd: Some(vec!["sh".into(), "-c".into(), "sleep 1".into()]),
            env: vec!["A=1".into(), "PORT=8080".into()],
            ..Default::default()
        };
        body.labels.insert("team".into(), "infra".into());
        let reference = |body: &CreateBody| {
            let mut effective = body.clone();
            for label in BOOKKEEPING_LABELS {
                effective.labels.remove(label);
            }
            let digest = Sha256::digest(serde_json::to_vec(&effective).unwrap());
            digest
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert_eq!(config_hash(&body), reference(&body));
        assert_eq!(config_hash(&body), "70e52fb4d531af795691821af0e26737");
        body.labels.insert(LABEL_COMMIT.into(), "abc".into());
        assert_eq!(config_hash(&body), reference(&body));
        assert_eq!(config_hash(&body), "70e52fb4d531af795691821af0e26737");
    }

    #[test]
    fn hash_ignores_bookkeeping_labels_only() {
        let mut body = CreateBody {
            image: "x:1".into(),
            ..Default::default()
        };
        let base = config_hash(&body);
        body.labels.insert(LABEL_DEPLOY_ID.into(), "d-2".into());
        body.labels.insert(LABEL_COMMIT.into(), "abc".into());
        assert_eq!(config_hash(&body), base);
        body.env.push("A=1".into());
        assert_ne!(config_hash(&body), base);
    }

    #[test]
    fn changed_fields_names_nested_host_config() {
        let a = CreateBody {
            image: "x:1".into(),
            ..Default::default()
        };
        let mut b = a.clone();
        b.env.push("A=1".into());
        b.host_config.memory = Some(5);
        let spec = ContainerSpec {
            name: "x".into(),
            role: Role::Main,
            image: Image {
                reference: "x:1".into(),
                sources: vec![],
            },
            depends_on: vec![],
            health: None,
            stop_grace: Duration::from_secs(10),
            drain: Default::default(),
            bake: Duration::ZERO,
            config_hash: String::new(),
            create: b,
        };
        assert_eq!(
            spec.changed_fields(&a, &Redactor::default()),
            ["Env", "HostConfig.Memory"]
        );
    }
}
