//! One serviceset as one Kubernetes Pod, built from k8s-openapi's types.
//!
//! Where each container goes, in the graph's start order:
//! - a sidecar its owner waits for (`order: before`) is a native sidecar: an
//!   init container with `restartPolicy: Always` (Kubernetes ≥ 1.29). The
//!   kubelet starts init containers one by one, the next once the previous
//!   one has started — or, when it has a startup probe, once that passes,
//!   which is how a `gate: healthy` is kept;
//! - a `kind: job` is a plain init container: it runs to completion before
//!   anything after it starts (probes are not allowed there);
//! - a main container, and a sidecar that starts after its owner
//!   (`after_healthy`, `after_started`: discovery), is a regular container.
//!   Kubernetes starts regular containers together, so such a dependency is
//!   not enforced; the annotation [`ANNOTATION_ORDERING`] says which waits
//!   the containers must now do themselves.
//!
//! Healthchecks become exec probes: `readinessProbe` (Docker's `healthy` is
//! Kubernetes' Ready) and `livenessProbe`, period = interval, timeout,
//! failureThreshold = retries. Docker's `start_period` becomes a
//! `startupProbe` allowing `ceil(start_period / interval) + retries` failures
//! (liveness and readiness wait for it, as Docker ignores failures in the
//! start period); on a native sidecar whose owner only waits for `started`,
//! a startup probe would hold the owner back, so there it becomes the
//! liveness probe's `initialDelaySeconds` instead.
//!
//! Fields with no Pod equivalent are listed in [`ANNOTATION_NOT_MAPPED`].
//!
//! The files: `names` checks names against Kubernetes' rules, `containers`
//! turns one container into a `Container`, `probes` a healthcheck into
//! probes, `volumes` binds and tmpfs into the Pod's volumes. This file
//! places each container and assembles the Pod.

mod containers;
mod names;
mod probes;
#[cfg(test)]
mod tests;
mod volumes;

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Error;
use crate::graph::Graph;
use crate::platform::{ContainerSpec, Expanded, LABEL_SERVICESET, Role};
use crate::spec::Condition;
use containers::container;
use names::{NameKind, check_name};
use volumes::Volumes;

/// Which dependencies the Pod does not enforce, and how to live with it.
pub const ANNOTATION_ORDERING: &str = "telefig.io/ordering";
/// Docker settings the Pod leaves out.
pub const ANNOTATION_NOT_MAPPED: &str = "telefig.io/not-mapped";

/// Where a container goes in the Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// An init container with `restartPolicy: Always`.
    NativeSidecar,
    /// An init container that runs to completion.
    Job,
    /// `spec.containers`.
    Regular,
}

/// The serviceset as a Pod named after it (secret environment values masked).
pub fn pod(expanded: &Expanded, graph: &Graph) -> Result<Pod, Error> {
    check_name(&expanded.serviceset, NameKind::Pod)?;
    let mut places: HashMap<&str, Place> = HashMap::new();
    let mut init = Vec::new();
    let mut regular = Vec::new();
    let mut waits = Vec::new();
    let mut volumes = Volumes::default();
    let mut not_mapped = Vec::new();
    for name in graph.start_order() {
        let spec = expanded
            .get(name)
            .expect("the graph is built from the expanded containers");
        check_name(name, NameKind::Container)?;
        let place = place(spec, graph);
        for (dependency, gate) in graph.dependencies(name) {
            // Start order puts every dependency first, so it has a place.
            let dependency_runs_late = places.get(dependency) == Some(&Place::Regular);
            match place {
                Place::Regular if dependency_runs_late => {
                    waits.push(format!("{name} once {dependency} is {}", gate_word(gate)));
                }
                Place::NativeSidecar | Place::Job if dependency_runs_late => {
                    return Err(Error::Order {
                        container: name.to_owned(),
                        dependency: dependency.to_owned(),
                    });
                }
                _ => {}
            }
        }
        places.insert(name, place);
        let held = graph
            .dependents(name)
            .iter()
            .any(|(_, gate)| *gate == Condition::Healthy);
        let container = container(spec, place, held, &mut volumes, &mut not_mapped)?;
        match place {
            Place::Regular => regular.push(container),
            Place::NativeSidecar | Place::Job => init.push(container),
        }
    }

    if regular.is_empty() {
        return Err(Error::OnlyJobs(expanded.serviceset.clone()));
    }
    let host_network = host_network(expanded)?;
    let grace = expanded
        .containers
        .iter()
        .map(|c| c.create.stop_timeout)
        .max();
    let mut annotations = BTreeMap::new();
    if !waits.is_empty() {
        annotations.insert(
            ANNOTATION_ORDERING.to_owned(),
            format!(
                "Kubernetes starts a Pod's regular containers together, but telefig starts {}. \
                 These containers run beside their dependency and must wait for it themselves \
                 (retry until it answers, or poll its readiness).",
                waits.join(", ")
            ),
        );
    }
    if !not_mapped.is_empty() {
        annotations.insert(ANNOTATION_NOT_MAPPED.to_owned(), not_mapped.join("; "));
    }
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(expanded.serviceset.clone()),
            labels: Some(BTreeMap::from([(
                LABEL_SERVICESET.to_owned(),
                expanded.serviceset.clone(),
            )])),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            host_network: host_network.then_some(true),
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: grace,
            init_containers: (!init.is_empty()).then_some(init),
            containers: regular,
            volumes: (!volumes.list.is_empty()).then_some(volumes.list),
            ..Default::default()
        }),
        status: None,
    })
}

fn place(spec: &ContainerSpec, graph: &Graph) -> Place {
    match &spec.role {
        Role::Job => Place::Job,
        Role::Main => Place::Regular,
        // `order: before` is an edge from the sidecar to its owner.
        Role::Sidecar { owner, .. } => {
            let owner_waits = graph
                .dependencies(owner)
                .iter()
                .any(|(d, _)| *d == spec.name);
            if owner_waits {
                Place::NativeSidecar
            } else {
                Place::Regular
            }
        }
    }
}

fn gate_word(gate: Condition) -> &'static str {
    match gate {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::Completed => "completed",
    }
}

/// `hostNetwork` when every container asks for the host's network.
fn host_network(expanded: &Expanded) -> Result<bool, Error> {
    let mode = |c: &ContainerSpec| c.create.host_config.network_mode.clone();
    let Some(first) = expanded.containers.first() else {
        return Ok(true);
    };
    if let Some(other) = expanded.containers.iter().find(|c| mode(c) != mode(first)) {
        return Err(Error::MixedNetwork {
            first: first.name.clone(),
            first_mode: mode(first),
            second: other.name.clone(),
            second_mode: mode(other),
        });
    }
    Ok(mode(first) == "host")
}
