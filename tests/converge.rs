//! `start`, `stop`, `down`, `restart`, `status` against the real Docker
//! Engine (issue: converge a real engine). Every object is labelled with the
//! test's run id and removed by label; container names carry the run id.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::time::Duration;

use serde_json::Value;
use stack::*;
use support::events::EventFollower;
use support::*;

#[test]
fn cold_start_creates_the_card_service_in_order() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    // When web first turned healthy, from Docker's event (its health log
    // keeps only the last 5 probes, 1 s of them: too few on a busy host).
    let before = now_nanos();
    let mut health = EventFollower::spawn(docker_events_since(
        before,
        &[("container", &s.web()), ("event", "health_status")],
    ));
    let out = s.start(&["-e", "BUILD_COMMIT=abc1234", "-e", "DEPLOY_ID=d-1"]);
    assert_exit(&out, 0);
    for name in s.all() {
        let c = inspect(&name);
        assert_eq!(c["HostConfig"]["NetworkMode"], "host", "{name}");
        assert_eq!(
            c["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped",
            "{name}"
        );
        let labels = &c["Config"]["Labels"];
        assert_eq!(labels["telefig.serviceset"], s.id());
        assert_eq!(labels["telefig.container"], name.as_str());
        assert_eq!(labels["telefig.commit"], "abc1234");
        assert_eq!(labels["telefig.deploy-id"], "d-1");
        assert!(
            labels["telefig.config-hash"]
                .as_str()
                .is_some_and(|h| !h.is_empty())
        );
        if name == s.web() {
            assert_eq!(labels["telefig.role"], "main");
            assert_eq!(c["Config"]["Image"], "tf.local/web:v1");
        } else {
            assert_eq!(labels["telefig.role"], "sidecar");
            assert_eq!(labels["telefig.owner"], s.web().as_str());
        }
    }
    // Order, from Docker's own StartedAt times.
    let web = started_nanos(&s.web());
    for kind in ["logging", "metrics", "proxy"] {
        assert!(
            started_nanos(&s.name(kind)) < web,
            "{kind} starts before web"
        );
    }
    // web turns healthy only after `sleep 1`; discovery starts after that.
    let discovery = started_nanos(&s.name("discovery"));
    let web_ready = health
        .next_where(Duration::from_secs(30), |e| {
            e["Action"] == "health_status: healthy"
        })
        .expect("Docker said web turned healthy")["timeNano"]
        .as_i64()
        .expect("timeNano");
    assert!(
        discovery > web_ready,
        "discovery ({discovery}) after web was healthy ({web_ready})"
    );
    // Secrets never reach telefig's output.
    assert!(!text(&out).contains("hunter2"));
}

#[test]
fn second_start_changes_nothing_and_says_so() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let before = s.fingerprint();
    let since = docker_ok(&["system", "info", "--format", "{{.SystemTime}}"]);
    let out = s.start(&[]);
    assert_said(&out, 0, "unchanged");
    assert_eq!(s.fingerprint(), before);
    // Zero mutations: no container event of this serviceset since the second start began.
    let until = docker_ok(&["system", "info", "--format", "{{.SystemTime}}"]);
    let events = docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        &format!("label=telefig.serviceset={}", s.id()),
        "--format",
        "{{.Action}}",
    ]);
    // Docker's own health probes show up as exec events; nothing else may.
    let mutations: Vec<&str> = events.lines().filter(|a| !a.starts_with("exec_")).collect();
    assert!(
        mutations.is_empty(),
        "events during a no-op start: {mutations:?}"
    );
}

