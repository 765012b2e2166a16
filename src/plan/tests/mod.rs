//! Planner tests: literal observed state in, golden plan text out. The
//! repairs' plans (`restart`, the boot order) are in `repair`.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::platform::{LABEL_CONFIG_HASH, LABEL_CONTAINER, LABEL_SERVICESET, Platform, expand};
use crate::serviceset::{self, Vars};

mod in_place;
mod repair;

/// Cases other modules' tests start from.
pub(crate) mod fixture {
    use super::*;

    /// `web` (logging before it, discovery after it is healthy) recreated
    /// for an environment change, discovery restarted for it, `api` created.
    pub(crate) fn recreate_web_create_api() -> (Plan, Graph) {
        let (old, _) = desired(SET);
        let (new, graph) = desired(&format!(
            "{}api: {{docker: {{image: api, version: v1}}}}\n",
            SET.replace("A=1", "A=2")
        ));
        let obs = all_running(&old);
        let plan = plan(&new, &graph, &obs, &BTreeMap::new()).unwrap();
        (plan, graph)
    }
}

const PLATFORM: &str = r#"
registries: {primary: reg.test}
sidecars:
  logging: {image: "log:1", order: before}
  discovery: {image: "disc:1", order: after_healthy, params: {port: ~}}
"#;

const SET: &str = r#"
web:
  docker: {image: web, version: v1, environment: [A=1]}
  sidecars: {logging: ~, discovery: {port: 8080}}
"#;

fn desired(text: &str) -> (Expanded, Graph) {
    let vars = Vars::new([], []);
    let set = serviceset::parse(Path::new("s.conf"), text, &vars).unwrap();
    let platform = Platform::parse(Path::new("p.yaml"), PLATFORM).unwrap();
    let expanded = expand(&set, "shop", &platform, &vars).unwrap();
    let graph = Graph::build(&expanded).unwrap();
    (expanded, graph)
}

fn running(expanded: &Expanded, name: &str) -> Observed {
    let spec = expanded.get(name).unwrap();
    Observed {
        id: format!("id-{name}"),
        name: name.into(),
        image: spec.image.reference.clone(),
        labels: spec.create.labels.clone(),
        state: RunState::Running,
        health: None,
        exit_code: None,
        updatable: None,
    }
}

/// Every desired container, running with its wanted config.
fn all_running(expanded: &Expanded) -> Vec<Observed> {
    expanded
        .containers
        .iter()
        .map(|c| running(expanded, &c.name))
        .collect()
}

fn plan_text(text: &str, observed: impl Fn(&Expanded) -> Vec<Observed>) -> String {
    let (expanded, graph) = desired(text);
    let obs = observed(&expanded);
    plan(&expanded, &graph, &obs, &BTreeMap::new())
        .unwrap()
        .to_string()
}

#[test]
fn cold_start_creates_everything_in_order() {
    let got = plan_text(SET, |_| vec![]);
    assert_eq!(
        got,
        "serviceset shop: 3 to create\n  create   web-logging    no such container\n  create   web            no such container\n  create   web-discovery  no such container\n"
    );
}

#[test]
fn second_start_is_a_noop() {
    let (expanded, graph) = desired(SET);
    let obs = all_running(&expanded);
    let p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    assert!(p.is_noop());
    assert_eq!(p.summary(), "3 unchanged");
}

#[test]
fn env_change_recreates_one_and_regates_discovery() {
    let (old, _) = desired(SET);
    let (new, graph) = desired(&SET.replace("A=1", "A=2"));
    let obs = all_running(&old);
    let recorded: BTreeMap<String, ContainerSpec> = old
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.clone()))
        .collect();
    let got = plan(&new, &graph, &obs, &recorded).unwrap().to_string();
    assert_eq!(
        got,
        "serviceset shop: 1 to recreate, 1 to restart, 1 unchanged\n  keep     web-logging    up to date\n  recreate web            config changed: Env; drains up to 3.0 s first\n  restart  web-discovery  waits for `web` to be healthy, which is recreated\n"
    );
}

