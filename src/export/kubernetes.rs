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

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, ExecAction, HostPathVolumeSource, Pod,
    PodSpec, Probe, ResourceRequirements, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Error;
use crate::graph::Graph;
use crate::platform::{
    ContainerSpec, Expanded, HealthConfig, HostConfig, LABEL_SERVICESET, Role, mask_env_entry,
};
use crate::spec::{Condition, parse_bytes};

/// Which dependencies the Pod does not enforce, and how to live with it.
pub const ANNOTATION_ORDERING: &str = "telefig.io/ordering";
/// Docker settings the Pod leaves out.
pub const ANNOTATION_NOT_MAPPED: &str = "telefig.io/not-mapped";

/// Where a container goes in the Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
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

#[derive(Clone, Copy)]
enum NameKind {
    Pod,
    Container,
}

/// Pod names are DNS-1123 subdomains, container names DNS-1123 labels.
fn check_name(name: &str, kind: NameKind) -> Result<(), Error> {
    let (what, max, rule, fix, dots) = match kind {
        NameKind::Pod => (
            "Pod",
            253,
            "lowercase letters, digits, `-` and `.`, at most 253, starting and ending with a letter or digit",
            "pass --name with such a name",
            true,
        ),
        NameKind::Container => (
            "container",
            63,
            "lowercase letters, digits and `-`, at most 63, starting and ending with a letter or digit",
            "rename the container in the serviceset",
            false,
        ),
    };
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = name.len() <= max
        && name.chars().all(allowed)
        && edge(name.chars().next())
        && edge(name.chars().last());
    if valid {
        Ok(())
    } else {
        Err(Error::Name {
            what,
            name: name.to_owned(),
            rule,
            fix,
        })
    }
}

fn container(
    spec: &ContainerSpec,
    place: Place,
    held: bool,
    volumes: &mut Volumes,
    not_mapped: &mut Vec<String>,
) -> Result<Container, Error> {
    let body = &spec.create;
    let name = &spec.name;
    let mut mounts = Vec::new();
    for bind in &body.host_config.binds {
        mounts.push(volumes.bind(name, bind, not_mapped)?);
    }
    for (path, options) in &body.host_config.tmpfs {
        mounts.push(volumes.tmpfs(name, path, options, not_mapped));
    }
    let env: Vec<EnvVar> = body.env.iter().map(|e| env_var(e)).collect();
    let (readiness, liveness, startup) = match (&body.healthcheck, place) {
        (Some(hc), Place::Job) => {
            if exec_command(&hc.test).is_some() {
                not_mapped.push(format!(
                    "healthcheck of {name} (init containers take no probes)"
                ));
            }
            (None, None, None)
        }
        (Some(hc), Place::Regular) => probes(hc, Startup::HoldsNothing),
        (Some(hc), Place::NativeSidecar) if held => probes(hc, Startup::HoldsDependents),
        (Some(hc), Place::NativeSidecar) => probes(hc, Startup::MustNotHold),
        (None, _) => (None, None, None),
    };
    if let Some(cpus) = &body.host_config.cpuset_cpus {
        not_mapped.push(format!(
            "cpuset_cpus {cpus} of {name} (use the kubelet's static CPU manager)"
        ));
    }
    if let Some(signal) = &body.stop_signal {
        not_mapped.push(format!(
            "stop_signal {signal} of {name} (the kubelet sends SIGTERM)"
        ));
    }
    let restart = &body.host_config.restart_policy.name;
    if place != Place::Job && !matches!(restart.as_str(), "unless-stopped" | "always") {
        not_mapped.push(format!(
            "restart {restart} of {name} (the Pod restarts it: restartPolicy Always)"
        ));
    }
    if !matches!(
        body.host_config.network_mode.as_str(),
        "host" | "bridge" | "default"
    ) {
        not_mapped.push(format!(
            "network_mode {} of {name}",
            body.host_config.network_mode
        ));
    }
    Ok(Container {
        name: name.clone(),
        image: Some(body.image.clone()),
        command: body.entrypoint.clone(),
        args: body.cmd.clone(),
        env: (!env.is_empty()).then_some(env),
        working_dir: body.working_dir.clone(),
        resources: resources(&body.host_config),
        security_context: security_context(
            name,
            body.user.as_deref(),
            &body.host_config,
            not_mapped,
        ),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        restart_policy: (place == Place::NativeSidecar).then(|| "Always".to_owned()),
        readiness_probe: readiness,
        liveness_probe: liveness,
        startup_probe: startup,
        ..Default::default()
    })
}

