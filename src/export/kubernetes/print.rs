//! The objects as one multi-document YAML text, each document opened by
//! a comment saying what it is, with comments above the settings whose
//! consequences a reader must know: `hostNetwork`, `hostPath`, and the
//! Secret's empty values. Serialization is k8s-openapi's (fields in a
//! fixed order, maps sorted), so the text is deterministic.

use super::{Manifest, Object};
use crate::yaml::{YamlError, to_string};

const HOST_NETWORK: &[&str] = &[
    "As under telefig (network_mode: host), the containers share the node's network:",
    "their ports bind on the node, so two Pods using the same ports cannot share a node",
    "(the Deployment replaces Pods without surge). Declare the ports as hostPort (or",
    "drop hostNetwork and use a Service) so the scheduler knows which nodes are free.",
];
const HOST_PATH: &[&str] = &[
    "A directory of whichever node runs the Pod, as the bind was on the host:",
    "it must exist there (pin the Pod with a nodeSelector), or use a PersistentVolume.",
];
const SECRET_DATA: &[&str] = &[
    "Keys only: telefig never writes a secret value. Fill them in before applying",
    "(kubectl create secret generic ... --from-literal=KEY=VALUE), or let a secrets",
    "operator own this object; the containers read them through secretKeyRef.",
];

/// `---`-separated documents, apply order.
pub fn to_yaml(manifest: &Manifest) -> Result<String, YamlError> {
    let mut out = String::new();
    for object in &manifest.objects {
        let (head, text) = match object {
            Object::Secret(s) => (
                format!(
                    "Secret {}: the serviceset's secret environment values",
                    name(&s.metadata)
                ),
                to_string(s)?,
            ),
            Object::Deployment(d) => (
                format!(
                    "Deployment {}: the long-running containers",
                    name(&d.metadata)
                ),
                to_string(d)?,
            ),
            Object::Job(j) => (
                format!(
                    "Job {}: a job nothing long-running waits for",
                    name(&j.metadata)
                ),
                to_string(j)?,
            ),
            Object::CronJob(c) => (
                format!(
                    "CronJob {}: a cron entry of the serviceset",
                    name(&c.metadata)
                ),
                to_string(c)?,
            ),
        };
        out.push_str("---\n# ");
        out.push_str(&head);
        out.push('\n');
        out.push_str(&commented(&text));
    }
    Ok(out)
}

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// `text` with the explanations above the lines that need them.
fn commented(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        let note = match trimmed {
            "hostNetwork: true" => Some(HOST_NETWORK),
            "hostPath:" | "- hostPath:" => Some(HOST_PATH),
            "stringData:" => Some(SECRET_DATA),
            _ => None,
        };
        if let Some(note) = note {
            let indent = &line[..line.len() - trimmed.len()];
            for comment in note {
                out.push_str(indent);
                out.push_str("# ");
                out.push_str(comment);
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