#[test]
fn new_deploy_id_alone_recreates_nothing() {
    let (old, _) = desired(SET);
    let vars = Vars::new([("DEPLOY_ID".into(), "d-2".into())], []);
    let set = serviceset::parse(Path::new("s.conf"), SET, &vars).unwrap();
    let platform = Platform::parse(Path::new("p.yaml"), PLATFORM).unwrap();
    let new = expand(&set, "shop", &platform, &vars).unwrap();
    let graph = Graph::build(&new).unwrap();
    let obs = all_running(&old);
    assert!(
        plan(&new, &graph, &obs, &BTreeMap::new())
            .unwrap()
            .is_noop()
    );
}

#[test]
fn exited_is_started_and_unknown_previous_config_says_so() {
    let got = plan_text(SET, |e| {
        let mut web = running(e, "web");
        web.state = RunState::Exited;
        web.exit_code = Some(137);
        let mut log = running(e, "web-logging");
        log.labels.insert(LABEL_CONFIG_HASH.into(), "stale".into());
        vec![web, log]
    });
    assert_eq!(
        got,
        "serviceset shop: 1 to create, 1 to recreate, 1 to start\n  recreate web-logging    config hash changed (no record of the previous config to compare)\n  start    web            exited with code 137\n  create   web-discovery  no such container\n"
    );
}

#[test]
fn orphans_and_leftover_backups_are_removed_foreign_ones_ignored() {
    let got = plan_text(SET, |e| {
        let mut all = all_running(e);
        let mut orphan = running(e, "web");
        orphan.name = "old-worker".into();
        orphan.id = "id-old".into();
        orphan
            .labels
            .insert(LABEL_CONTAINER.into(), "old-worker".into());
        let mut backup = running(e, "web");
        backup.name = "web.telefig-previous".into();
        backup.id = "id-backup".into();
        let mut foreign = running(e, "web");
        foreign.name = "someone-else".into();
        foreign.labels.clear();
        all.extend([orphan, backup, foreign]);
        all
    });
    assert_eq!(
        got,
        "serviceset shop: 2 to remove, 3 unchanged\n  keep     web-logging           up to date\n  keep     web                   up to date\n  keep     web-discovery         up to date\n  remove   old-worker            no longer in the serviceset\n  remove   web.telefig-previous  previous version of `web` left by an interrupted start\n"
    );
}

#[test]
fn a_backup_of_a_missing_container_becomes_its_rollback_target() {
    let (expanded, graph) = desired(SET);
    let mut backup = running(&expanded, "web");
    backup.name = "web.telefig-previous".into();
    let p = plan(&expanded, &graph, &[backup], &BTreeMap::new()).unwrap();
    let web = p.get("web").unwrap();
    assert_eq!(
        (web.action, web.backup_id.as_deref()),
        (ActionKind::Create, Some("id-web"))
    );
    assert!(p.get("web.telefig-previous").is_none());
}

#[test]
fn names_held_by_others_are_errors() {
    let (expanded, graph) = desired(SET);
    let mut foreign = running(&expanded, "web");
    foreign.labels.clear();
    let err = plan(&expanded, &graph, &[foreign], &BTreeMap::new()).unwrap_err();
    assert!(matches!(err, Error::NameTakenByForeign { .. }), "{err}");
    let mut other = running(&expanded, "web");
    other
        .labels
        .insert(LABEL_SERVICESET.into(), "billing".into());
    let err = plan(&expanded, &graph, &[other], &BTreeMap::new()).unwrap_err();
    assert!(
        err.to_string().contains("belongs to serviceset `billing`"),
        "{err}"
    );
}

#[test]
fn completed_job_is_kept_failed_job_rerun() {
    let text = "migrate:\n  kind: job\n  docker: {image: m, version: v1}\n";
    let got = plan_text(text, |e| {
        let mut job = running(e, "migrate");
        job.state = RunState::Exited;
        job.exit_code = Some(0);
        vec![job]
    });
    assert!(got.contains("keep     migrate  job completed"), "{got}");
    let got = plan_text(text, |e| {
        let mut job = running(e, "migrate");
        job.state = RunState::Exited;
        job.exit_code = Some(1);
        vec![job]
    });
    assert!(
        got.contains("start    migrate  exited with code 1"),
        "{got}"
    );
}

