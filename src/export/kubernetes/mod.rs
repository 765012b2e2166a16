//! One serviceset as Kubernetes objects, built from k8s-openapi's types:
//! what a controller for Pinterest's service, job-set and cron-job
//! resources would produce from it.
//!
//! - a **Secret** named after the serviceset, with the keys of the
//!   secret-looking environment values and no values (`secrets`);
//! - a **Deployment** of the long-running containers, the `kind: job`s
//!   they wait for as init containers (`pod` says where each container
//!   goes and why);
//! - a **Job** for each job nothing long-running waits for, its own job
//!   dependencies as init containers;
//! - a **CronJob** for each cron entry (`cron`).
//!
//! Healthchecks become probes (`probes`), binds `hostPath` volumes and
//! tmpfs memory-backed `emptyDir`s (`volumes`), labels labels or
//! annotations (`labels`). What has no equivalent is listed in
//! [`ANNOTATION_NOT_MAPPED`] on the object and in [`Manifest::not_mapped`]
//! (the command prints it on stderr); what would change the meaning is an
//! [`Error`]. `print` writes the objects as commented YAML.
//!
//! The files: `names` (Kubernetes' name rules), `containers`, `probes`,
//! `volumes`, `secrets`, `labels`, `pod`, `cron`, `print`. This file
//! splits the serviceset into workloads and assembles them.

mod containers;
mod cron;
mod labels;
mod names;
mod pod;
mod print;
mod probes;
mod secrets;
#[cfg(test)]
mod tests;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Error;
use crate::graph::Gate;
use crate::graph::Graph;
use crate::platform::{ContainerSpec, Expanded, mask_body_but_secret_env};
use labels::{object_meta, pod_meta, selector};
use names::{NameKind, check_name};
use pod::{BuiltPod, PodKind, pod_spec};
use secrets::Secrets;

pub use labels::{ANNOTATION_CONTAINERS, LABEL_WORKLOAD};
pub use print::to_yaml;

/// Which dependencies a Pod does not enforce, and how to live with it.
pub const ANNOTATION_ORDERING: &str = "telefig.io/ordering";
/// Docker settings the object leaves out.
pub const ANNOTATION_NOT_MAPPED: &str = "telefig.io/not-mapped";

/// Where a container goes in its Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// An init container with `restartPolicy: Always`.
    NativeSidecar,
    /// An init container that runs to completion.
    InitJob,
    /// `spec.containers` of a long-running Pod.
    Regular,
    /// The container of a Job's Pod.
    Job,
}

/// `render --format kubernetes` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub replicas: i32,
    pub namespace: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            replicas: 1,
            namespace: None,
        }
    }
}

/// One Kubernetes object of the export.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Secret(Box<Secret>),
    Deployment(Box<Deployment>),
    Job(Box<Job>),
    CronJob(Box<CronJob>),
}

/// `expanded` with its secret values masked wherever a template put them,
/// but in the secret environment keys' values (which `secrets` turns into
/// references, comparing them in memory only).
fn masked(expanded: &Expanded) -> Expanded {
    let secrets = &expanded.secrets;
    let mut masked = expanded.clone();
    for c in &mut masked.containers {
        c.create = mask_body_but_secret_env(&c.create, secrets);
    }
    for job in &mut masked.cron {
        for word in &mut job.command {
            *word = secrets.mask(word).into_owned();
        }
    }
    masked
}

/// The objects, in the order to apply them, and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub objects: Vec<Object>,
    pub not_mapped: Vec<String>,
}

