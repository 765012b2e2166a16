//! dockerd restarting under telefig, on a private dockerd of each test's own
//! (`support/dockerd.rs`), so the machine's engine is never disturbed:
//! live-restore keeps a started serviceset exactly as it was; the daemon
//! reconnects and keeps repairing drift; a `start` whose dockerd restarts
//! under it (while it creates, or while it waits on a gate) ends without
//! hanging or panicking, and a rerun converges; without live-restore the
//! daemon repairs the start order after the restart, as it does at boot.

#[path = "support/dockerd.rs"]
mod dockerd;
mod support;

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use dockerd::{OnPrivate, PrivateDockerd, require_private_dockerd};
use support::*;

/// How long one `telefig start` may take here before the test calls it hung.
const START_LIMIT: Duration = Duration::from_secs(90);

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done";

dockerd::scene_on_private!(
    /// A serviceset `<id>-web` with a `logging` sidecar (before, gate started)
    /// and a `discovery` sidecar (after web is healthy), on a private dockerd
    /// holding the images as `tf.local/…`; its platform file, serviceset file,
    /// state dir and logs in a scratch directory.
    Scene
);

impl Scene {
    /// `ready_after`: seconds before web's healthcheck passes; `start_period`
    /// of its healthcheck.
    fn new(live_restore: bool, ready_after: u32, start_period: &str) -> Scene {
        let engine = PrivateDockerd::start(live_restore);
        engine.import_busybox(&[
            "tf.local/web:v1",
            "tf.local/logging:1",
            "tf.local/discovery:1",
        ]);
        let scene = Scene(OnPrivate::new(engine, "dockerd-faults"));
        let cmd = format!(r#"["sh", "-c", "{LOOP}"]"#);
        let platform = format!(
            "registries: {{primary: \"tf.local\", mirrors: []}}\n{}\
             sidecars:\n  \
               logging: {{image: \"logging:1\", order: before, gate: started, command: {cmd}}}\n  \
               discovery: {{image: \"discovery:1\", order: after_healthy, params: {{port: ~}}, command: {cmd}}}\n",
            platform_labels(&scene.id)
        );
        std::fs::write(scene.dir.join("platform.yaml"), platform).unwrap();
        let web = scene.web();
        let script = format!(
            "trap 'exit 0' TERM; sleep {ready_after}; touch /ready; while :; do sleep 1 & wait; done"
        );
        let probes =
            format!("interval: 200ms, timeout: 1s, start_period: {start_period}, retries: 2");
        Web {
            probes: &probes,
            sidecars: &["logging:", "discovery: {port: 8080}"],
            ..Web::new(&web, &script)
        }
        .write(&scene.dir);
        scene
    }

    /// Every container name the serviceset should have, sorted.
    fn all(&self) -> Vec<String> {
        let mut all = vec![self.web(), self.name("logging"), self.name("discovery")];
        all.sort();
        all
    }

    /// Spawn `cmd` with stdout and stderr going to `<dir>/<what>.out|.err`.
    fn spawn(&self, cmd: Command, what: &str) -> Child {
        spawn_logged(cmd, &self.dir, what)
    }

    /// Wait for a child spawned by [`Scene::spawn`], at most `limit`; on
    /// timeout it is killed and the test fails with what it printed.
    fn finish(&self, child: Child, what: &str, limit: Duration) -> Output {
        finish_logged(child, &self.dir, what, limit).unwrap_or_else(|out| {
            panic!(
                "`telefig {what}` hung for {limit:?}; killed.\n{}\ndockerd log tail:\n{}",
                text(&out),
                self.engine.log_tail(20)
            )
        })
    }

    /// `telefig ARGS`, bounded by [`START_LIMIT`].
    fn run(&self, args: &[&str], what: &str) -> Output {
        let child = self.spawn(self.telefig(args), what);
        self.finish(child, what, START_LIMIT)
    }

    /// (name, Id, StartedAt, Running) of each container.
    fn fingerprint(&self) -> Vec<(String, String, String, bool)> {
        self.all()
            .into_iter()
            .map(|name| {
                let c = self
                    .engine
                    .try_inspect(&name)
                    .unwrap_or_else(|| panic!("{name} exists"));
                (
                    name,
                    c["Id"].as_str().unwrap().to_owned(),
                    c["State"]["StartedAt"].as_str().unwrap().to_owned(),
                    c["State"]["Running"] == true,
                )
            })
            .collect()
    }

    /// `telefig daemon` on this scene's state dir, its stderr in
    /// `daemon.log`, after its boot repair is done (or 10 s).
    fn spawn_daemon(&self) -> Terminate {
        let mut cmd = self.daemon();
        let daemon = Terminate(Some(cmd.spawn().unwrap()));
        let booted = wait_until(Duration::from_secs(10), || {
            self.daemon_log().contains("boot repair done")
        });
        if !booted {
            eprintln!(
                "note: no `boot repair done` in the daemon log after 10 s:\n{}",
                self.daemon_log()
            );
        }
        daemon
    }

    /// Docker's StartedAt of `name`, in ns.
    fn started_nanos(&self, name: &str) -> i64 {
        let c = self.engine.try_inspect(name).unwrap();
        nanos(c["State"]["StartedAt"].as_str().unwrap())
    }

    /// When `name` first turned healthy after `since` (ns), from the
    /// engine's events (Docker keeps only the last 5 probes in its state).
    fn healthy_after(&self, name: &str, since: i64) -> Option<i64> {
        let events = self
            .engine
            .docker_ok(&events_since(since, name, "health_status"));
        events
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, action)| action.ends_with(": healthy"))
            .filter_map(|(t, _)| t.parse::<i64>().ok())
            .find(|t| *t > since)
    }

    fn running(&self, name: &str) -> bool {
        self.engine
            .try_inspect(name)
            .is_some_and(|c| c["State"]["Running"] == true)
    }
}

