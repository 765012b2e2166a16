//! The daemon's live model against the real engine: after a storm of
//! changes its answer equals a fresh list + inspect; health history
//! survives a restart of the daemon; `status` falls back to Docker
//! when no daemon answers.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use stack::*;
use support::*;

fn status_json(s: &Stack, args: &[&str]) -> Value {
    let mut all = vec!["status", "--json"];
    all.extend(args);
    let out = s.telefig(&all);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The daemon's answer for this stack, keyed by name, in the fields Docker also knows.
fn from_daemon(s: &Stack) -> Option<Value> {
    let status = status_json(s, &[]);
    if status["source"] != "daemon" {
        return None;
    }
    let mut out = serde_json::Map::new();
    for c in status["containers"].as_array()? {
        out.insert(
            c["name"].as_str()?.to_owned(),
            json!({
                "state": c["state"],
                "health": c["health"],
                "restart_count": c["restart_count"],
                "exit_code": c["exit_code"],
            }),
        );
    }
    Some(Value::Object(out))
}

/// Docker's truth for this stack: one list, then inspect each.
fn from_docker(s: &Stack) -> Value {
    let label = format!("telefig.serviceset={}", s.id());
    let mut out = serde_json::Map::new();
    for id in container_ids_by_label(&label) {
        let Some(c) = try_inspect(&id) else { continue };
        let state = &c["State"];
        let running = state["Status"] == "running";
        out.insert(
            c["Name"]
                .as_str()
                .unwrap()
                .trim_start_matches('/')
                .to_owned(),
            json!({
                "state": state["Status"],
                "health": if running { state["Health"]["Status"].clone() } else { Value::Null },
                "restart_count": c["RestartCount"],
                "exit_code": if running { Value::Null } else { state["ExitCode"].clone() },
            }),
        );
    }
    Value::Object(out)
}

/// Poll until the daemon's model equals Docker's truth (both read back to
/// back, twice in a row), or fail showing both.
fn assert_model_settles_to_truth(s: &Stack, within: Duration) {
    let mut last = (Value::Null, Value::Null);
    let mut agreed = 0;
    let settled = wait_until(within, || {
        let daemon = from_daemon(s).unwrap_or(Value::Null);
        let docker = from_docker(s);
        agreed = if daemon == docker { agreed + 1 } else { 0 };
        last = (daemon, docker);
        agreed >= 2
    });
    assert!(
        settled,
        "daemon model != docker truth\ndaemon: {:#}\ndocker: {:#}\n{}",
        last.0,
        last.1,
        std::fs::read_to_string(s.dir.join("daemon.log")).unwrap_or_default()
    );
}

#[test]
fn the_daemons_model_equals_dockers_truth_after_a_storm_of_changes() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    // Stopped on purpose: the daemon's drift repair stays out of the storm.
    assert_exit(&s.telefig(&["stop"]), 0);
    assert_exit(&s.start(&[]), 0);
    let _daemon = s.daemon(&[], &[]);
    assert_model_settles_to_truth(&s, Duration::from_secs(30));

    let web = s.web();
    let proxy = s.name("proxy");
    let metrics = s.name("metrics");
    let logging = s.name("logging");
    // Restarts by hand (reset the count), crashes the policy restarts
    // (count it), health flips, a stop and a removal.
    for _ in 0..3 {
        docker_ok(&["restart", "-t", "1", &proxy]);
    }
    for _ in 0..3 {
        docker_ok(&["kill", &metrics]);
        assert!(wait_until(Duration::from_secs(20), || running(&metrics)));
    }
    docker_ok(&["exec", &web, "rm", "/ready"]);
    assert!(wait_until(Duration::from_secs(20), || health(&web) == "unhealthy"));
    docker_ok(&["exec", &web, "touch", "/ready"]);
    assert!(wait_until(Duration::from_secs(20), || health(&web) == "healthy"));
    docker_ok(&["stop", "-t", "1", &logging]);
    docker_ok(&["rm", "-f", &s.name("discovery")]);
    assert_model_settles_to_truth(&s, Duration::from_secs(30));
}

