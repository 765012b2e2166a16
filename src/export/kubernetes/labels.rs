//! Metadata: the telefig labels of SPEC §5 and the serviceset's own
//! `labels:` as Kubernetes labels where key and value are valid ones, as
//! annotations where only the key is; what is neither is not mapped.
//!
//! Kubernetes labels a Pod, not a container, so the per-container telefig
//! labels (`telefig.container`, `telefig.role`, `telefig.sidecar`,
//! `telefig.owner`) become one annotation, [`ANNOTATION_CONTAINERS`], and
//! the config hashes (`telefig.config-hash`, `telefig.fixed-hash`) none:
//! a Deployment rolls out on any template change.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::names::{is_label_key, is_label_value};
use crate::platform::{
    ContainerSpec, LABEL_CONFIG_HASH, LABEL_CONTAINER, LABEL_FIXED_HASH, LABEL_OWNER, LABEL_ROLE,
    LABEL_SERVICESET, LABEL_SIDECAR, Role,
};

/// Which container is which, in the Pod: `web: main; web-logging: sidecar logging of web`.
pub const ANNOTATION_CONTAINERS: &str = "telefig.io/containers";
/// Selects one workload's Pods (the Deployment's, a Job's, a CronJob's).
pub const LABEL_WORKLOAD: &str = "telefig.workload";

/// An object's metadata: its name, namespace and the serviceset label.
pub(super) fn object_meta(
    name: &str,
    namespace: Option<&str>,
    serviceset: &str,
    annotations: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(BTreeMap::from([(
            LABEL_SERVICESET.to_owned(),
            serviceset.to_owned(),
        )])),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    }
}

/// The labels that select a workload's Pods.
pub(super) fn selector(serviceset: &str, workload: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_SERVICESET.to_owned(), serviceset.to_owned()),
        (LABEL_WORKLOAD.to_owned(), workload.to_owned()),
    ])
}

/// A Pod template's metadata: the selector, the deploy's commit and id,
/// the members' own labels, and which container is which.
pub(super) fn pod_meta(
    serviceset: &str,
    workload: &str,
    members: &[&ContainerSpec],
    not_mapped: &mut Vec<String>,
) -> ObjectMeta {
    let mut labels = selector(serviceset, workload);
    let mut annotations = BTreeMap::new();
    let per_container = [
        LABEL_SERVICESET,
        LABEL_CONTAINER,
        LABEL_ROLE,
        LABEL_SIDECAR,
        LABEL_OWNER,
        LABEL_CONFIG_HASH,
        LABEL_FIXED_HASH,
    ];
    for member in members {
        for (key, value) in &member.create.labels {
            if per_container.contains(&key.as_str()) {
                continue;
            }
            let (target, other) = if is_label_value(value) {
                (&mut labels, &annotations)
            } else {
                (&mut annotations, &labels)
            };
            if !is_label_key(key) {
                not_mapped.push(format!(
                    "label {key} of {} (not a valid Kubernetes label key)",
                    member.name
                ));
                continue;
            }
            match target.get(key) {
                Some(existing) if existing != value => not_mapped.push(format!(
                    "label {key}={value} of {} (the Pod already has {key}={existing} from another container)",
                    member.name
                )),
                Some(_) => {}
                None if other.contains_key(key) => not_mapped.push(format!(
                    "label {key}={value} of {} (the Pod already has another {key} from another container)",
                    member.name
                )),
                None => {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let roles: Vec<String> = members.iter().map(|m| role_text(m)).collect();
    annotations.insert(ANNOTATION_CONTAINERS.to_owned(), roles.join("; "));
    ObjectMeta {
        labels: Some(labels),
        annotations: Some(annotations),
        ..Default::default()
    }
}

fn role_text(spec: &ContainerSpec) -> String {
    match &spec.role {
        Role::Main => format!("{}: main", spec.name),
        Role::Job => format!("{}: job", spec.name),
        Role::Sidecar { kind, owner } => format!("{}: sidecar {kind} of {owner}", spec.name),
    }
}
