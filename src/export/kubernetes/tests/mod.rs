//! The objects built from a card service and the edge cases, checked
//! field by field; `tests/render_kubernetes.rs` covers the printed YAML,
//! its golden text and the validation against Kubernetes' schemas.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::containers::bytes_quantity;
use super::probes::{Startup, probes};
use super::volumes::Volumes;
use super::{
    ANNOTATION_NOT_MAPPED, ANNOTATION_ORDERING, Error, Manifest, Object, Options, export as build,
};
use crate::graph::Graph;
use crate::platform::{HealthConfig, LABEL_SERVICESET, Platform, expand};
use crate::serviceset::{self, Vars};

const PLATFORM: &str = r#"
registries: {primary: reg.test}
sidecars:
  logging: {image: "log:1", order: before, volumes: ["/var/log:/var/log:ro"]}
  metrics: {image: "metrics:1", order: before}
  proxy:
    image: "proxy:1"
    order: before
    gate: healthy
    healthcheck: {test: "nc -z 127.0.0.1 19193", interval: 2s, retries: 5}
  discovery: {image: "disc:1", order: after_healthy, params: {port: ~}}
"#;

const CARD: &str = r#"
web:
  docker:
    image: web
    version: v1
    entrypoint: [/bin/web]
    command: [--port, "8080"]
    environment: [A=1, DB_PASSWORD=hunter2]
    volumes: ["/var/log:/logs", "/srv/web:/srv:ro"]
    tmpfs: ["/tmp:size=64m"]
    mem_limit: 512m
    cpus: 1.5
    stop_grace_period: 30s
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8080/health"]
      interval: 10s
      timeout: 1500ms
      start_period: 25s
      retries: 3
  sidecars:
    logging: ~
    metrics: ~
    proxy: ~
    discovery: {port: 8080}
"#;

fn manifest(set: &str) -> Result<Manifest, Error> {
    let vars = Vars::new([], []);
    let set = serviceset::parse(Path::new("s.conf"), set, &vars).unwrap();
    let platform = Platform::parse(Path::new("p.yaml"), PLATFORM).unwrap();
    let expanded = expand(&set, "shop", &platform, &vars).unwrap();
    let graph = Graph::build(&expanded).unwrap();
    build(&expanded, &graph, &Options::default())
}

/// The Deployment of `set`.
fn export(set: &str) -> Result<Deployment, Error> {
    let manifest = manifest(set)?;
    Ok(manifest
        .objects
        .into_iter()
        .find_map(|o| match o {
            Object::Deployment(d) => Some(*d),
            _ => None,
        })
        .expect("a Deployment"))
}

fn pod_spec(d: Deployment) -> PodSpec {
    d.spec.template.spec.unwrap()
}

fn names(containers: &[Container]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn card_service_becomes_native_sidecars_around_the_main_container() {
    let deployment = export(CARD).unwrap();
    assert_eq!(deployment.metadata.name.as_deref(), Some("shop"));
    assert_eq!(
        deployment.metadata.labels.as_ref().unwrap()[LABEL_SERVICESET],
        "shop"
    );
    let annotations = deployment.metadata.annotations.clone().unwrap();
    let spec = pod_spec(deployment);
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    let init = spec.init_containers.unwrap();
    assert_eq!(names(&init), ["web-logging", "web-metrics", "web-proxy"]);
    assert!(
        init.iter()
            .all(|c| c.restart_policy.as_deref() == Some("Always"))
    );
    assert_eq!(names(&spec.containers), ["web", "web-discovery"]);
    let ordering = &annotations[ANNOTATION_ORDERING];
    assert!(
        ordering.contains("web-discovery once web is healthy"),
        "{ordering}"
    );
    // Discovery is Ready only once web is: it carries web's health check.
    assert_eq!(
        spec.containers[1].readiness_probe,
        spec.containers[0].readiness_probe
    );
}

#[test]
fn main_container_fields() {
    let spec = pod_spec(export(CARD).unwrap());
    let web = &spec.containers[0];
    assert_eq!(web.image.as_deref(), Some("reg.test/web:v1"));
    assert_eq!(web.command.as_deref(), Some(&["/bin/web".to_owned()][..]));
    assert_eq!(
        web.args.as_deref(),
        Some(&["--port".to_owned(), "8080".to_owned()][..])
    );
    let env = web.env.as_ref().unwrap();
    let value = |k: &str| {
        env.iter()
            .find(|e| e.name == k)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(value("A").as_deref(), Some("1"));
    let secret = env.iter().find(|e| e.name == "DB_PASSWORD").unwrap();
    assert_eq!(secret.value, None);
    let reference = secret.value_from.as_ref().unwrap().secret_key_ref.as_ref();
    assert_eq!(
        reference.map(|r| (r.name.as_str(), r.key.as_str())),
        Some(("shop", "DB_PASSWORD"))
    );
    let limits = web.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["memory"], Quantity("512Mi".into()));
    assert_eq!(limits["cpu"], Quantity("1500m".into()));
    let mounts: Vec<_> = web
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str(), m.read_only))
        .collect();
    assert_eq!(
        mounts,
        [
            ("host-var-log", "/logs", None),
            ("host-srv-web", "/srv", Some(true)),
            ("tmpfs-web-tmp", "/tmp", None)
        ]
    );
    // /var/log is one volume, shared with the logging sidecar.
    let volumes = spec.volumes.unwrap();
    assert_eq!(
        volumes.iter().filter(|v| v.name == "host-var-log").count(),
        1
    );
    let tmp = volumes.iter().find(|v| v.name == "tmpfs-web-tmp").unwrap();
    let dir = tmp.empty_dir.as_ref().unwrap();
    assert_eq!(dir.medium.as_deref(), Some("Memory"));
    assert_eq!(dir.size_limit, Some(Quantity("64Mi".into())));
}