#[test]
fn changing_one_env_var_recreates_that_container_and_regates_discovery() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let before = s.fingerprint();
    s.write_serviceset("A=2", true);
    let plan = s.telefig(&["plan"]);
    assert_exit(&plan, 0);
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan_text.contains("config changed: Env"), "{plan_text}");
    assert!(!plan_text.contains("hunter2"), "{plan_text}");
    let started = s.start(&["--json"]);
    assert_exit(&started, 0);
    // `--json` consumers read each reason as text, its code beside it.
    let out: Value = serde_json::from_slice(&started.stdout).unwrap();
    let report = |name: &str| {
        out["report"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["container"] == name)
            .unwrap_or_else(|| panic!("{name} not in {out}"))
            .clone()
    };
    let web = report(&s.web());
    assert_eq!(web["reason_code"], "config_changed", "{web}");
    let reason = web["reason"].as_str().unwrap();
    assert!(reason.starts_with("config changed: "), "{web}");
    let discovery = report(&s.name("discovery"));
    assert_eq!(discovery["action"], "restart", "{discovery}");
    assert_eq!(
        discovery["reason_code"], "dependency_recreated",
        "{discovery}"
    );
    let after = s.fingerprint();
    assert_ne!(after[0].0, before[0].0, "web recreated");
    for i in 1..4 {
        assert_eq!(after[i], before[i], "sidecar {i} untouched");
    }
    assert_eq!(after[4].0, before[4].0, "discovery kept");
    assert!(
        nanos(&after[4].1) > nanos(&before[4].1),
        "discovery restarted"
    );
    assert!(
        nanos(&after[4].1) > healthy_since(&s.web()).unwrap(),
        "after web passed again"
    );
    assert_eq!(
        s.container_names(),
        s.wanted_names(),
        "no version left aside"
    );
}

#[test]
fn failing_new_version_rolls_back_to_the_previous_container() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let before = s.fingerprint();
    s.write_serviceset("A=1", false);
    let out = s.start(&["-e", "WEB_VERSION=v2"]);
    assert_exit(&out, 1);
    let summary = last_stderr_line(&out);
    assert!(
        summary.contains(&s.web()) && summary.contains("unhealthy"),
        "{summary}"
    );
    let web = inspect(&s.web());
    assert_eq!(
        web["Id"].as_str().unwrap(),
        before[0].0,
        "previous web is back"
    );
    assert_eq!(web["State"]["Running"], true);
    assert_eq!(web["Config"]["Image"], "tf.local/web:v1");
    assert_eq!(
        s.container_names(),
        s.wanted_names(),
        "the failed version is gone"
    );
    // The discovery sidecar, stopped for the recreate, runs again.
    assert_eq!(inspect(&s.name("discovery"))["State"]["Running"], true);
}

#[test]
fn stop_runs_in_reverse_order_and_down_removes_everything_but_foreign_containers() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    // A foreign container and another serviceset's, both carrying the test label.
    let foreign = format!("{}-foreign", s.id());
    let other = format!("{}-other", s.id());
    run_foreign(s.id(), &foreign, &[]);
    run_foreign(s.id(), &other, &["telefig.serviceset=someone-else"]);
    let foreign_id = inspect(&foreign)["Id"].clone();
    let other_id = inspect(&other)["Id"].clone();

    assert_exit(&s.start(&[]), 0);
    assert_exit(&s.telefig(&["stop"]), 0);
    let finished = |n: &str| nanos(inspect(n)["State"]["FinishedAt"].as_str().unwrap());
    assert!(finished(&s.name("discovery")) <= finished(&s.web()));
    for kind in ["logging", "metrics", "proxy"] {
        assert!(
            finished(&s.web()) <= finished(&s.name(kind)),
            "{kind} stops after web"
        );
    }
    assert_exit(&s.telefig(&["down"]), 0);
    assert!(container_ids_by_label(&format!("telefig.serviceset={}", s.id())).is_empty());
    for (name, id) in [(&foreign, foreign_id), (&other, other_id)] {
        let c = inspect(name);
        assert_eq!(c["Id"], id, "{name} untouched");
        assert_eq!(c["State"]["Running"], true, "{name} still running");
    }
}

#[test]
fn a_name_held_by_a_foreign_container_is_an_error_before_any_change() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    run_foreign(s.id(), &s.web(), &[]);
    let out = s.start(&[]);
    assert_exit(&out, 1);
    assert!(
        last_stderr_line(&out).contains("did not create"),
        "{}",
        text(&out)
    );
    assert!(!exists(&s.name("logging")), "nothing was created");
}

