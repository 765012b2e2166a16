//! One expanded container as a Kubernetes `Container`: image, command,
//! environment (secret values masked), resources, security context, and
//! the mounts and probes built by `volumes` and `probes`.
//! What has no equivalent is pushed onto the `not_mapped` list.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::probes::{Startup, exec_command, probes};
use super::volumes::Volumes;
use super::{Error, Place};
use crate::platform::{ContainerSpec, HostConfig, mask_env_entry};

pub(super) fn container(
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
