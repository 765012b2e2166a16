//! Updating in place (`docker update`) against the real Docker Engine: a
//! change only to what Docker changes on a running container keeps the
//! container, and a change Docker refuses fails the start and puts the
//! previous settings back. Every object carries the test's run id label.

#[path = "support/stack.rs"]
mod stack;
mod support;

use stack::*;
use support::*;

/// The serviceset's container events (health probes aside) between two
/// Docker clock readings.
fn mutations(serviceset: &str, since: &str) -> Vec<String> {
    let until = docker_ok(&["system", "info", "--format", "{{.SystemTime}}"]);
    docker_ok(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        &format!("label=telefig.serviceset={serviceset}"),
        "--format",
        "{{.Action}}",
    ])
    .lines()
    .filter(|a| !a.starts_with("exec_"))
    .map(str::to_owned)
    .collect()
}

fn memory_of(name: &str) -> i64 {
    inspect(name)["HostConfig"]["Memory"].as_i64().unwrap()
}

#[test]
fn a_mem_limit_change_keeps_the_container_and_docker_shows_the_new_limit() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let script = "sleep 1; touch /ready; while :; do sleep 1 & wait; done";
    s.write_web(script, "A=1", "5s", "    mem_limit: 64m\n");
    assert_exit(&s.start(&[]), 0);
    assert_eq!(memory_of(&s.web()), 64 << 20);
    let before = s.fingerprint();

    s.write_web(script, "A=1", "5s", "    mem_limit: 128m\n");
    let plan = s.telefig(&["plan"]);
    assert_exit(&plan, 0);
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan_text.contains("1 to update in place")
            && plan_text.contains("changed in place, no restart: HostConfig.Memory"),
        "{plan_text}"
    );
    let since = docker_ok(&["system", "info", "--format", "{{.SystemTime}}"]);
    let out = s.start(&["--json"]);
    assert_exit(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web = report["report"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["container"] == s.web().as_str())
        .unwrap();
    assert_eq!(web["action"], "update", "{web}");
    assert_eq!(web["outcome"], "updated", "{web}");
    assert_eq!(web["reason_code"], "updatable_changed", "{web}");
    assert_eq!(memory_of(&s.web()), 128 << 20);
    assert_eq!(s.fingerprint(), before, "same ids, none restarted");
    assert_eq!(mutations(s.id(), &since), ["update"]);

    // The label still names the create-time body; the limit read back says
    // the container already is the spec: a no-op, and `plan` says so.
    let since = docker_ok(&["system", "info", "--format", "{{.SystemTime}}"]);
    let again = s.start(&[]);
    assert_exit(&again, 0);
    assert!(text(&again).contains("5 unchanged"), "{}", text(&again));
    assert!(
        mutations(s.id(), &since).is_empty(),
        "a second start changes nothing"
    );
    let plan = s.telefig(&["plan"]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("5 unchanged"),
        "{}",
        text(&plan)
    );
    assert_eq!(s.fingerprint(), before);
}

/// Two containers updated in order; Docker refuses the second's CPUs (more
/// than the host has): the start fails and the first gets its limit back.
#[test]
fn a_change_docker_refuses_fails_the_start_and_puts_the_previous_settings_back() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let (a, b) = (format!("{}-a", s.id()), format!("{}-b", s.id()));
    let image = "tf.local/web";
    let write = |a_mem: &str, b_cpus: &str| {
        let text = format!(
            r#"{a}:
  docker: {{image: {image}, version: v1, command: [sleep, "600"], mem_limit: {a_mem}, stop_grace_period: 1s}}
{b}:
  docker: {{image: {image}, version: v1, command: [sleep, "600"], cpus: {b_cpus}, stop_grace_period: 1s}}
  depends_on: [{a}]
"#
        );
        std::fs::write(s.dir.join("serviceset.conf"), text).unwrap();
    };
    write("64m", "0.5");
    assert_exit(&s.start(&[]), 0);
    let ids = [&a, &b].map(|n| inspect(n)["Id"].as_str().unwrap().to_owned());

    write("128m", "512");
    let out = s.start(&[]);
    assert_exit(&out, 1);
    let last = last_stderr_line(&out);
    assert!(
        last.contains(&b) && last.contains("update"),
        "the last line names the container and the step: {last}"
    );
    assert!(
        text(&out).contains(&format!("rolled back {a}")),
        "{}",
        text(&out)
    );
    assert_eq!(memory_of(&a), 64 << 20, "the previous limit is back");
    assert_eq!(inspect(&b)["HostConfig"]["NanoCpus"], 500_000_000);
    for (name, id) in [&a, &b].iter().zip(&ids) {
        let c = inspect(name);
        assert_eq!(c["Id"].as_str().unwrap(), id, "{name} kept");
        assert_eq!(c["State"]["Running"], true, "{name} still running");
    }
}
