//! The bake and the evidence of a failure (issue 23, parts 2 and 3)
//! against the real Docker Engine: a version that passes its gates and
//! turns unhealthy 2 s later, with an 8 s bake, is rolled back; the
//! evidence (health probe output, OOM flag, restart count, output lines)
//! is in `start`'s output above its last line, in the deploy log, in
//! `status --name` until the next successful deploy and in `--json`;
//! `history` lists the deploy as rolled back. A version that stays healthy
//! passes its bake; one that dies and is restarted by Docker fails it; a
//! `--timeout` shorter than the bake fails it too.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use stack::*;
use support::*;

/// web healthy after ~1 s, then `then` (after a TERM trap), baked for
/// `bake`; its probes are lax enough for a loaded host (a 5 s timeout),
/// and two failed in a row make it unhealthy.
fn web_that(s: &Stack, then: &str, bake: &str) {
    let web = s.web();
    let script = format!(
        "trap 'exit 0' TERM; echo web up; sleep 1; touch /ready; {then} while :; do sleep 1 & wait; done"
    );
    let beside = format!("  bake_period: {bake}\n");
    Web {
        probes: "interval: 300ms, timeout: 5s, start_period: 20s, retries: 2",
        docker: "    environment: [DB_PASSWORD=hunter2]\n",
        beside: &beside,
        ..s.web_conf(&web, &script)
    }
    .write(&s.dir);
}

/// A stack whose v1 runs (lax probes, no bake); (stack, its fingerprint).
fn running_v1() -> (Stack, Vec<(String, String)>) {
    let s = Stack::new();
    web_that(&s, "", "0");
    assert_exit(&s.start(&[]), 0);
    let before = s.fingerprint();
    (s, before)
}

fn deploy_log(s: &Stack) -> Value {
    let path = s.dir.join(format!("state/deploys/{}.json", s.id()));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn a_version_unhealthy_two_seconds_into_an_eight_second_bake_is_rolled_back() {
    if !require_docker() {
        return;
    }
    let (s, before) = running_v1();
    web_that(
        &s,
        "sleep 2; echo lost the database >&2; echo using $DB_PASSWORD; rm /ready;",
        "8s",
    );
    let began = Instant::now();
    let out = s.start(&["-e", "WEB_VERSION=v2"]);
    let took = began.elapsed();
    assert_exit(&out, 1);
    let all = text(&out);
    let last = last_stderr_line(&out);
    assert!(
        last.contains(&s.web()) && last.contains("turned unhealthy") && last.contains("bake"),
        "the last line names the container and what happened: {all}"
    );
    eprintln!(
        "bake failure: start took {:.1} s; {last}",
        took.as_secs_f64()
    );
    // The evidence, right above the last line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let above = lines[..lines.len() - 1].join("\n");
    let web = s.web();
    for want in [
        format!("{web}: turned unhealthy"),
        format!("{web}: OOM-killed: no, restarts: 0"),
        format!("{web}: output: lost the database"),
        format!("{web}: output: web up"),
        format!("{web}: output: using <masked>"),
    ] {
        assert!(above.contains(&want), "`{want}` above the last line: {all}");
    }
    assert!(!all.contains("hunter2"), "the evidence is masked: {all}");
    assert!(all.contains("baking     "), "{all}");
    // The previous version is back, nothing is left aside.
    let now = inspect(&s.web());
    assert_eq!(now["Id"].as_str().unwrap(), before[0].0, "{all}");
    assert_eq!(now["State"]["Running"], true);
    assert_eq!(s.container_names(), s.wanted_names(), "nothing left aside");

    // The deploy log: the bake's steps and the evidence.
    let log = deploy_log(&s);
    let entry = log["deploys"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(entry["result"], "rolled_back", "{entry}");
    let steps: Vec<&str> = entry["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event"].as_str().unwrap())
        .collect();
    assert!(
        steps.contains(&"bake-started") && steps.contains(&"bake-failed"),
        "{steps:?}"
    );
    assert_eq!(entry["evidence"][0]["container"], s.web().as_str());
    assert_eq!(entry["evidence"][0]["during"], "bake");
    assert!(!entry.to_string().contains("hunter2"), "{entry}");

    // `status --name` shows it, text and JSON.
    let status = s.telefig(&["status"]);
    assert!(
        text(&status).contains(&format!("{web}: turned unhealthy")),
        "{}",
        text(&status)
    );
    assert!(!text(&status).contains("hunter2"));
    let status = s.telefig(&["status", "--json"]);
    let json: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        json["last_failure"]["evidence"][0]["container"],
        s.web().as_str(),
        "{json}"
    );
    // `history` lists it as rolled back.
    let history = telefig()
        .args(["history", s.id(), "--json", "--state-dir"])
        .arg(s.dir.join("state"))
        .output()
        .unwrap();
    let h: Value = serde_json::from_slice(&history.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&history)));
    assert_eq!(
        h["servicesets"][0]["deploys"][0]["result"], "rolled_back",
        "{h}"
    );

    // The next successful deploy clears it from `status`.
    web_that(&s, "", "0");
    assert_exit(&s.start(&["-e", "WEB_VERSION=v2"]), 0);
    let status = s.telefig(&["status"]);
    assert!(
        !text(&status).contains("last failed deploy"),
        "{}",
        text(&status)
    );
}