#[test]
fn a_container_docker_is_restarting_is_left_to_docker() {
    let got = plan_text(SET, |e| {
        let mut all = all_running(e);
        all[1].state = RunState::Restarting;
        all
    });
    assert!(got.contains("keep     web            up to date"), "{got}");
}

const JOB_SET: &str = "migrate:\n  kind: job\n  docker: {image: m, version: v1}\napp:\n  docker: {image: a, version: v1}\n  depends_on: {migrate: {condition: completed}}\n";

/// Regression: a retry of `start` after SIGKILL found the job still running
/// and treated it as completed, so `app` started before the migration ended.
#[test]
fn a_running_job_counts_as_completed() {
    let (expanded, graph) = desired(JOB_SET);
    let obs = all_running(&expanded);
    let p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    assert_eq!(
        p.to_string(),
        "serviceset shop: 2 unchanged\n  keep     migrate  job still running; its dependents wait for it to exit 0\n  keep     app      up to date\n"
    );
    assert_eq!(
        p.get("migrate").unwrap().readiness,
        Some(Readiness::AwaitExit)
    );
    assert_eq!(p.get("app").unwrap().readiness, Some(Readiness::Ready));
    // Exited 0: ready. Docker restarting it: still running.
    let readiness = |state, exit_code| {
        let mut obs = all_running(&expanded);
        let job = obs.iter_mut().find(|o| o.name == "migrate").unwrap();
        job.state = state;
        job.exit_code = exit_code;
        let p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
        p.get("migrate").unwrap().readiness
    };
    assert_eq!(readiness(RunState::Exited, Some(0)), Some(Readiness::Ready));
    assert_eq!(
        readiness(RunState::Restarting, None),
        Some(Readiness::AwaitExit)
    );
    // Exited non-zero: run again (a start, which waits for its exit as a gate).
    assert_eq!(readiness(RunState::Exited, Some(3)), None);
}

#[test]
fn a_kept_service_is_ready_only_when_running_and_healthy() {
    let (expanded, graph) = desired(SET);
    let readiness = |state, health| {
        let mut obs = all_running(&expanded);
        let web = obs.iter_mut().find(|o| o.name == "web").unwrap();
        web.state = state;
        web.health = health;
        let p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
        p.get("web").unwrap().readiness
    };
    use Readiness::*;
    assert_eq!(readiness(RunState::Running, None), Some(Ready));
    assert_eq!(
        readiness(RunState::Running, Some(Health::Healthy)),
        Some(Ready)
    );
    assert_eq!(
        readiness(RunState::Running, Some(Health::Starting)),
        Some(AwaitGates)
    );
    assert_eq!(
        readiness(RunState::Running, Some(Health::Unhealthy)),
        Some(AwaitGates)
    );
    assert_eq!(readiness(RunState::Restarting, None), Some(AwaitGates));
    assert_eq!(readiness(RunState::Exited, None), None, "started, not kept");
}

/// Regression: dockerd restarted between a run's create and its start left
/// `web` created, with a task Docker keeps and no start clears ("task …:
/// already exists"); every later start of it failed. A container created
/// and never started is replaced, and its healthy dependents are not
/// re-gated for it (they never waited on it).
#[test]
fn a_container_created_and_never_started_is_replaced_not_started() {
    let (expanded, graph) = desired(SET);
    let mut obs = all_running(&expanded);
    for o in obs.iter_mut().filter(|o| o.name == "web") {
        o.state = RunState::Created;
    }
    let p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    assert_eq!(
        p.to_string(),
        "serviceset shop: 1 to recreate, 2 unchanged\n  keep     web-logging    up to date\n  recreate web            created, never started (an interrupted run)\n  keep     web-discovery  up to date\n"
    );
    let stops: Vec<String> = p
        .stops_first(&graph)
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(stops, ["remove   web"], "removed, nothing kept aside");
    assert_eq!(
        p.stops_first(&graph)[0].removal().map(|r| r.code()),
        Some("never_started")
    );
}