/// The serviceset as Kubernetes objects. Secret values are never read
/// into the result: the Secret lists keys only, and a secret value in any
/// other field (a command, a label, another environment entry) is masked.
pub fn export(expanded: &Expanded, graph: &Graph, options: &Options) -> Result<Manifest, Error> {
    let expanded = &masked(expanded);
    let set = expanded.serviceset.as_str();
    check_name(set, NameKind::Object)?;
    if let Some(namespace) = &options.namespace {
        check_name(namespace, NameKind::Container).map_err(|_| Error::Name {
            what: "namespace",
            name: namespace.clone(),
            rule: "lowercase letters, digits and `-`, at most 63, starting and ending with a letter or digit",
            fix: "pass --namespace with such a name",
        })?;
    }
    let ns = options.namespace.as_deref();
    let secrets = Secrets::collect(expanded)?;
    let mut objects = Vec::new();
    let mut not_mapped = Vec::new();
    if let Some(secret) = secrets.object(object_meta(set, ns, set, BTreeMap::new())) {
        objects.push(Object::Secret(Box::new(secret)));
    }

    let start: Vec<&ContainerSpec> = graph
        .start_order()
        .into_iter()
        .map(|n| {
            expanded
                .get(n)
                .expect("the graph is built from the expanded containers")
        })
        .collect();
    let in_service = in_service(&start);
    let service: Vec<&ContainerSpec> = start
        .iter()
        .copied()
        .filter(|c| in_service.contains(c.name.as_str()))
        .collect();
    if !service.is_empty() {
        let pod = pod_spec(&service, PodKind::Service, &secrets)?;
        let host_network = pod.spec.host_network == Some(true);
        let annotations = annotations(&pod, &mut not_mapped);
        let template = PodTemplateSpec {
            metadata: Some(pod_meta(set, set, &service, &mut not_mapped)),
            spec: Some(pod.spec),
        };
        objects.push(Object::Deployment(Box::new(Deployment {
            metadata: object_meta(set, ns, set, annotations),
            spec: DeploymentSpec {
                replicas: Some(options.replicas),
                selector: LabelSelector {
                    match_labels: Some(selector(set, set)),
                    match_expressions: None,
                },
                // On the host's network two replicas on one node would
                // bind the same ports: replace, never surge.
                strategy: host_network.then(|| DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(0)),
                        max_unavailable: Some(IntOrString::Int(1)),
                    }),
                }),
                template,
                ..Default::default()
            },
            status: None,
        })));
    }

    // A job another job waits for runs inside that job's Job.
    let waited_for = |job: &ContainerSpec| {
        start
            .iter()
            .any(|c| c.is_job() && c.depends_on.iter().any(|d| d.name == job.name))
    };
    let standalone = start
        .iter()
        .filter(|c| c.is_job() && !in_service.contains(c.name.as_str()) && !waited_for(c));
    for job in standalone {
        let name = format!("{set}-{}", job.name);
        check_name(&name, NameKind::Object)?;
        let members = job_members(job, &start);
        let pod = pod_spec(&members, PodKind::Job, &secrets)?;
        let annotations = annotations(&pod, &mut not_mapped);
        let template = PodTemplateSpec {
            metadata: Some(pod_meta(set, &name, &members, &mut not_mapped)),
            spec: Some(pod.spec),
        };
        objects.push(Object::Job(Box::new(Job {
            metadata: object_meta(&name, ns, set, annotations),
            spec: Some(JobSpec {
                backoff_limit: Some(job_retries(job)),
                template,
                ..Default::default()
            }),
            status: None,
        })));
    }

    let mut taken = BTreeSet::new();
    for entry in cron::entries(expanded) {
        let base = cron::cron_name(set, entry.name);
        let mut name = base.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("{}-{n}", &base[..base.len().min(49)]);
            n += 1;
        }
        let job = cron::cron_job(expanded, &entry, &name, &secrets, options, &mut not_mapped)?;
        objects.extend(job.map(|c| Object::CronJob(Box::new(c))));
    }
    Ok(Manifest {
        objects,
        not_mapped,
    })
}

/// The long-running containers and every job one of them (or such a
/// job) waits for with `condition: completed`.
fn in_service(start: &[&ContainerSpec]) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = start
        .iter()
        .filter(|c| !c.is_job())
        .map(|c| c.name.clone())
        .collect();
    // Dependents come later in start order: walk it backwards.
    for c in start.iter().rev() {
        if set.contains(&c.name) {
            for d in &c.depends_on {
                let dep_is_job = start.iter().any(|s| s.name == d.name && s.is_job());
                if dep_is_job && d.gate == Gate::Completed {
                    set.insert(d.name.clone());
                }
            }
        }
    }
    set
}

/// A standalone job and the jobs it waits for, in start order.
fn job_members<'a>(job: &'a ContainerSpec, start: &[&'a ContainerSpec]) -> Vec<&'a ContainerSpec> {
    let mut wanted = BTreeSet::from([job.name.clone()]);
    for c in start.iter().rev() {
        if wanted.contains(&c.name) {
            for d in &c.depends_on {
                if start.iter().any(|s| s.name == d.name && s.is_job()) {
                    wanted.insert(d.name.clone());
                }
            }
        }
    }
    start
        .iter()
        .copied()
        .filter(|c| wanted.contains(&c.name))
        .collect()
}

/// Docker's `on-failure:N` as a Job's retries; a job runs once otherwise.
fn job_retries(job: &ContainerSpec) -> i32 {
    let policy = &job.create.host_config.restart_policy;
    match (policy.name.as_str(), policy.maximum_retry_count) {
        ("on-failure", Some(n)) => i32::try_from(n).unwrap_or(i32::MAX),
        _ => 0,
    }
}

/// The ordering and not-mapped annotations of a workload; its notes are
/// added to `not_mapped` as well.
fn annotations(pod: &BuiltPod, not_mapped: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !pod.waits.is_empty() {
        out.insert(
            ANNOTATION_ORDERING.to_owned(),
            format!(
                "Kubernetes does not hold these containers back, but telefig starts {}. \
                 They must wait for their dependency themselves (retry until it answers).",
                pod.waits.join(", ")
            ),
        );
        not_mapped.extend(pod.waits.iter().map(|w| format!("start order: {w}")));
    }
    if !pod.not_mapped.is_empty() {
        out.insert(ANNOTATION_NOT_MAPPED.to_owned(), pod.not_mapped.join("; "));
        not_mapped.extend(pod.not_mapped.iter().cloned());
    }
    out
}
