//! The Pod spec shared by the Deployment, the Jobs and the CronJobs: where
//! each member container goes, the network, the grace period and volumes.
//!
//! In a long-running Pod ([`PodKind::Service`]), in start order:
//! - a sidecar its owner waits for (`order: before`) is a native sidecar:
//!   an init container with `restartPolicy: Always`. The kubelet starts
//!   init containers one by one, the next once the previous one has
//!   started — or, when it has a startup probe, once that passes, which is
//!   how a `gate: healthy` is kept — and stops them after the regular
//!   containers, in reverse: telefig's stop order;
//! - a `kind: job` is a plain init container: it runs to completion
//!   before anything after it starts (`condition: completed`);
//! - a main container, and a sidecar that starts after its owner
//!   (`after_healthy`: discovery), is a regular container. Kubernetes
//!   starts regular containers together; a sidecar that waits for its
//!   owner to be healthy gets the owner's health check as its readiness
//!   probe, so the Pod is Ready (and in a Service's endpoints) only once
//!   both are. The waits Kubernetes does not enforce are listed in
//!   [`super::ANNOTATION_ORDERING`].
//!
//! In a run-to-completion Pod ([`PodKind::Job`]) the last member is the
//! Job's container and the others, its job dependencies, init containers.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{PodOS, PodSpec};

use super::containers::container;
use super::names::{NameKind, check_name};
use super::probes::{Startup, probes};
use super::secrets::Secrets;
use super::volumes::Volumes;
use super::{Error, Place};
use crate::graph::Gate;
use crate::platform::{ContainerSpec, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PodKind {
    /// Runs for good: restartPolicy Always.
    Service,
    /// Runs once: restartPolicy Never.
    Job,
}

/// A Pod spec and what could not be said in it.
pub(super) struct BuiltPod {
    pub(super) spec: PodSpec,
    /// Dependencies the Pod does not enforce: `a once b is healthy`.
    pub(super) waits: Vec<String>,
    pub(super) not_mapped: Vec<String>,
}

/// `members` in start order (dependencies first) as one Pod.
pub(super) fn pod_spec(
    members: &[&ContainerSpec],
    kind: PodKind,
    secrets: &Secrets,
) -> Result<BuiltPod, Error> {
    let mut places: HashMap<&str, Place> = HashMap::new();
    let mut init = Vec::new();
    let mut regular = Vec::new();
    let mut waits = Vec::new();
    let mut volumes = Volumes::default();
    let mut not_mapped = Vec::new();
    for (i, spec) in members.iter().enumerate() {
        let name = spec.name.as_str();
        check_name(name, NameKind::Container)?;
        let place = match kind {
            PodKind::Job if i + 1 == members.len() => Place::Job,
            PodKind::Job => Place::InitJob,
            PodKind::Service => place(spec, members),
        };
        for dependency in &spec.depends_on {
            let (dep, gate) = (dependency.name.as_str(), dependency.gate);
            match (places.get(dep), place) {
                // Outside this Pod: nothing holds this one back.
                (None, _) => waits.push(format!("{name} once {dep} is {}", gate_word(gate))),
                (Some(Place::Regular), Place::Regular) if is_sidecar(spec) => waits.push(format!(
                    "{name} once {dep} is {} (its readiness probe checks {dep}; the agent starts with it)",
                    gate_word(gate)
                )),
                (Some(Place::Regular), Place::Regular) => {
                    waits.push(format!("{name} once {dep} is {}", gate_word(gate)))
                }
                (Some(Place::Regular), _) => {
                    return Err(Error::Order {
                        container: name.to_owned(),
                        dependency: dep.to_owned(),
                    });
                }
                _ => {}
            }
        }
        places.insert(name, place);
        let held = members.iter().any(|m| {
            m.depends_on
                .iter()
                .any(|d| d.name == name && d.gate == Gate::Healthy)
        });
        let mut built = container(spec, place, held, secrets, &mut volumes, &mut not_mapped)?;
        if place == Place::Regular && is_sidecar(spec) && built.readiness_probe.is_none() {
            built.readiness_probe = owner_readiness(spec, members);
        }
        match place {
            Place::Regular | Place::Job => regular.push(built),
            Place::NativeSidecar | Place::InitJob => init.push(built),
        }
    }
    let host_network = host_network(members)?;
    // The Pod has one grace period: the longest, so no container is
    // killed sooner than under telefig.
    let grace = members.iter().map(|c| c.create.stop_timeout).max();
    let any_lifecycle = init.iter().chain(&regular).any(|c| c.lifecycle.is_some());
    Ok(BuiltPod {
        spec: PodSpec {
            host_network: host_network.then_some(true),
            dns_policy: host_network.then(|| "ClusterFirstWithHostNet".to_owned()),
            // A container's stop signal needs the Pod's operating system.
            os: any_lifecycle.then(|| PodOS {
                name: "linux".into(),
            }),
            restart_policy: Some(match kind {
                PodKind::Service => "Always".into(),
                PodKind::Job => "Never".into(),
            }),
            termination_grace_period_seconds: grace,
            init_containers: (!init.is_empty()).then_some(init),
            containers: regular,
            volumes: (!volumes.list.is_empty()).then_some(volumes.list),
            ..Default::default()
        },
        waits,
        not_mapped,
    })
}

fn is_sidecar(spec: &ContainerSpec) -> bool {
    matches!(spec.role, Role::Sidecar { .. })
}

fn place(spec: &ContainerSpec, members: &[&ContainerSpec]) -> Place {
    match &spec.role {
        Role::Job => Place::InitJob,
        Role::Main => Place::Regular,
        // `order: before` is an edge from the sidecar to its owner.
        Role::Sidecar { owner, .. } => {
            let owner_waits = members
                .iter()
                .find(|m| &m.name == owner)
                .is_some_and(|o| o.depends_on.iter().any(|d| d.name == spec.name));
            if owner_waits {
                Place::NativeSidecar
            } else {
                Place::Regular
            }
        }
    }
}

/// The readiness probe of the container `spec` waits for to be healthy:
/// an after-healthy sidecar is Ready only once its owner is.
fn owner_readiness(
    spec: &ContainerSpec,
    members: &[&ContainerSpec],
) -> Option<k8s_openapi::api::core::v1::Probe> {
    let dependency = spec.depends_on.iter().find(|d| d.gate == Gate::Healthy)?;
    let owner = members.iter().find(|m| m.name == dependency.name)?;
    probes(owner.create.healthcheck.as_ref()?, Startup::HoldsNothing).0
}

fn gate_word(gate: Gate) -> &'static str {
    match gate {
        Gate::Started => "started",
        Gate::Healthy => "healthy",
        Gate::Completed => "completed",
    }
}

/// `hostNetwork` when every member asks for the host's network.
fn host_network(members: &[&ContainerSpec]) -> Result<bool, Error> {
    let mode = |c: &ContainerSpec| c.create.host_config.network_mode.clone();
    let Some(first) = members.first() else {
        return Ok(true);
    };
    if let Some(other) = members.iter().find(|c| mode(c) != mode(first)) {
        return Err(Error::MixedNetwork {
            first: first.name.clone(),
            first_mode: mode(first),
            second: other.name.clone(),
            second_mode: mode(other),
        });
    }
    Ok(mode(first) == "host")
}
