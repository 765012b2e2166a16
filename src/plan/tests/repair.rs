//! The repairs' plans: `restart` (the target and its dependents), and a
//! boot's order checked against Docker's start times (`reorder_after_boot`).

use std::collections::{BTreeMap, HashMap};

use super::*;

#[test]
fn restart_takes_the_target_and_its_dependents_only() {
    let (expanded, graph) = desired(SET);
    let obs = all_running(&expanded);
    let got = restart(&expanded, &graph, &obs, Some("web")).to_string();
    assert_eq!(
        got,
        "serviceset shop: 2 to restart\n  restart  web            restart requested; drains up to 3.0 s first\n  restart  web-discovery  depends on `web`, which restarts\n"
    );
}

#[test]
fn boot_repair_restarts_a_dependent_started_before_its_gate() {
    let (expanded, graph) = desired(SET);
    let obs = all_running(&expanded);
    let timing = |started, healthy| Timing {
        started_at: Some(started),
        healthy_since: healthy,
        finished_at: None,
        has_healthcheck: healthy.is_some(),
        healthy_seen_at: None,
    };
    let mut timings = HashMap::from([
        ("web-logging".to_owned(), timing(10, None)),
        // Docker started web and its discovery at once; web turned healthy later.
        (
            "web".to_owned(),
            Timing {
                has_healthcheck: true,
                ..timing(12, Some(50))
            },
        ),
        ("web-discovery".to_owned(), timing(11, None)),
    ]);
    let mut p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert_eq!(
        p.to_string(),
        "serviceset shop: 1 to restart, 2 unchanged\n  keep     web-logging    up to date\n  keep     web            up to date\n  restart  web-discovery  started before `web` met its gate\n"
    );
    // Started after web was healthy: left alone. (web started after logging: fine.)
    timings.insert("web-discovery".into(), timing(60, None));
    let mut p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert!(p.is_noop(), "{p}");
    // web itself started before logging: web and, after it, discovery restart.
    timings.insert(
        "web".into(),
        Timing {
            has_healthcheck: true,
            ..timing(5, Some(50))
        },
    );
    let mut p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert_eq!(p.summary(), "2 to restart, 1 unchanged");
}

/// Docker's five-probe window no longer shows web's first pass (a probe
/// timed out under load since): the gate pass telefig saw in this run
/// settles that discovery started after it. One seen before web's current
/// run does not count.
#[test]
fn a_gate_pass_telefig_saw_in_this_run_counts_when_dockers_window_lost_it() {
    let (expanded, graph) = desired(SET);
    let obs = all_running(&expanded);
    let timing = |started, healthy: Option<i64>, seen: Option<i64>| Timing {
        started_at: Some(started),
        healthy_since: healthy,
        finished_at: None,
        has_healthcheck: true,
        healthy_seen_at: seen,
    };
    let mut timings = HashMap::from([
        ("web-logging".to_owned(), timing(10, None, None)),
        // Docker's window: a failed probe, then passes from 70 on.
        ("web".to_owned(), timing(12, Some(70), Some(40))),
        ("web-discovery".to_owned(), timing(50, None, None)),
    ]);
    timings.get_mut("web-logging").unwrap().has_healthcheck = false;
    let mut p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert!(p.is_noop(), "{p}");
    // Seen at 40, but web's current run began at 45: that pass was another run's.
    timings.insert("web".into(), timing(45, Some(70), Some(40)));
    let mut p = plan(&expanded, &graph, &obs, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert_eq!(
        p.get("web-discovery").map(|a| a.action),
        Some(ActionKind::Restart),
        "{p}"
    );
}

/// Regression: after dockerd restarted, a `started`-gated sidecar that had
/// to be recreated made the repair restart the service and its discovery,
/// as if Docker had started the service too early at boot.
#[test]
fn a_recreated_sidecar_restarts_the_service() {
    let (expanded, graph) = desired(SET);
    let timing = |started, healthy: Option<i64>| Timing {
        started_at: Some(started),
        healthy_since: healthy,
        finished_at: None,
        has_healthcheck: healthy.is_some(),
        healthy_seen_at: None,
    };
    // Docker started web at 10 (healthy at 20) and discovery at 30; the
    // logging sidecar is gone (removed), or stopped since 5.
    let timings = HashMap::from([
        ("web".to_owned(), timing(10, Some(20))),
        ("web-discovery".to_owned(), timing(30, None)),
    ]);
    let without_logging: Vec<Observed> = all_running(&expanded)
        .into_iter()
        .filter(|o| o.name != "web-logging")
        .collect();
    let mut p = plan(&expanded, &graph, &without_logging, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert_eq!(
        p.to_string(),
        "serviceset shop: 1 to create, 2 unchanged\n  create   web-logging    no such container\n  keep     web            up to date\n  keep     web-discovery  up to date\n"
    );

    let mut stopped = all_running(&expanded);
    let logging = stopped
        .iter_mut()
        .find(|o| o.name == "web-logging")
        .unwrap();
    logging.state = RunState::Exited;
    let mut timings = timings.clone();
    timings.insert("web-logging".into(), timing(5, None));
    let mut p = plan(&expanded, &graph, &stopped, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert_eq!(p.summary(), "1 to start, 2 unchanged", "{p}");
    // Its last run started after web did: web started too early after all.
    timings.insert("web-logging".into(), timing(12, None));
    let mut p = plan(&expanded, &graph, &stopped, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert_eq!(p.summary(), "1 to start, 2 to restart", "{p}");

    // web itself is gone: discovery, which waits for it to be healthy, follows it.
    let without_web: Vec<Observed> = all_running(&expanded)
        .into_iter()
        .filter(|o| o.name != "web")
        .collect();
    let mut p = plan(&expanded, &graph, &without_web, &BTreeMap::new()).unwrap();
    reorder_after_boot(&mut p, &graph, &timings);
    assert_eq!(
        p.get("web-discovery")
            .map(|a| (a.action, a.reason.to_string())),
        Some((
            ActionKind::Restart,
            "started before `web` met its gate".to_owned()
        ))
    );
}
