//! Callers that overlap: many `start`s at once, `start` racing `down`, the
//! daemon repairing while a deploy runs. The host lock serializes them; the
//! end state is one consistent set of containers (or none, after `down`).

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::process::Output;

use stack::*;
use support::*;

/// Nothing on stderr but lock waits.
fn only_lock_waits(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .all(|l| l.starts_with("waiting for the lock"))
}

#[test]
fn ten_concurrent_starts_end_with_one_set_of_containers() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let outs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10).map(|_| scope.spawn(|| s.start(&[]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert_exit(out, 0);
        assert!(only_lock_waits(out), "{}", text(out));
    }
    let waited = outs.iter().filter(|o| !o.stderr.is_empty()).count();
    assert!(waited >= 1, "later callers said they waited for the lock");
    assert_eq!(s.container_names(), s.wanted_names());
}

#[test]
fn start_racing_down_ends_all_or_nothing() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    s.write_serviceset("A=2", true);
    let (start, down) = std::thread::scope(|scope| {
        let start = scope.spawn(|| s.start(&[]));
        let down = scope.spawn(|| s.telefig(&["down"]));
        (start.join().unwrap(), down.join().unwrap())
    });
    assert_exit(&start, 0);
    assert_exit(&down, 0);
    assert!(
        only_lock_waits(&start) && only_lock_waits(&down),
        "{}\n{}",
        text(&start),
        text(&down)
    );
    let got = s.container_names();
    assert!(
        got.is_empty() || got == s.wanted_names(),
        "all or nothing, got {got:?}"
    );
    for name in &got {
        assert_eq!(inspect(name)["State"]["Running"], true, "{name}");
    }
}

#[test]
fn the_daemon_repairing_while_a_start_runs_is_serialized() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let mut daemon = telefig()
        .args(["daemon", "--state-dir"])
        .arg(s.dir.join("state"))
        .stderr(std::fs::File::create(s.dir.join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    // Drift for the daemon and a deploy for `start`, at the same moment.
    s.write_serviceset("A=3", true);
    docker_ok(&["rm", "-f", &s.name("metrics")]);
    let out = s.start(&[]);
    assert_exit(&out, 0);
    assert!(only_lock_waits(&out), "{}", text(&out));
    assert!(wait_until(std::time::Duration::from_secs(10), || s
        .container_names()
        == s.wanted_names()));
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        s.container_names(),
        s.wanted_names(),
        "one set, nothing duplicated"
    );
    let again = s.start(&[]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("unchanged"),
        "{}",
        text(&again)
    );
    let _ = std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status();
    let _ = daemon.wait();
}

/// `telefig gc` took no lock: it could untag an image while a `start`
/// was pulling or creating from it. Now it waits for the serviceset's
/// lock like every other operation, says who holds it, and gives up at
/// its `--timeout` with the same message.
#[test]
fn gc_waits_for_the_lock_a_start_holds() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    // A deploy whose web takes a few seconds to be healthy holds the lock.
    s.write_web(
        "sleep 6; touch /ready; while :; do sleep 1 & wait; done",
        "B=2",
        "20s",
        "",
    );
    let deploy = s
        .command(&["start"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = s.dir.join(format!("state/locks/{}.lock", s.id()));
    assert!(
        wait_until(std::time::Duration::from_secs(20), || {
            std::fs::File::open(&lock)
                .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
        }),
        "the start never took the lock"
    );
    let refused = s.telefig(&["gc", "--timeout", "1s"]);
    assert_exit(&refused, 1);
    let summary = last_stderr_line(&refused);
    assert!(
        summary.contains(&format!(
            "timed out after 1s waiting for the lock on serviceset `{}`, held by pid",
            s.id()
        )) && summary.contains("(telefig start, since "),
        "{}",
        text(&refused)
    );
    // Without a bound it waits, says so, and runs once the start is done.
    let waiting = s.command(&["gc"]).output();
    let deploy = deploy.wait_with_output().unwrap();
    assert_exit(&deploy, 0);
    let waiting = waiting.unwrap();
    assert_exit(&waiting, 0);
    assert!(
        String::from_utf8_lossy(&waiting.stderr).contains(&format!(
            "waiting for the lock on serviceset `{}`, held by pid",
            s.id()
        )),
        "{}",
        text(&waiting)
    );
    assert!(
        String::from_utf8_lossy(&waiting.stdout).contains("removed 0 image(s)"),
        "{}",
        text(&waiting)
    );
}
