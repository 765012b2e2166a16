//! One expanded container as a Kubernetes `Container`: image, command,
//! environment (secret values as references to the serviceset's Secret),
//! resources, security context, stop signal, and the mounts and probes
//! built by `volumes` and `probes`.
//! What has no equivalent is pushed onto the `not_mapped` list.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, Lifecycle, ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::probes::{Startup, exec_command, probes};
use super::secrets::Secrets;
use super::volumes::Volumes;
use super::{Error, Place};
use crate::platform::{ContainerSpec, HostConfig};

/// `spec` as a container placed at `place`; `held` when a dependent waits
/// for it to be healthy.
pub(super) fn container(
    spec: &ContainerSpec,
    place: Place,
    held: bool,
    secrets: &Secrets,
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
    let env: Vec<EnvVar> = body.env.iter().map(|e| secrets.env_var(name, e)).collect();
    let (readiness, liveness, startup) = match (&body.healthcheck, place) {
        (Some(hc), Place::InitJob | Place::Job) => {
            if exec_command(&hc.test).is_some() {
                not_mapped.push(format!(
                    "healthcheck of {name} (a container that runs to completion takes no probes)"
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
    let lifecycle = match (&body.stop_signal, place) {
        (None, _) => None,
        (Some(signal), Place::InitJob) => {
            not_mapped.push(format!(
                "stop_signal {signal} of {name} (an init container takes no lifecycle; the kubelet sends SIGTERM)"
            ));
            None
        }
        (Some(signal), _) => match stop_signal(signal) {
            Some(signal) => Some(Lifecycle {
                stop_signal: Some(signal),
                ..Default::default()
            }),
            None => {
                not_mapped.push(format!(
                    "stop_signal {signal} of {name} (not a signal Kubernetes names; the kubelet sends SIGTERM)"
                ));
                None
            }
        },
    };
    let restart = &body.host_config.restart_policy.name;
    if !matches!(place, Place::InitJob | Place::Job)
        && !matches!(restart.as_str(), "unless-stopped" | "always")
    {
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
        lifecycle,
        readiness_probe: readiness,
        liveness_probe: liveness,
        startup_probe: startup,
        ..Default::default()
    })
}

/// Docker's stop signal (`SIGINT`, `INT`, `2`) as Kubernetes names it
/// (`SIGINT`); none for what Kubernetes does not name.
pub(super) fn stop_signal(signal: &str) -> Option<String> {
    const BY_NUMBER: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let signal = signal.trim().to_ascii_uppercase();
    if let Ok(n) = signal.parse::<usize>() {
        return BY_NUMBER.get(n.checked_sub(1)?).map(|s| (*s).to_owned());
    }
    let named = if signal.starts_with("SIG") {
        signal
    } else {
        format!("SIG{signal}")
    };
    let realtime = named
        .strip_prefix("SIGRTMIN+")
        .or_else(|| named.strip_prefix("SIGRTMAX-"))
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=14).contains(&n));
    (BY_NUMBER.contains(&named.as_str())
        || realtime
        || named == "SIGRTMIN"
        || named == "SIGRTMAX"
        || named == "SIGIOT"
        || named == "SIGPOLL")
        .then_some(named)
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
pub(super) fn bytes_quantity(bytes: i64) -> String {
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
