//! `telefig daemon` against the real engine: boot repair with systemd's
//! notify protocol, drift repair (streamed after its cause), re-gating
//! after a dependency restarts, cron, and a stopped serviceset left alone.

#[path = "support/stack.rs"]
mod stack;
mod support;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use stack::*;
use support::*;

/// A `NOTIFY_SOCKET` the test reads, as systemd would.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn new(dir: &std::path::Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket { socket, path }
    }

    /// Messages received until `until` is seen or `timeout` passes.
    fn read_until(&self, until: &str, timeout: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg == until;
                got.push(msg);
                if done {
                    break;
                }
            }
        }
        got
    }
}

/// `telefig daemon` on `s` that tells `notify` what systemd would hear,
/// with `extra` arguments and environment (a failpoint).
fn spawn_daemon(s: &Stack, notify: &NotifySocket, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
    let path = notify.path.to_str().unwrap();
    let mut all = vec![("NOTIFY_SOCKET", path)];
    all.extend(env.iter().copied());
    s.daemon(extra, &all)
}

/// [`spawn_daemon`], once the daemon has said READY=1.
fn ready_daemon(s: &Stack, extra: &[&str], env: &[(&str, &str)]) -> (NotifySocket, Daemon) {
    let notify = NotifySocket::new(&s.dir);
    let daemon = spawn_daemon(s, &notify, extra, env);
    let messages = notify.read_until("READY=1", Duration::from_secs(30));
    assert!(
        messages.contains(&"READY=1".to_owned()),
        "{messages:?}\n{}",
        s.daemon_log()
    );
    (notify, daemon)
}

fn running(name: &str) -> bool {
    try_inspect(name).is_some_and(|c| c["State"]["Running"] == true)
}

#[test]
fn boot_repair_restarts_a_dependent_docker_started_too_early_then_says_ready() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    // A reboot, as Docker does it: everything starts at once, in no order.
    let mut all = s.all();
    docker_ok(
        &["stop", "-t", "1", &all.join(" ")]
            .iter()
            .flat_map(|a| a.split(' '))
            .collect::<Vec<_>>(),
    );
    all.rotate_right(1); // discovery first
    for name in &all {
        docker_ok(&["start", name]);
    }
    let discovery_before = started_nanos(&s.name("discovery"));
    assert!(
        discovery_before < healthy_since(&s.web()).unwrap_or(i64::MAX),
        "the setup starts discovery too early"
    );

    let notify = NotifySocket::new(&s.dir);
    let out = s
        .daemon_once()
        .env("NOTIFY_SOCKET", &notify.path)
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let messages = notify.read_until("STOPPING=1", Duration::from_secs(2));
    let ready = messages
        .iter()
        .position(|m| m == "READY=1")
        .expect("READY=1 sent");
    assert!(
        messages[..ready]
            .iter()
            .any(|m| m.starts_with("STATUS=boot repair")),
        "{messages:?}"
    );

    let discovery_after = started_nanos(&s.name("discovery"));
    assert!(
        discovery_after > discovery_before,
        "discovery was restarted:\n{}",
        text(&out)
    );
    assert!(
        discovery_after > healthy_since(&s.web()).unwrap(),
        "after web was healthy"
    );
    assert!(running(&s.name("discovery")));
}

/// Regression: the repair watcher reads Docker's events on a subscription
/// of its own, so a repair's events (read from the deploy log) reached
/// `telefig events` before the live model had read the Docker event that
/// caused the repair: the cure shown before the disease. A test build
/// reads Docker's stream late here (2 s before each event of the broken
/// container, as on a loaded host); Docker's first event of the removal
/// must still come before every event of the repair that brings it back.
#[test]
fn a_repair_streams_after_the_docker_event_that_caused_it() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let logging = s.name("logging");
    let point = format!("before:live-event:{logging}");
    let _daemon = ready_daemon(&s, &[], &[("TELEFIG_FAILPOINT_DELAY", &point)]);
    let mut events = s.follow_events();
    // Remove it until the follower sees Docker's `removed` (it may have
    // subscribed late); each time, once the last removal is repaired.
    let mut round = 0;
    let seen_removed = wait_until(Duration::from_secs(60), || {
        if !running(&logging) {
            return false;
        }
        round = events.seen().len();
        docker_ok(&["rm", "-f", &logging]);
        events
            .next_where(Duration::from_secs(15), |e| {
                e["container"] == logging.as_str() && e["event"] == "removed"
            })
            .is_some()
    });
    assert!(seen_removed, "{}\n{}", events.summary(), s.daemon_log());
    // Docker's first event of the removal (`died`, then `removed`): the
    // repair answers it, or one after it.
    let (broke_at, repaired) =
        events.break_and_repair(&logging, "removed", round, Duration::from_secs(30));
    let repaired = repaired.unwrap_or_else(|| {
        panic!(
            "no `repaired` for {logging}\n{}\n{}",
            events.summary(),
            s.daemon_log()
        )
    });
    let log = s.daemon_log();
    assert!(
        log.contains(&format!("failpoint: waiting 2000 ms at {point}")),
        "the live model read Docker's stream late\n{log}"
    );
    let repair = &repaired["deploy"];
    assert!(repair.is_u64(), "{repaired}");
    let early = events.of_deploy_before(broke_at, repair, s.id());
    assert!(
        early.is_empty(),
        "the repair's events came before Docker's event of the removal: {early:?}\n{}\n{log}",
        events.summary()
    );
    let started = events.seen()[broke_at..]
        .iter()
        .any(|e| e["deploy"] == *repair && e["event"] == "repair-started");
    assert!(started, "the whole repair came after\n{}", events.summary());
}