fn requirements() -> bool {
    require_docker() && require_private_dockerd()
}

#[test]
fn live_restore_keeps_containers_running_across_a_dockerd_restart() {
    if !requirements() {
        return;
    }
    let t = Instant::now();
    let mut s = Scene::new(true, 1, "5s");
    assert_exit(&s.run(&["start"], "start"), 0);
    let before = s.fingerprint();
    assert!(before.iter().all(|c| c.3), "all running: {before:?}");

    let r = Instant::now();
    s.engine.restart();
    eprintln!(
        "private dockerd restarted in {} ms",
        r.elapsed().as_millis()
    );

    let after = s.fingerprint();
    assert_eq!(
        after,
        before,
        "same containers, same StartedAt, still running\ndockerd log tail:\n{}",
        s.engine.log_tail(20)
    );
    // And telefig sees nothing to do.
    let again = s.run(&["start"], "start-2");
    assert_said(&again, 0, "unchanged");
    assert_eq!(s.fingerprint(), before, "a second start changed nothing");

    let status = s.telefig(&["status", "--json"]).output().unwrap();
    assert_exit(&status, 0);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout)
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}):\n{}", text(&status)));
    for name in s.all() {
        assert!(
            json.to_string().contains(&format!("\"{name}\"")),
            "status lists {name}: {json}"
        );
    }
    eprintln!("test took {} ms", t.elapsed().as_millis());
}