#[test]
fn healthcheck_becomes_probes() {
    let spec = pod_spec(export(CARD).unwrap());
    let web = &spec.containers[0];
    let readiness = web.readiness_probe.as_ref().unwrap();
    assert_eq!(
        readiness.exec.as_ref().unwrap().command.as_deref().unwrap(),
        ["curl", "-f", "http://localhost:8080/health"]
    );
    assert_eq!(readiness.period_seconds, Some(10));
    assert_eq!(readiness.timeout_seconds, Some(2), "1.5s rounds up");
    assert_eq!(readiness.failure_threshold, Some(3));
    assert_eq!(web.liveness_probe.as_ref(), Some(readiness));
    // start_period 25s at 10s intervals: 3 grace probes + 3 retries.
    assert_eq!(
        web.startup_probe.as_ref().unwrap().failure_threshold,
        Some(6)
    );

    // The proxy's owner waits for it to be healthy: a startup probe
    // holds the kubelet; CMD-SHELL runs through sh.
    let proxy = &spec.init_containers.unwrap()[2];
    let startup = proxy.startup_probe.as_ref().unwrap();
    assert_eq!(
        startup.exec.as_ref().unwrap().command.as_deref().unwrap(),
        ["/bin/sh", "-c", "nc -z 127.0.0.1 19193"]
    );
    assert_eq!(startup.failure_threshold, Some(5));
    assert_eq!(startup.period_seconds, Some(2));
}

#[test]
fn start_period_of_a_started_gate_sidecar_delays_liveness_only() {
    let hc = HealthConfig {
        test: vec!["CMD".into(), "true".into()],
        interval: 1_000_000_000,
        timeout: 1_000_000_000,
        start_period: 7_000_000_000,
        retries: 0,
    };
    let (readiness, liveness, startup) = probes(&hc, Startup::MustNotHold);
    assert!(startup.is_none());
    assert_eq!(
        readiness.unwrap().failure_threshold,
        Some(3),
        "0 means Docker's default"
    );
    assert_eq!(liveness.unwrap().initial_delay_seconds, Some(7));
    let (_, _, startup) = probes(&hc, Startup::HoldsNothing);
    assert_eq!(startup.unwrap().failure_threshold, Some(10));
    let disabled = HealthConfig {
        test: vec!["NONE".into()],
        ..hc
    };
    assert!(probes(&disabled, Startup::HoldsDependents).0.is_none());
}

#[test]
fn jobs_are_init_containers_before_their_dependents() {
    let set = r#"
migrate:
  kind: job
  docker: {image: migrate, version: v1}
web:
  docker: {image: web, version: v1}
  depends_on: {migrate: {condition: completed}}
  sidecars: {logging: ~}
"#;
    let spec = pod_spec(export(set).unwrap());
    let init = spec.init_containers.unwrap();
    assert_eq!(names(&init), ["migrate", "web-logging"]);
    assert_eq!(init[0].restart_policy, None);
    assert_eq!(init[1].restart_policy.as_deref(), Some("Always"));
    assert_eq!(names(&spec.containers), ["web"]);
}

#[test]
fn what_kubernetes_cannot_express_is_an_error() {
    let job_after_main = r#"
db:
  docker: {image: db, version: v1}
seed:
  kind: job
  docker: {image: seed, version: v1}
  depends_on: [db]
web:
  docker: {image: web, version: v1}
  depends_on: {seed: {condition: completed}}
"#;
    assert_eq!(
        export(job_after_main).unwrap_err(),
        Error::Order {
            container: "seed".into(),
            dependency: "db".into()
        }
    );
    // A named volume is refused before (`platform::bind`); the export
    // still will not make one a host path.
    let mut notes = Vec::new();
    assert!(matches!(
        Volumes::default().bind("web", "data:/data", &mut notes),
        Err(Error::Bind { .. })
    ));
    let bad_name = "Web_1:\n  docker: {image: web, version: v1}\n";
    let err = export(bad_name).unwrap_err().to_string();
    assert!(
        err.starts_with("container name `Web_1` is not valid"),
        "{err}"
    );
    let mixed = "api:\n  docker: {image: a, version: v1}\nbatch:\n  docker: {image: b, version: v1, network_mode: bridge}\n";
    assert!(matches!(export(mixed), Err(Error::MixedNetwork { .. })));
}

#[test]
fn unmapped_settings_are_listed() {
    let set = "web:\n  docker: {image: web, version: v1, user: prod, cpuset_cpus: \"0-3\"}\n";
    let deployment = export(set).unwrap();
    let notes = &deployment.metadata.annotations.unwrap()[ANNOTATION_NOT_MAPPED];
    assert!(notes.contains("user prod of web"), "{notes}");
    assert!(notes.contains("cpuset_cpus 0-3 of web"), "{notes}");
    let numeric = "web:\n  docker: {image: web, version: v1, user: \"1000:2000\"}\n";
    let web = &pod_spec(export(numeric).unwrap()).containers[0];
    let ctx = web.security_context.as_ref().unwrap();
    assert_eq!(
        (ctx.run_as_user, ctx.run_as_group),
        (Some(1000), Some(2000))
    );
}

#[test]
fn volume_names_are_labels_and_unique() {
    let mut v = Volumes::default();
    let mut notes = Vec::new();
    v.bind("a", "/x_y:/a", &mut notes).unwrap();
    v.bind("a", "/x.y:/b", &mut notes).unwrap();
    let names: Vec<_> = v.list.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["host-x-y", "host-x-y-2"]);
    assert_eq!(bytes_quantity(1000), "1000");
    assert_eq!(bytes_quantity(3 << 30), "3Gi");
}

mod objects;