#[test]
fn status_reports_each_container_and_exits_3_when_one_is_down() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let out = telefig()
        .args(["status", "--json", "--name", s.id()])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["ok"], true);
    let containers = status["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 5);
    let web = containers
        .iter()
        .find(|c| c["name"] == s.web().as_str())
        .unwrap();
    assert_eq!(web["serviceset"], s.id());
    assert_eq!(web["role"], "main");
    assert_eq!(web["image"], "tf.local/web:v1");
    assert_eq!(web["state"], "running");
    assert_eq!(web["health"], "healthy");
    // No daemon answers: one list call, no inspect of a healthy container,
    // so its restart count is unknown (the daemon counts restarts).
    assert_eq!(status["source"], "docker");
    assert!(web["restart_count"].is_null(), "{web}");
    assert!(web["uptime_seconds"].is_u64());
    assert!(web["exit_code"].is_null());

    docker_ok(&["stop", "-t", "1", &s.name("metrics")]);
    let out = telefig()
        .args(["status", "--json", "--name", s.id()])
        .output()
        .unwrap();
    assert_exit(&out, 3);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let metrics = status["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == s.name("metrics").as_str())
        .unwrap()
        .clone();
    assert_eq!(metrics["state"], "exited");
    assert_eq!(metrics["exit_code"], 0);
    assert_eq!(
        metrics["restart_count"], 0,
        "a stopped container is inspected"
    );
    assert_eq!(metrics["ok"], false);
}

#[test]
fn restart_of_web_restarts_discovery_after_it() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let before = s.fingerprint();
    let out = s.telefig(&["restart", &s.web()]);
    assert_exit(&out, 0);
    let after = s.fingerprint();
    assert_eq!(after[0].0, before[0].0, "same container");
    assert!(nanos(&after[0].1) > nanos(&before[0].1), "web restarted");
    assert!(
        nanos(&after[4].1) > nanos(&after[0].1),
        "discovery restarted after web"
    );
    for i in 1..4 {
        assert_eq!(after[i], before[i], "sidecar {i} untouched");
    }
}

#[test]
fn sigterm_during_start_leaves_nothing_half_created_and_a_rerun_converges() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let child = s
        .command(&["start"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // web needs ~1 s to turn healthy: interrupt while its gate is pending.
    assert!(
        wait_until(Duration::from_secs(20), || exists(&s.web())),
        "web was created"
    );
    unsafe_kill(child.id(), 15);
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted"),
        "{}",
        text(&out)
    );
    for id in container_ids_by_label(&format!("telefig.serviceset={}", s.id())) {
        let state = inspect(&id)["State"]["Status"].as_str().unwrap().to_owned();
        assert_ne!(
            state, "created",
            "a container was created but never started"
        );
    }
    assert_exit(&s.start(&[]), 0);
    assert_eq!(
        container_ids_by_label(&format!("telefig.serviceset={}", s.id())).len(),
        5
    );
}

fn unsafe_kill(pid: u32, signal: i32) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn secret_values_never_appear_in_telefig_output() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let mut outputs = vec![
        s.start(&[]),
        s.telefig(&["render"]),
        s.telefig(&["plan"]),
        s.telefig(&["plan", "--json"]),
    ];
    outputs.push(
        telefig()
            .args(["status", "--json", "--name", s.id()])
            .output()
            .unwrap(),
    );
    // A failing deploy: its error summary includes health output and log lines.
    s.write_serviceset("A=9", false);
    outputs.push(s.start(&[]));
    let render = String::from_utf8_lossy(&outputs[1].stdout).into_owned();
    assert!(render.contains("DB_PASSWORD=<masked>"), "{render}");
    for out in &outputs {
        assert!(!text(out).contains("hunter2"), "{}", text(out));
    }
    // The record on disk keeps digests of secret values only.
    s.write_serviceset("A=9", true);
    let out = s.start(&["-e", "API_TOKEN=t0ps3cret"]);
    assert_exit(&out, 0);
    assert!(!text(&out).contains("t0ps3cret"));
    let record = std::fs::read_to_string(
        s.dir
            .join("state/servicesets")
            .join(format!("{}.json", s.id())),
    )
    .unwrap_or_default();
    assert!(
        record.contains("API_TOKEN=sha256:"),
        "the -e values are kept as digests"
    );
    assert!(
        !record.contains("t0ps3cret"),
        "the -e value is masked in the record"
    );
}