#[test]
fn health_history_survives_a_daemon_restart_and_status_falls_back_without_it() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let web = s.web();
    let daemon = s.daemon(&[], &[]);
    let probes = |s: &Stack| -> Vec<Value> {
        let one = status_json(s, &[&web]);
        one["probes"].as_array().cloned().unwrap_or_default()
    };
    // Probes every 200 ms: a dozen within seconds, more than Docker's 5.
    assert!(
        wait_until(Duration::from_secs(30), || probes(&s).len() >= 12),
        "{:#}",
        status_json(&s, &[&web])
    );
    let one = status_json(&s, &[&web]);
    assert_eq!(one["source"], "daemon");
    assert_eq!(one["container"]["restart_count"], 0);
    drop(daemon);

    // No daemon: Docker answers, and the stored history is still shown.
    let status = status_json(&s, &[]);
    assert_eq!(status["source"], "docker");
    assert_eq!(status["containers"].as_array().map(Vec::len), Some(5));
    let stored = probes(&s);
    assert!(stored.len() >= 12, "{stored:#?}");

    let _daemon = s.daemon(&[], &[]);
    assert!(wait_until(Duration::from_secs(30), || {
        let now = probes(&s);
        status_json(&s, &[&web])["source"] == "daemon"
            && now.len() > stored.len().min(49)
            && now.contains(&stored[0])
    }));
    let all = probes(&s);
    assert!(all.len() <= 50, "bounded: {}", all.len());
}

/// A started stack and its daemon, once `status` answers from the daemon.
fn started_with_a_daemon() -> (Stack, Daemon) {
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let daemon = s.daemon(&[], &[]);
    assert!(wait_until(Duration::from_secs(30), || {
        status_json(&s, &[])["source"] == "daemon"
    }));
    (s, daemon)
}

fn running(name: &str) -> bool {
    try_inspect(name).is_some_and(|c| c["State"]["Running"] == true)
}

fn health(name: &str) -> String {
    try_inspect(name)
        .and_then(|c| c["State"]["Health"]["Status"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `telefig events --json` follows the daemon: a restart by hand shows as
/// died, stopped, started, in that order, for that container only.
#[test]
fn events_stream_a_restart_in_order() {
    if !require_docker() {
        return;
    }
    let (s, _daemon) = started_with_a_daemon();
    let mut events = s.follow_events();
    let proxy = s.name("proxy");
    // The subscription is made before the restart: retry the restart until seen.
    let mut seen: Vec<String> = Vec::new();
    let found = wait_until(Duration::from_secs(30), || {
        docker_ok(&["restart", "-t", "1", &proxy]);
        events
            .next_where(Duration::from_secs(3), |ev| {
                assert_eq!(ev["serviceset"], s.id(), "--name narrows: {ev}");
                if ev["container"] == proxy.as_str() {
                    seen.push(ev["event"].as_str().unwrap().to_owned());
                }
                seen.join(",").contains("died,stopped,started")
            })
            .is_some()
    });
    drop(events);
    assert!(found, "{seen:?}");
}

/// `telefig events --json` shows a deploy's own events, in order, while a
/// `start` runs: deploy started, created, gate passed, deploy finished.
#[test]
fn events_show_a_deploys_steps_in_order() {
    if !require_docker() {
        return;
    }
    let (s, _daemon) = started_with_a_daemon();
    let mut events = s.follow_events();
    let web = s.web();
    // The subscription may come after a deploy began: deploy again (with
    // another change) until one is seen whole.
    let mut seen: Vec<String> = Vec::new();
    let mut whole = false;
    for attempt in 2..5 {
        s.write_serviceset(&format!("A={attempt}"), true);
        assert_exit(&s.start(&[]), 0);
        seen.clear();
        events.next_where(Duration::from_secs(10), |ev| {
            if ev["deploy"].is_null() {
                return false; // Docker's own events
            }
            assert_eq!(ev["serviceset"], s.id(), "{ev}");
            assert_eq!(ev["operation"], "start", "{ev}");
            let what = match ev["container"].as_str() {
                Some("") | None => ev["event"].as_str().unwrap().to_owned(),
                Some(c) => format!("{} {c}", ev["event"].as_str().unwrap()),
            };
            seen.push(match ev["result"].as_str() {
                Some(r) => format!("{what} {r}"),
                None => what,
            });
            ev["event"] == "deploy-finished"
        });
        if seen.first().map(String::as_str) == Some("deploy-started") {
            whole = true;
            break;
        }
    }
    drop(events);
    assert!(whole, "no deploy seen from its start: {seen:?}");
    eprintln!("deploy events: {seen:?}");
    let at = |what: &str| {
        seen.iter()
            .position(|e| e == what)
            .unwrap_or_else(|| panic!("no `{what}` in {seen:?}"))
    };
    let created = at(&format!("created {web}"));
    let passed = at(&format!("gate-passed {web}"));
    let finished = at("deploy-finished succeeded");
    assert!(
        0 < created && created < passed && passed < finished,
        "{seen:?}"
    );
    assert_eq!(finished, seen.len() - 1, "{seen:?}");

    // A no-op start of the same deploy is no deploy: the log is untouched.
    let log = s.dir.join(format!("state/deploys/{}.json", s.id()));
    let before = std::fs::read_to_string(&log).unwrap();
    assert_exit(&s.start(&[]), 0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), before);
}