/// A started stack and its daemon, once the daemon has said READY=1.
fn started_with_a_ready_daemon() -> (Stack, NotifySocket, Daemon) {
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let (notify, daemon) = ready_daemon(&s, &[], &[]);
    (s, notify, daemon)
}

/// A repair looks only at its serviceset's containers and at whoever holds
/// the names it wants: a container telefig did not create that took one of
/// them is left alone and the refusal said, as with a whole-host list.
/// (Docker's refusal of the create, checked again by `name_conflict`,
/// would refuse it too: this guards the outcome, not which check fires.)
#[test]
fn a_repair_leaves_a_foreign_container_holding_a_wanted_name_alone() {
    if !require_docker() {
        return;
    }
    let (s, _notify, _daemon) = started_with_a_ready_daemon();
    // logging's name passes to a container telefig did not create (the
    // daemon ignores the rename: telefig's logging is now named as a
    // version kept aside); then discovery is stopped by hand, and its
    // repair plans the whole serviceset, logging's name included.
    let logging = s.name("logging");
    docker_ok(&["rename", &logging, &format!("{logging}-moved")]);
    let foreign = run_foreign(s.id(), &logging, &[]);
    docker_ok(&["stop", "-t", "1", &s.name("discovery")]);
    let refusal =
        format!("container name `{logging}` is taken by a container telefig did not create");
    assert!(
        wait_until(Duration::from_secs(20), || s
            .daemon_log()
            .contains(&refusal)),
        "{}",
        s.daemon_log()
    );
    let holder = inspect(&logging);
    assert_eq!(holder["Id"].as_str(), Some(foreign.trim()), "{holder}");
    assert_eq!(holder["State"]["Running"], true, "{holder}");
}

#[test]
fn the_running_daemon_repairs_drift_and_regates_discovery() {
    if !require_docker() {
        return;
    }
    let (s, _notify, _daemon) = started_with_a_ready_daemon();

    // A sidecar removed by hand is back within 5 s.
    let logging = s.name("logging");
    docker_ok(&["rm", "-f", &logging]);
    let t = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(5), || running(&logging)),
        "{}",
        s.daemon_log()
    );
    eprintln!("sidecar recreated in {} ms", t.elapsed().as_millis());
    // The drift's log line gives the plan's reason: its text for people,
    // its code for machines.
    let said = |needles: &[&str]| {
        s.daemon_log()
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    };
    assert!(
        said(&[
            "drift: create (no such container)",
            &format!("container={logging}"),
            "reason_code=\"missing\"",
        ]),
        "{}",
        s.daemon_log()
    );

    // A container started by hand under the serviceset's labels, which the
    // record does not have, is an orphan: removed, and its event line says
    // why in text and code.
    let stray = s.name("stray");
    run_foreign(
        s.id(),
        &stray,
        &[
            &format!("telefig.serviceset={}", s.id()),
            &format!("telefig.container={stray}"),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || !exists(&stray)),
        "{}",
        s.daemon_log()
    );
    let removed = format!(
        r#"{{"event":"removed","container":"{stray}","why":"no longer in the serviceset","reason_code":"orphan"}}"#
    );
    assert!(
        wait_until(Duration::from_secs(5), || said(&[
            "drift: remove (no longer in the serviceset)",
            "reason_code=\"orphan\"",
        ]) && said(&[&removed])),
        "{}",
        s.daemon_log()
    );

    // web restarts: discovery goes down with it and comes back once web is healthy.
    let discovery = s.name("discovery");
    let before = started_nanos(&discovery);
    docker_ok(&["restart", "-t", "1", &s.web()]);
    let back = wait_until(Duration::from_secs(20), || {
        running(&discovery) && started_nanos(&discovery) > before
    });
    assert!(back, "discovery came back\n{}", s.daemon_log());
    let web_healthy = healthy_since(&s.web()).unwrap();
    assert!(
        started_nanos(&discovery) > web_healthy,
        "discovery started after web was healthy again"
    );

    // A serviceset stopped on purpose is left stopped: once the daemon has
    // seen the stop's events and settled again, web is still down.
    let settled = || s.daemon_log().matches("idle: events settled").count();
    let idle_now = || {
        s.daemon_log()
            .lines()
            .last()
            .is_some_and(|l| l.contains("idle: events settled"))
    };
    assert!(
        wait_until(Duration::from_secs(20), idle_now),
        "the daemon settles after the repair\n{}",
        s.daemon_log()
    );
    let settled_before = settled();
    assert_exit(&s.telefig(&["stop"]), 0);
    assert!(
        wait_until(Duration::from_secs(20), || settled() > settled_before),
        "the daemon settles after `telefig stop`\n{}",
        s.daemon_log()
    );
    assert!(
        !running(&s.web()),
        "the daemon must not undo `telefig stop`\n{}",
        s.daemon_log()
    );
}

