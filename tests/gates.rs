//! Gate failures of a new version — it exits at once, it is killed for
//! memory — each rolls back to the previous container, exits 1, and the
//! summary names the cause.

#[path = "support/stack.rs"]
mod stack;
mod support;

use stack::*;
use support::*;

/// Deploy v1, then a v2 that fails its gate with `script`; check the rollback.
fn rolls_back(script: &str, docker_extra: &str, cause: &str) {
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let before = s.fingerprint();
    s.write_web(script, "A=2", "5s", docker_extra);
    let out = s.start(&["-e", "WEB_VERSION=v2"]);
    assert_exit(&out, 1);
    let summary = last_stderr_line(&out);
    assert!(
        summary.contains(&s.web()) && summary.contains(cause),
        "{}",
        text(&out)
    );
    let web = inspect(&s.web());
    assert_eq!(
        web["Id"].as_str().unwrap(),
        before[0].0,
        "the previous web is back"
    );
    assert_eq!(web["State"]["Running"], true);
    assert_eq!(s.container_names(), s.wanted_names(), "nothing left aside");
    assert_eq!(inspect(&s.name("discovery"))["State"]["Running"], true);
}

#[test]
fn a_version_that_exits_at_once_rolls_back() {
    if !require_docker() {
        return;
    }
    rolls_back(
        "echo cannot open config >&2; exit 3",
        "",
        "exited with code 3",
    );
}

#[test]
fn a_version_killed_for_memory_rolls_back() {
    if !require_docker() {
        return;
    }
    // A 64 MiB shell variable in a 16 MiB container.
    rolls_back(
        "x=$(head -c 67108864 /dev/urandom | od -A n); sleep 100",
        "    mem_limit: 16m\n",
        "out of memory",
    );
}