/// Also a regression: a `started`-gated sidecar (logging) that the repair
/// after reconnecting had to recreate made it restart web and discovery, as
/// if Docker had started them too early at boot. The daemon is paused while
/// dockerd restarts and logging goes, so its reconnect repair is the one
/// that finds logging missing; the test waits for that repair to finish.
#[test]
fn the_daemon_reconnects_after_dockerd_restarts_and_keeps_repairing() {
    if !requirements() {
        return;
    }
    let t = Instant::now();
    let mut s = Scene::new(true, 1, "5s");
    assert_exit(&s.run(&["start"], "start"), 0);

    let mut daemon = s.spawn_daemon();
    let untouched = [s.web(), s.name("discovery")];
    let before: Vec<i64> = untouched.iter().map(|n| s.started_nanos(n)).collect();

    let logging = s.name("logging");
    let old_id = s
        .engine
        .docker_ok(&["inspect", "--format", "{{.Id}}", &logging]);
    daemon.signal("STOP");
    s.engine.restart();
    s.engine.docker_ok(&["rm", "-f", &logging]);
    let removed = Instant::now();
    daemon.signal("CONT");
    let repaired = |log: &str| {
        log.split_once("reconnected to Docker")
            .is_some_and(|(_, after)| after.contains("boot repair:"))
    };
    let back = wait_until(Duration::from_secs(20), || {
        s.running(&logging) && repaired(&s.daemon_log())
    });
    assert!(
        back,
        "{logging} recreated and running, and the reconnect repair done, within 20 s\ndaemon log:\n{}\ndockerd log tail:\n{}",
        s.daemon_log(),
        s.engine.log_tail(20)
    );
    eprintln!(
        "sidecar recreated {} ms after its removal",
        removed.elapsed().as_millis()
    );
    let new_id = s
        .engine
        .docker_ok(&["inspect", "--format", "{{.Id}}", &logging]);
    assert_ne!(new_id, old_id, "a new container");
    for name in s.all() {
        assert!(s.running(&name), "{name} running\n{}", s.daemon_log());
    }
    let after: Vec<i64> = untouched.iter().map(|n| s.started_nanos(n)).collect();
    assert_eq!(
        after,
        before,
        "web and discovery were not restarted for a recreated sidecar\n{}",
        s.daemon_log()
    );

    eprintln!("daemon log:\n{}", s.daemon_log());

    // SIGTERM: the daemon exits promptly and stops no container.
    let exit = daemon.stop(Duration::from_secs(10));
    assert!(
        exit.is_some(),
        "the daemon exits within 10 s of SIGTERM\n{}",
        s.daemon_log()
    );
    for name in s.all() {
        assert!(
            s.running(&name),
            "{name} still running after the daemon exits"
        );
    }
    eprintln!("test took {} ms", t.elapsed().as_millis());
}

/// Regression: the daemon once repaired only drift after reconnecting, so a
/// discovery restarted by dockerd before web was healthy stayed that way.
#[test]

fn without_live_restore_the_daemon_regates_discovery_after_dockerd_restarts() {
    if !requirements() {
        return;
    }
    let t = Instant::now();
    let mut s = Scene::new(false, 1, "5s");
    assert_exit(&s.run(&["start"], "start"), 0);
    let _daemon = s.spawn_daemon();
    let discovery = s.name("discovery");
    let before = s.started_nanos(&discovery);

    // dockerd stops every container on its way down and starts the
    // unless-stopped ones again, all at once, on its way up: discovery comes
    // back before web is healthy, and the daemon must restart it after.
    let restarted = now_nanos();
    s.engine.restart();
    let web = s.web();
    let ordered = wait_until(Duration::from_secs(20), || {
        s.all().iter().all(|n| s.running(n))
            && s.started_nanos(&discovery) > before
            && s.healthy_after(&web, restarted)
                .is_some_and(|h| s.started_nanos(&discovery) > h)
    });
    assert!(
        ordered,
        "discovery running again, started after web was healthy again \
         (discovery started at {}, web healthy at {:?})\ndaemon log:\n{}",
        s.started_nanos(&discovery),
        s.healthy_after(&web, restarted),
        s.daemon_log()
    );
    eprintln!("daemon log:\n{}", s.daemon_log());
    eprintln!("test took {} ms", t.elapsed().as_millis());
}

/// Regression: after repairing the start order (discovery restarted once
/// web was healthy), the daemon read the events of its own repair, and of
/// the restart the repair had already seen, as fresh drift: it stopped
/// discovery again and started it ~0.5 s later, a deregister/register flap.
#[test]
fn the_daemon_undoes_its_own_boot_repair() {
    if !requirements() {
        return;
    }
    let mut s = Scene::new(false, 1, "5s");
    assert_exit(&s.run(&["start"], "start"), 0);
    let _daemon = s.spawn_daemon();
    let discovery = s.name("discovery");
    let restarted = now_nanos();
    s.engine.restart();
    // Everything its repair caused or saw is read, then nothing is pending.
    let settled = |log: &str| {
        log.split_once("reconnected to Docker")
            .is_some_and(|(_, after)| {
                after
                    .split_once("boot repair:")
                    .is_some_and(|(_, after)| after.contains("idle: events settled"))
            })
    };
    let idle = wait_until(Duration::from_secs(30), || settled(&s.daemon_log()));
    let after_reconnect = s
        .daemon_log()
        .split_once("reconnected to Docker")
        .map(|(_, a)| a.to_owned())
        .unwrap_or_default();
    assert!(
        !after_reconnect.contains("went down"),
        "the daemon stopped what its own repair had just started:\n{}",
        s.daemon_log()
    );
    let secs = |ns: i64| format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    let starts = s.engine.docker_ok(&[
        "events",
        "--since",
        &secs(restarted),
        "--until",
        &secs(now_nanos()),
        "--filter",
        &format!("container={discovery}"),
        "--filter",
        "event=start",
        "--format",
        "{{.TimeNano}}",
    ]);
    assert!(
        starts.lines().count() <= 2,
        "discovery started by dockerd, then at most once by the repair: {starts}\n{}",
        s.daemon_log()
    );
    assert!(
        idle,
        "the daemon settles after its repair\n{}",
        s.daemon_log()
    );
    assert!(s.all().iter().all(|n| s.running(n)), "{}", s.daemon_log());
}