#[test]
fn cron_entries_run_and_their_exit_code_shows_in_status() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    s.add_cron(
        "      - {name: tick, schedule: \"@every 1s\", command: [sh, -c, \"echo tick; exit 3\"]}\n",
    );
    assert_exit(&s.start(&[]), 0);
    let notify = NotifySocket::new(&s.dir);
    let _daemon = spawn_daemon(&s, &notify, &[], &[]);
    let status = || s.status_json();
    let ran = wait_until(Duration::from_secs(15), || {
        status()["cron"][s.id()]["tick"]["exit_code"] == 3
    });
    assert!(ran, "{}\n{}", status(), s.daemon_log());
    let tick = &status()["cron"][s.id()]["tick"];
    assert_eq!(tick["owner"], s.web().as_str());
    assert!(tick["output_tail"].as_str().unwrap().contains("tick"));
}

/// web turns unhealthy and the daemon's first stop of discovery fails (a
/// failpoint in a test build: Docker did not answer). The re-gate is tried
/// again, and discovery stops while web is still unhealthy — rather than
/// staying registered against a dead dependency.
#[test]
fn a_regate_that_fails_once_is_tried_again_and_stops_the_dependent() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    let discovery = s.name("discovery");
    let point = format!("before:stop:{discovery}");
    // A long budget: no restart of web (and its dependents) meanwhile.
    let _daemon = ready_daemon(
        &s,
        &["--unhealthy-budget", "10m"],
        &[("TELEFIG_FAILPOINT_ERROR", &point)],
    );
    assert!(running(&discovery));

    docker_ok(&["exec", &s.web(), "rm", "/ready"]);
    assert!(
        wait_until(Duration::from_secs(20), || !running(&discovery)),
        "discovery was stopped after web turned unhealthy\n{}",
        s.daemon_log()
    );
    // The daemon logs what it stopped once Docker has answered the stop.
    let retried = wait_until(Duration::from_secs(10), || {
        s.daemon_log().contains("went down: stopped")
    });
    let log = s.daemon_log();
    assert!(
        log.contains(&format!("failpoint: failing once at {point}")),
        "the first stop failed\n{log}"
    );
    assert!(
        retried && log.contains("failed (attempt 1 of 4)"),
        "the failed re-gate was retried\n{log}"
    );
    assert_eq!(
        inspect(&s.web())["State"]["Health"]["Status"],
        "unhealthy",
        "web is still unhealthy: the retry, not a repair, stopped discovery\n{log}"
    );
}

/// Regression: after its boot repair restarted web and discovery in order,
/// the daemon read that repair's own stop/die events as drift and stopped
/// discovery again right after READY (a deregister/register flap).
#[test]
fn the_daemon_undoes_its_own_boot_repair() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    assert_exit(&s.start(&[]), 0);
    // A reboot in the worst order: discovery, then web, then its sidecars.
    let all = s.all();
    let mut args = vec!["stop", "-t", "1"];
    args.extend(all.iter().map(String::as_str));
    docker_ok(&args);
    let discovery = s.name("discovery");
    for name in [&discovery, &s.web()]
        .into_iter()
        .chain(["logging", "metrics", "proxy"].map(|k| s.name(k)).iter())
    {
        docker_ok(&["start", name]);
    }

    let _daemon = ready_daemon(&s, &[], &[]);
    assert!(
        s.daemon_log().contains("boot repair: 2 to restart"),
        "the boot repair restarted web and discovery\n{}",
        s.daemon_log()
    );
    let repaired = started_nanos(&discovery);
    let idle = wait_until(Duration::from_secs(20), || {
        s.daemon_log().contains("idle: events settled")
    });
    assert!(
        !s.daemon_log().contains("went down"),
        "the daemon stopped what its own repair had just started\n{}",
        s.daemon_log()
    );
    assert_eq!(
        started_nanos(&discovery),
        repaired,
        "discovery was not restarted again\n{}",
        s.daemon_log()
    );
    assert!(idle, "the daemon settles after READY\n{}", s.daemon_log());
    assert!(running(&discovery));
}