#[test]
fn a_version_that_stays_healthy_passes_its_bake_and_its_predecessor_goes() {
    if !require_docker() {
        return;
    }
    let (s, _) = running_v1();
    // Longer than the 10 s the executor's cleanup once had after the walk:
    // the previous version is still removed once the bake passed.
    web_that(&s, "", "12s");
    let out = s.start(&["-e", "WEB_VERSION=v2"]);
    assert_exit(&out, 0);
    let all = text(&out);
    assert!(all.contains("baked      after 12."), "{all}");
    assert_eq!(s.container_names(), s.wanted_names(), "{all}");
    let steps: Vec<String> = deploy_log(&s)["deploys"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["event"].as_str().unwrap().to_owned())
        .collect();
    assert!(steps.contains(&"bake-passed".to_owned()), "{steps:?}");
    // `plan` shows what a deploy bakes.
    web_that(&s, "", "3s");
    let plan = s.telefig(&["plan", "-e", "WEB_VERSION=v1"]);
    assert!(
        text(&plan).contains(&format!("bake: {} 3.0 s", s.web())),
        "{}",
        text(&plan)
    );
    assert!(
        text(&plan).contains("drains up to 3.0 s first"),
        "{}",
        text(&plan)
    );
    // `plan` honours `--no-drain`, as `start` does.
    let plan = s.telefig(&["plan", "--no-drain", "-e", "WEB_VERSION=v1"]);
    assert!(
        text(&plan).contains("; not drained (--no-drain)"),
        "{}",
        text(&plan)
    );
}

#[test]
fn a_version_docker_restarts_during_its_bake_is_rolled_back() {
    if !require_docker() {
        return;
    }
    let (s, before) = running_v1();
    // Exits 1 s after it is healthy; its restart policy starts it again.
    web_that(&s, "sleep 1; echo giving up >&2; exit 4;", "8s");
    let out = s.start(&["-e", "WEB_VERSION=v2"]);
    assert_exit(&out, 1);
    let last = last_stderr_line(&out);
    assert!(
        last.contains(&s.web())
            && (last.contains("restarted by Docker") || last.contains("exited with code 4")),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("{}: output: giving up", s.web())),
        "{}",
        text(&out)
    );
    assert_eq!(inspect(&s.web())["Id"].as_str().unwrap(), before[0].0);
    assert_eq!(s.container_names(), s.wanted_names());
}

#[test]
fn a_timeout_shorter_than_the_bake_fails_the_deploy() {
    if !require_docker() {
        return;
    }
    let (s, before) = running_v1();
    web_that(&s, "", "10m");
    let began = Instant::now();
    let out = s.start(&["-e", "WEB_VERSION=v2", "--timeout", "20s"]);
    assert_exit(&out, 1);
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "the timeout covers the bake"
    );
    assert!(
        last_stderr_line(&out).contains("still baking when --timeout ended"),
        "{}",
        text(&out)
    );
    assert_eq!(
        inspect(&s.web())["Id"].as_str().unwrap(),
        before[0].0,
        "{}",
        text(&out)
    );
}