#[test]
fn dockerd_restart_during_start_fails_cleanly_and_a_rerun_converges() {
    if !requirements() {
        return;
    }
    restart_dockerd_during_start(Moment::WebCreated);
}

#[test]
fn dockerd_restart_during_a_gate_wait_fails_cleanly_and_a_rerun_converges() {
    if !requirements() {
        return;
    }
    restart_dockerd_during_start(Moment::WebRunning);
}

/// When, during the first `telefig start`, dockerd restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Moment {
    /// As soon as the main container exists (telefig is still creating and
    /// starting the others).
    WebCreated,
    /// As soon as the main container runs: telefig is waiting ~3 s for its
    /// healthcheck, the gate discovery waits on.
    WebRunning,
}

/// A private dockerd without live-restore restarts under a `telefig start`;
/// that start must end (0 or not) without hanging or panicking, and a rerun
/// must converge: exactly one running container per name, nothing set aside.
fn restart_dockerd_during_start(moment: Moment) {
    let t = Instant::now();
    // web turns healthy ~3 s after it starts.
    let mut s = Scene::new(false, 3, "10s");
    let started = Instant::now();
    let mut first = Terminate(Some(s.spawn(s.telefig(&["start"]), "start-1")));
    let web = s.web();
    let reached = || match moment {
        Moment::WebCreated => s.engine.try_inspect(&web).is_some(),
        Moment::WebRunning => s.running(&web),
    };
    let mut exited_early = false;
    let ready = wait_until(Duration::from_secs(30), || {
        if let Some(child) = first.0.as_mut()
            && child.try_wait().unwrap().is_some()
        {
            exited_early = true;
            return true;
        }
        reached()
    });
    assert!(ready, "{moment:?} within 30 s");
    assert!(
        !exited_early || reached(),
        "`telefig start` exited before {moment:?}:\n{}",
        text(&s.finish(first.0.take().unwrap(), "start-1", START_LIMIT))
    );
    let health = s
        .engine
        .try_inspect(&web)
        .map(|c| c["State"]["Health"]["Status"].clone());
    eprintln!(
        "{moment:?} after {} ms (web health: {health:?}); restarting dockerd",
        started.elapsed().as_millis()
    );
    s.engine.restart();

    let out = s.finish(first.0.take().unwrap(), "start-1", START_LIMIT);
    eprintln!(
        "first start ended after {} ms:\n{}",
        started.elapsed().as_millis(),
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "start ended by a signal\n{}",
        text(&out)
    );
    assert!(!stderr.contains("panicked"), "{}", text(&out));
    if !out.status.success() {
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("telefig: failed"),
            "the last stderr line is the one-line summary: {last:?}\n{}",
            text(&out)
        );
    }

    let rerun = s.run(&["start"], "start-2");
    eprintln!("rerun:\n{}", text(&rerun));
    assert_exit(&rerun, 0);
    let mut names = s.engine.container_names();
    names.sort();
    assert!(
        names.iter().all(|n| !n.contains(".previous")),
        "nothing left aside: {names:?}"
    );
    assert_eq!(names, s.all(), "exactly one container per name");
    for name in s.all() {
        assert!(s.running(&name), "{name} running");
    }
    eprintln!("test took {} ms", t.elapsed().as_millis());
}