/// Real files key `cron:` by job name and give one shell line (quotes,
/// redirections) and a host user; the daemon runs each through `/bin/sh -c`
/// as that user, on a schedule read by croner (six fields: seconds first).
#[test]
fn map_form_cron_runs_shell_lines_as_their_user() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    s.add_cron(concat!(
        "      Greeter:\n",
        "        schedule: \"* * * * * *\"\n",
        "        command: 'echo \"hello, $(id -un)\" 2>&1 | tr a-z A-Z; echo to-stderr >&2; exit 4'\n",
        "        user: nobody\n",
        "      Rooted: {schedule: \"*/1 * * * * *\", command: echo \"it's $(id -u)\" > /dev/stdout, user: root, tz: UTC}\n",
    ));
    assert_exit(&s.start(&[]), 0);
    let notify = NotifySocket::new(&s.dir);
    let _daemon = spawn_daemon(&s, &notify, &[], &[]);
    let status = || s.status_json();
    let ran = wait_until(Duration::from_secs(20), || {
        let st = status();
        st["cron"][s.id()]["Greeter"]["exit_code"] == 4
            && st["cron"][s.id()]["Rooted"]["exit_code"] == 0
    });
    assert!(ran, "{}\n{}", status(), s.daemon_log());
    let st = status();
    let greeter = st["cron"][s.id()]["Greeter"]["output_tail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(greeter.contains("HELLO, NOBODY"), "{greeter}");
    assert!(greeter.contains("to-stderr"), "{greeter}");
    let rooted = st["cron"][s.id()]["Rooted"]["output_tail"]
        .as_str()
        .unwrap();
    assert!(rooted.contains("it's 0"), "{rooted}");
}

/// A serviceset deployed with another state dir is not this daemon's: its
/// events start no repair, take no lock and leave nothing in this state dir
/// (on a shared host each state dir's daemon minds its own servicesets).
#[test]
fn a_serviceset_of_another_state_dir_is_left_alone() {
    if !require_docker() {
        return;
    }
    let ours = Stack::new();
    let theirs = Stack::new();
    assert_exit(&ours.start(&[]), 0);
    assert_exit(&theirs.start(&[]), 0);
    let _daemon = ready_daemon(&ours, &[], &[]);
    // Ours was deployed in order seconds ago (more probes than Docker's
    // five-entry health log holds): the boot repair has nothing to undo.
    assert!(
        !ours.daemon_log().contains("drift: restart"),
        "the boot repair restarted a container of a serviceset deployed in order\n{}",
        ours.daemon_log()
    );
    let idle_now = |s: &Stack| {
        s.daemon_log()
            .lines()
            .last()
            .is_some_and(|l| l.contains("idle: events settled"))
    };

    // Theirs loses a sidecar first, then ours: by the time ours is repaired
    // and the daemon idle again, every event of theirs has been handled.
    docker_ok(&["rm", "-f", &theirs.name("logging")]);
    docker_ok(&["rm", "-f", &ours.name("logging")]);
    assert!(
        wait_until(Duration::from_secs(10), || running(&ours.name("logging"))),
        "{}",
        ours.daemon_log()
    );
    assert!(
        wait_until(Duration::from_secs(20), || idle_now(&ours)),
        "the daemon settles after the repair\n{}",
        ours.daemon_log()
    );
    let lock = ours
        .dir
        .join("state/locks")
        .join(format!("{}.lock", theirs.id()));
    assert!(
        !lock.exists(),
        "the daemon took a lock for a serviceset it has no record of: {}\n{}",
        lock.display(),
        ours.daemon_log()
    );
    assert!(
        !ours.daemon_log().contains(theirs.id()),
        "the daemon acted on a serviceset of another state dir\n{}",
        ours.daemon_log()
    );
    assert!(
        try_inspect(&theirs.name("logging")).is_none(),
        "theirs is their daemon's to repair"
    );
}
