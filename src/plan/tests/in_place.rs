//! Update in place or recreate (`plan::in_place`): literal observed state
//! in, golden plan text out.

use super::*;
use crate::platform::{RestartPolicy, Updatable};

const SIZED: &str = r#"
web:
  docker: {image: web, version: v1, mem_limit: 64m, restart: unless-stopped}
  sidecars: {logging: ~, discovery: {port: 8080}}
"#;

/// `web` as `old` created it, and as inspect reads its settings now
/// (`read`: what `docker update` changed since, if anything).
fn web_of(old: &Expanded, read: Option<Updatable>) -> Vec<Observed> {
    let mut obs = all_running(old);
    let web = obs.iter_mut().find(|o| o.name == "web").unwrap();
    web.updatable =
        Some(read.unwrap_or_else(|| Updatable::of(&old.get("web").unwrap().create.host_config)));
    obs
}

fn plan_for(new_text: &str, obs: &[Observed]) -> Plan {
    let (new, graph) = desired(new_text);
    plan(&new, &graph, obs, &BTreeMap::new()).unwrap()
}

fn unless_stopped(memory: i64) -> Updatable {
    Updatable {
        memory: Some(memory),
        restart_policy: RestartPolicy {
            name: "unless-stopped".into(),
            maximum_retry_count: None,
        },
        ..Default::default()
    }
}

#[test]
fn a_memory_limit_change_alone_updates_in_place_and_restarts_nothing() {
    let (old, _) = desired(SIZED);
    let got = plan_for(&SIZED.replace("64m", "128m"), &web_of(&old, None));
    assert_eq!(
        got.to_string(),
        "serviceset shop: 1 to update in place, 2 unchanged\n  keep     web-logging    up to date\n  update   web            changed in place, no restart: HostConfig.Memory\n  keep     web-discovery  up to date\n"
    );
    let web = got.get("web").unwrap();
    assert_eq!(
        web.reason,
        Reason::UpdatableChanged {
            fields: vec!["HostConfig.Memory".into()],
            from: unless_stopped(64 << 20),
        }
    );
    assert_eq!(web.reason.code(), "updatable_changed");
    assert!(
        got.stops_first(&desired(SIZED).1).is_empty(),
        "an update stops nothing"
    );
}

#[test]
fn cpus_cpuset_and_restart_policy_are_updated_in_place_too() {
    let (old, _) = desired(SIZED);
    let new = SIZED.replace(
        "restart: unless-stopped",
        "restart: always, cpus: 0.5, cpuset_cpus: \"0\"",
    );
    let got = plan_for(&new, &web_of(&old, None));
    assert_eq!(
        got.get("web").unwrap().reason.to_string(),
        "changed in place, no restart: HostConfig.NanoCpus, HostConfig.CpusetCpus, HostConfig.RestartPolicy"
    );
}

#[test]
fn a_change_beside_an_updatable_one_recreates() {
    let (old, _) = desired(SIZED);
    let new = SIZED
        .replace("64m", "128m")
        .replace("version: v1", "version: v1, environment: [A=2]");
    let got = plan_for(&new, &web_of(&old, None));
    let web = got.get("web").unwrap();
    assert_eq!(web.action, ActionKind::Recreate);
    assert_eq!(
        got.get("web-discovery").unwrap().action,
        ActionKind::Restart
    );
}

#[test]
fn no_change_keeps_and_reads_nothing() {
    let (old, _) = desired(SIZED);
    let obs = all_running(&old);
    assert!(
        to_read(&old, &obs).is_empty(),
        "the hashes match: no inspect"
    );
    assert!(plan_for(SIZED, &obs).is_noop());
}

/// The config-hash label still names the body it was created from; the
/// settings read back say it already runs the spec.
#[test]
fn a_container_updated_earlier_is_kept_on_the_next_start() {
    let (old, _) = desired(SIZED);
    let new = SIZED.replace("64m", "128m");
    let (desired_new, _) = desired(&new);
    assert_eq!(
        to_read(&desired_new, &all_running(&old)),
        ["id-web"],
        "only the container whose fixed hash matches is read"
    );
    let got = plan_for(&new, &web_of(&old, Some(unless_stopped(128 << 20))));
    assert!(got.is_noop(), "{got}");
    assert_eq!(got.get("web").unwrap().reason, Reason::UpToDate);
}

#[test]
fn taking_a_limit_away_recreates_as_docker_cannot_unset_it() {
    let (old, _) = desired(SIZED);
    let got = plan_for(&SIZED.replace(" mem_limit: 64m,", ""), &web_of(&old, None));
    assert_eq!(
        got.get("web").unwrap().reason.to_string(),
        "config changed: HostConfig.Memory"
    );
    assert_eq!(got.get("web").unwrap().action, ActionKind::Recreate);
}

#[test]
fn a_stopped_container_with_an_updatable_change_is_recreated() {
    let (old, _) = desired(SIZED);
    let mut obs = web_of(&old, None);
    obs.iter_mut().find(|o| o.name == "web").unwrap().state = RunState::Exited;
    let got = plan_for(&SIZED.replace("64m", "128m"), &obs);
    assert_eq!(got.get("web").unwrap().action, ActionKind::Recreate);
}

/// A container created before telefig set `telefig.fixed-hash`, or whose
/// settings the caller did not read: recreated, as before.
#[test]
fn without_the_fixed_hash_or_the_settings_read_it_recreates() {
    let (old, _) = desired(SIZED);
    let new = SIZED.replace("64m", "128m");
    let mut unread = all_running(&old);
    assert_eq!(
        plan_for(&new, &unread).get("web").unwrap().action,
        ActionKind::Recreate
    );
    let web = unread.iter_mut().find(|o| o.name == "web").unwrap();
    web.labels.remove(crate::platform::LABEL_FIXED_HASH);
    web.updatable = Some(unless_stopped(64 << 20));
    assert_eq!(
        plan_for(&new, &unread).get("web").unwrap().action,
        ActionKind::Recreate
    );
}

/// After a failed start, only the updates the walk reached are undone,
/// each back to the settings the plan read before.
#[test]
fn a_failed_start_undoes_the_updates_it_reached_with_the_settings_read_before() {
    let (old, _) = desired(SIZED);
    let got = plan_for(&SIZED.replace("64m", "128m"), &web_of(&old, None));
    let from = unless_stopped(64 << 20);
    assert_eq!(
        undo_updates(&got, |c| c == "web"),
        [Undo {
            container: "web",
            id: "id-web",
            settings: &from,
        }]
    );
    assert!(undo_updates(&got, |c| c != "web").is_empty(), "not reached");
}