/// `KEY=VALUE`, the value masked when the key looks secret (as `render` does).
fn env_var(entry: &str) -> EnvVar {
    let masked = mask_env_entry(entry);
    let (name, value) = masked.split_once('=').unwrap_or((&masked, ""));
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

/// The command a probe runs: `CMD a b` → `[a, b]`, `CMD-SHELL s` → `sh -c s`;
/// `NONE` (a disabled healthcheck) → none.
fn exec_command(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// Nanoseconds to whole seconds, rounded up, at least 1.
fn seconds(ns: i64) -> i32 {
    let secs = (ns.max(0) as u64).div_ceil(1_000_000_000).max(1);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

/// What a container's startup probe would hold back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Startup {
    /// Nothing: a regular container, which no other container waits for.
    HoldsNothing,
    /// A native sidecar whose dependent waits for it to be healthy: the
    /// startup probe is that wait.
    HoldsDependents,
    /// A native sidecar whose dependents wait only for it to start: a
    /// startup probe would hold them longer than telefig does.
    MustNotHold,
}

/// (readiness, liveness, startup) from a healthcheck.
fn probes(hc: &HealthConfig, startup: Startup) -> (Option<Probe>, Option<Probe>, Option<Probe>) {
    let Some(command) = exec_command(&hc.test) else {
        return (None, None, None);
    };
    // The Engine API's 0 means "Docker's default": 3 retries.
    let retries = if hc.retries > 0 {
        i32::try_from(hc.retries).unwrap_or(i32::MAX)
    } else {
        3
    };
    let period = seconds(hc.interval);
    let base = Probe {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(seconds(hc.timeout)),
        failure_threshold: Some(retries),
        ..Default::default()
    };
    let mut liveness = base.clone();
    let start_period = (hc.start_period > 0).then(|| seconds(hc.start_period));
    let startup_probe = match (startup, start_period) {
        (Startup::MustNotHold, _) => {
            liveness.initial_delay_seconds = start_period;
            None
        }
        (Startup::HoldsNothing, None) => None,
        (_, grace) => Some(Probe {
            failure_threshold: Some(
                grace
                    .map_or(0, |g| (g + period - 1) / period)
                    .saturating_add(retries),
            ),
            ..base.clone()
        }),
    };
    (Some(base), Some(liveness), startup_probe)
}

fn resources(host: &HostConfig) -> Option<ResourceRequirements> {
    let mut limits = BTreeMap::new();
    if let Some(bytes) = host.memory {
        limits.insert("memory".to_owned(), Quantity(bytes_quantity(bytes)));
    }
    if let Some(nano) = host.nano_cpus {
        let milli = nano / 1_000_000;
        let cpu = if milli % 1000 == 0 {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
        limits.insert("cpu".to_owned(), Quantity(cpu));
    }
    (!limits.is_empty()).then(|| ResourceRequirements {
        limits: Some(limits),
        ..Default::default()
    })
}

/// `536870912` → `512Mi`; bytes when no binary unit divides it.
fn bytes_quantity(bytes: i64) -> String {
    for (unit, size) in [
        ("Ti", 1i64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Privileged, added capabilities, and a numeric `user` (`uid[:gid]`).
fn security_context(
    name: &str,
    user: Option<&str>,
    host: &HostConfig,
    not_mapped: &mut Vec<String>,
) -> Option<SecurityContext> {
    let mut ctx = SecurityContext {
        privileged: host.privileged,
        capabilities: (!host.cap_add.is_empty()).then(|| Capabilities {
            add: Some(host.cap_add.clone()),
            drop: None,
        }),
        ..Default::default()
    };
    if let Some(user) = user {
        let (uid, gid) = user
            .split_once(':')
            .map_or((user, None), |(u, g)| (u, Some(g)));
        match (uid.parse::<i64>(), gid.map(str::parse::<i64>).transpose()) {
            (Ok(uid), Ok(gid)) => {
                ctx.run_as_user = Some(uid);
                ctx.run_as_group = gid;
            }
            _ => not_mapped.push(format!(
                "user {user} of {name} (Kubernetes takes numeric ids: set securityContext.runAsUser)"
            )),
        }
    }
    (ctx != SecurityContext::default()).then_some(ctx)
}

/// The Pod's volumes: one `hostPath` per host path, shared by every
/// container that binds it; one in-memory `emptyDir` per tmpfs mount.
#[derive(Default)]
struct Volumes {
    list: Vec<Volume>,
    by_host_path: HashMap<String, String>,
}

impl Volumes {
    /// `/host:/ctr[:options]` → a mount of the `hostPath` volume for `/host`.
    fn bind(
        &mut self,
        container: &str,
        bind: &str,
        not_mapped: &mut Vec<String>,
    ) -> Result<VolumeMount, Error> {
        let mut parts = bind.splitn(3, ':');
        let (host, target, options) = (parts.next(), parts.next(), parts.next());
        let (Some(host), Some(target)) = (
            host.filter(|h| h.starts_with('/')),
            target.filter(|t| !t.is_empty()),
        ) else {
            return Err(Error::Bind {
                container: container.to_owned(),
                bind: bind.to_owned(),
            });
        };
        let mut read_only = None;
        for option in options.into_iter().flat_map(|o| o.split(',')) {
            match option {
                "ro" => read_only = Some(true),
                "rw" | "" => {}
                other => not_mapped.push(format!("bind option {other} of {container} ({bind})")),
            }
        }
        let name = match self.by_host_path.get(host) {
            Some(name) => name.clone(),
            None => {
                let name = self.unique_name(&format!("host{host}"));
                self.list.push(Volume {
                    name: name.clone(),
                    host_path: Some(HostPathVolumeSource {
                        path: host.to_owned(),
                        type_: None,
                    }),
                    ..Default::default()
                });
                self.by_host_path.insert(host.to_owned(), name.clone());
                name
            }
        };
        Ok(VolumeMount {
            name,
            mount_path: target.to_owned(),
            read_only,
            ..Default::default()
        })
    }

    /// A tmpfs (`size=64m,mode=1777`) → a memory-backed `emptyDir`.
    fn tmpfs(
        &mut self,
        container: &str,
        path: &str,
        options: &str,
        not_mapped: &mut Vec<String>,
    ) -> VolumeMount {
        let mut size_limit = None;
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("size", size)) if parse_bytes(size).is_ok() => {
                    size_limit = parse_bytes(size).ok().map(|b| Quantity(bytes_quantity(b)));
                }
                _ => not_mapped.push(format!("tmpfs option {option} of {container} ({path})")),
            }
        }
        let name = self.unique_name(&format!("tmpfs-{container}{path}"));
        self.list.push(Volume {
            name: name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit,
                ..Default::default()
            }),
            ..Default::default()
        });
        VolumeMount {
            name,
            mount_path: path.to_owned(),
            ..Default::default()
        }
    }

    /// A DNS-1123 label from `text` (`host/var/log` → `host-var-log`),
    /// numbered when taken.
    fn unique_name(&self, text: &str) -> String {
        let mut base: String = text
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        while base.contains("--") {
            base = base.replace("--", "-");
        }
        let base: String = base.trim_matches('-').chars().take(56).collect();
        let base = base.trim_end_matches('-').to_owned();
        let taken = |n: &str| self.list.iter().any(|v| v.name == n);
        let mut name = base.clone();
        let mut n = 2;
        while taken(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::platform::{Platform, expand};
    use crate::spec::{self, Vars};

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

    fn export(set: &str) -> Result<Pod, Error> {
        let vars = Vars::new([], []);
        let set = spec::parse(Path::new("s.conf"), set, &vars).unwrap();
        let platform = Platform::parse(Path::new("p.yaml"), PLATFORM).unwrap();
        let expanded = expand(&set, "shop", &platform, &vars).unwrap();
        let graph = Graph::build(&expanded).unwrap();
        pod(&expanded, &graph)
    }

    fn names(containers: &[Container]) -> Vec<&str> {
        containers.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn card_service_becomes_native_sidecars_around_the_main_container() {
        let pod = export(CARD).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("shop"));
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()[LABEL_SERVICESET],
            "shop"
        );
        let spec = pod.spec.unwrap();
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
        let ordering = &pod.metadata.annotations.unwrap()[ANNOTATION_ORDERING];
        assert!(
            ordering.contains("web-discovery once web is healthy"),
            "{ordering}"
        );
    }

    #[test]
    fn main_container_fields() {
        let spec = export(CARD).unwrap().spec.unwrap();
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
        assert_eq!(value("DB_PASSWORD").as_deref(), Some("<masked>"));
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
        let spec = export(CARD).unwrap().spec.unwrap();
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
        let spec = export(set).unwrap().spec.unwrap();
        let init = spec.init_containers.unwrap();
        assert_eq!(names(&init), ["migrate", "web-logging"]);
        assert_eq!(init[0].restart_policy, None);
        assert_eq!(init[1].restart_policy.as_deref(), Some("Always"));
        assert_eq!(names(&spec.containers), ["web"]);
    }

    #[test]
    fn what_a_pod_cannot_express_is_an_error() {
        let job_after_main = r#"
db:
  docker: {image: db, version: v1}
seed:
  kind: job
  docker: {image: seed, version: v1}
  depends_on: [db]
"#;
        assert_eq!(
            export(job_after_main).unwrap_err(),
            Error::Order {
                container: "seed".into(),
                dependency: "db".into()
            }
        );
        let only_jobs = "seed:\n  kind: job\n  docker: {image: seed, version: v1}\n";
        assert_eq!(
            export(only_jobs).unwrap_err(),
            Error::OnlyJobs("shop".into())
        );
        let named_volume = "web:\n  docker: {image: web, version: v1, volumes: [\"data:/data\"]}\n";
        assert!(matches!(export(named_volume), Err(Error::Bind { .. })));
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
        let pod = export(set).unwrap();
        let notes = &pod.metadata.annotations.unwrap()[ANNOTATION_NOT_MAPPED];
        assert!(notes.contains("user prod of web"), "{notes}");
        assert!(notes.contains("cpuset_cpus 0-3 of web"), "{notes}");
        let numeric = "web:\n  docker: {image: web, version: v1, user: \"1000:2000\"}\n";
        let web = &export(numeric).unwrap().spec.unwrap().containers[0];
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
}
