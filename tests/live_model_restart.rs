//! The daemon's live model across a restart of dockerd itself, on a
//! private dockerd with live-restore (`support/dockerd.rs`): after a storm
//! of restarts, crashes, health flips, a removal and a dockerd restart —
//! with changes made while its events stream is down and just after it
//! comes back — the daemon's answer equals a fresh list + inspect: state,
//! health, restart count, last exit and start time.

#[path = "support/dockerd.rs"]
mod dockerd;
mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use dockerd::{OnPrivate, PrivateDockerd, require_private_dockerd};
use serde_json::{Value, json};
use support::*;

const LOOP: &str = "trap 'exit 0' TERM; while :; do sleep 1 & wait; done";
/// The sidecars each restart round restarts by hand.
const RESTARTED: [&str; 3] = ["logging", "metrics", "proxy"];
/// How far the daemon's start time may be from Docker's: the model takes
/// it from the `start` event, which dockerd sends a moment after it sets
/// `StartedAt`. A missed start is seconds off (each container runs ≥ 1 s).
const START_SLACK_NANOS: i64 = 250_000_000;

dockerd::scene_on_private!(
    /// `<id>-web` (healthy while `/ready` exists; probes every 200 ms) with
    /// logging, metrics, proxy (before it) and discovery (after it is healthy),
    /// on a private dockerd with live-restore; files and logs in a scratch dir.
    Scene
);

impl Scene {
    fn new() -> Scene {
        let engine = PrivateDockerd::start(true);
        let images = ["web:v1", "logging:1", "metrics:1", "proxy:1", "discovery:1"]
            .map(|i| format!("tf.local/{i}"));
        engine.import_busybox(&images.each_ref().map(String::as_str));
        let scene = Scene(OnPrivate::new(engine, "live-model-restart"));
        let cmd = format!(r#"["sh", "-c", "{LOOP}"]"#);
        let mut platform = format!(
            "registries: {{primary: \"tf.local\", mirrors: []}}\n{}sidecars:\n",
            platform_labels(&scene.id)
        );
        for kind in RESTARTED {
            platform += &format!(
                "  {kind}: {{image: \"{kind}:1\", order: before, gate: started, command: {cmd}}}\n"
            );
        }
        platform += &format!(
            "  discovery: {{image: \"discovery:1\", order: after_healthy, params: {{port: ~}}, command: {cmd}}}\n"
        );
        std::fs::write(scene.dir.join("platform.yaml"), platform).unwrap();
        let web = scene.web();
        let script = format!("touch /ready; {LOOP}");
        Web {
            sidecars: &["logging:", "metrics:", "proxy:", "discovery: {port: 8080}"],
            ..Web::new(&web, &script)
        }
        .write(&scene.dir);
        scene
    }

    /// `telefig ARGS` on the private engine, with this scene's files.
    fn run(&self, args: &[&str]) -> Output {
        self.telefig(args).output().unwrap()
    }

    /// `telefig daemon` on this scene's state dir, stderr in `daemon.log`.
    fn spawn_daemon(&self) -> Terminate {
        Terminate(Some(self.daemon().spawn().unwrap()))
    }

    /// Times the daemon built its live model from a snapshot.
    fn snapshots(&self) -> usize {
        self.daemon_log()
            .lines()
            .filter(|l| l.contains("live model: ") && l.ends_with(" containers"))
            .count()
    }

    /// The daemon's answer (`status --json`), keyed by name, in the fields
    /// Docker also knows; `None` unless the daemon answered.
    fn daemons_answer(&self) -> Option<Value> {
        let out = self.run(&["status", "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).ok()?;
        if status["source"] != "daemon" {
            return None;
        }
        let mut rows = serde_json::Map::new();
        for c in status["containers"].as_array()? {
            let started = c["started_at"].as_str().and_then(rfc3339_nanos);
            let name = c["name"].as_str()?.to_owned();
            // A name twice (a stale entry beside the new one) never agrees.
            let key = if rows.contains_key(&name) {
                format!("{name} (again)")
            } else {
                name
            };
            rows.insert(key, row(c, started));
        }
        Some(Value::Object(rows))
    }

    /// Docker's truth: one list, then one inspect of all it listed.
    fn dockers_truth(&self) -> Option<Value> {
        let label = format!("label=telefig.serviceset={}", self.id);
        let ids = self
            .engine
            .docker_ok(&["ps", "-aq", "--no-trunc", "--filter", &label]);
        let mut args = vec!["inspect", "--type", "container"];
        args.extend(ids.split_whitespace());
        // A container removed between the two calls: read both again.
        let out = self.engine.docker(&args);
        let all: Value = serde_json::from_slice(&out.stdout).ok()?;
        let mut rows = serde_json::Map::new();
        for c in all.as_array()? {
            let state = &c["State"];
            let running = state["Status"] == "running";
            let fields = json!({
                "state": state["Status"],
                "health": if running { state["Health"]["Status"].clone() } else { Value::Null },
                "restart_count": c["RestartCount"],
                "exit_code": if running { Value::Null } else { state["ExitCode"].clone() },
            });
            let started = state["StartedAt"].as_str().and_then(rfc3339_nanos);
            let name = c["Name"].as_str()?.trim_start_matches('/').to_owned();
            rows.insert(name, row(&fields, started));
        }
        Some(Value::Object(rows))
    }

    fn pid(&self, name: &str) -> u32 {
        let c = self.engine.try_inspect(name).expect("it exists");
        let pid = c["State"]["Pid"].as_u64().unwrap_or(0) as u32;
        // Never 0: `kill 0` would signal the test's own process group.
        assert!(pid > 0, "{name} runs: {:#}", c["State"]);
        pid
    }

    fn health(&self, name: &str) -> String {
        self.engine
            .try_inspect(name)
            .and_then(|c| c["State"]["Health"]["Status"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn started(&self, name: &str) -> String {
        self.engine
            .try_inspect(name)
            .and_then(|c| c["State"]["StartedAt"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn running(&self, name: &str) -> bool {
        self.engine
            .try_inspect(name)
            .is_some_and(|c| c["State"]["Running"] == true)
    }

    /// Wait until `check` holds, or fail saying `what`, with the daemon's log.
    fn wait_for(&self, what: &str, within: Duration, check: impl FnMut() -> bool) {
        assert!(
            wait_until(within, check),
            "{what}: not within {within:?}\ndaemon log:\n{}\ndockerd log tail:\n{}",
            self.daemon_log(),
            self.engine.log_tail(20)
        );
    }

    /// `docker restart -t 1` of the hand-restarted sidecars, `rounds` times.
    fn restart_rounds(&self, rounds: usize) -> usize {
        let names: Vec<String> = RESTARTED.iter().map(|k| self.name(k)).collect();
        for _ in 0..rounds {
            let mut args = vec!["restart", "-t", "1"];
            args.extend(names.iter().map(String::as_str));
            self.engine.docker_ok(&args);
        }
        rounds * names.len()
    }

    /// Poll until the daemon's answer equals Docker's truth, both read back
    /// to back, twice in a row; or fail showing both and the daemon's log.
    fn assert_model_settles_to_truth(&self, within: Duration, when: &str) {
        let mut last = (None, None);
        let mut agreed = 0;
        let t = Instant::now();
        let settled = wait_until(within, || {
            let daemon = self.daemons_answer();
            let docker = self.dockers_truth();
            let same = daemon.is_some() && docker.is_some() && agrees(&daemon, &docker);
            agreed = if same { agreed + 1 } else { 0 };
            last = (daemon, docker);
            agreed >= 2
        });
        assert!(
            settled,
            "{when}: the daemon's model != Docker's truth after {within:?}\n\
             daemon: {:#}\ndocker: {:#}\ndaemon log:\n{}",
            last.0.unwrap_or(Value::Null),
            last.1.unwrap_or(Value::Null),
            self.daemon_log()
        );
        eprintln!(
            "{when}: settled to the truth in {} ms",
            t.elapsed().as_millis()
        );
    }
}

/// Whether the daemon, after reconnecting, finished its repair and then
/// had nothing pending.
fn reconnect_settled(log: &str) -> bool {
    log.split_once("reconnected to Docker")
        .is_some_and(|(_, after)| {
            after
                .split_once("boot repair")
                .is_some_and(|(_, after)| after.contains("idle: events settled"))
        })
}

/// One container's compared fields; the start time apart, as nanoseconds.
fn row(fields: &Value, started_nanos: Option<i64>) -> Value {
    json!({
        "state": fields["state"],
        "health": fields["health"],
        "restart_count": fields["restart_count"],
        "exit_code": fields["exit_code"],
        "started_nanos": started_nanos,
    })
}

/// Equal, field by field, with the start times within [`START_SLACK_NANOS`].
fn agrees(daemon: &Option<Value>, docker: &Option<Value>) -> bool {
    let (Some(Value::Object(daemon)), Some(Value::Object(docker))) = (daemon, docker) else {
        return false;
    };
    daemon.len() == docker.len()
        && daemon.iter().all(|(name, d)| {
            let Some(t) = docker.get(name) else {
                return false;
            };
            let strip = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().unwrap().remove("started_nanos");
                v
            };
            let close = match (d["started_nanos"].as_i64(), t["started_nanos"].as_i64()) {
                (Some(a), Some(b)) => (a - b).abs() <= START_SLACK_NANOS,
                (a, b) => a == b,
            };
            strip(d) == strip(t) && close
        })
}

/// Docker's RFC 3339 times as nanoseconds; its zero time is `None`.
fn rfc3339_nanos(text: &str) -> Option<i64> {
    telefig::engine::status::rfc3339_nanos(text)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn the_daemons_model_equals_dockers_truth_after_a_storm_with_a_dockerd_restart() {
    if !require_docker() || !require_private_dockerd() {
        return;
    }
    let t = Instant::now();
    let mut s = Scene::new();
    assert_exit(&s.run(&["start"]), 0);
    let daemon = s.spawn_daemon();
    s.assert_model_settles_to_truth(Duration::from_secs(30), "at start");
    assert_eq!(s.snapshots(), 1, "{}", s.daemon_log());

    let web = s.web();
    let metrics = s.name("metrics");
    let logging = s.name("logging");
    let proxy = s.name("proxy");
    let secs = Duration::from_secs;
    // Restarts by hand (each resets Docker's count), crashes the restart
    // policy restarts (each counts), a health flip.
    let mut restarts = s.restart_rounds(20);
    for _ in 0..3 {
        let (pid, started) = (s.pid(&metrics), s.started(&metrics));
        kill("KILL", pid);
        s.wait_for("metrics restarted by its policy", secs(20), || {
            s.running(&metrics) && s.started(&metrics) != started
        });
        restarts += 1;
    }
    s.engine.docker_ok(&["exec", &web, "rm", "/ready"]);
    s.wait_for("web unhealthy", secs(20), || s.health(&web) == "unhealthy");
    s.engine.docker_ok(&["exec", &web, "touch", "/ready"]);
    s.wait_for("web healthy", secs(20), || s.health(&web) == "healthy");

    // dockerd goes down (its containers keep running) and, while its
    // events stream is down, discovery's process dies: dockerd restarts it
    // when it is back. Nothing touches discovery after that, so only the
    // daemon's fresh read of Docker can know its new start.
    let discovery = s.name("discovery");
    // Stopped by the daemon while web was unhealthy; started once healthy.
    s.wait_for("discovery running again", secs(30), || {
        s.running(&discovery)
    });
    let discovery_started = s.started(&discovery);
    let discovery_pid = s.pid(&discovery);
    // The daemon is paused through it all, so it reconnects only after
    // the changes below: those it cannot read from the events stream again.
    daemon.signal("STOP");
    s.engine.stop();
    kill("KILL", discovery_pid);
    s.engine.start_again();
    // Just after it is back, before the daemon has read it again: a
    // removal and a restart.
    s.engine.docker_ok(&["rm", "-f", &proxy]);
    s.engine.docker_ok(&["restart", "-t", "1", &metrics]);
    restarts += 1;
    s.wait_for("discovery restarted by dockerd", secs(20), || {
        s.running(&discovery) && s.started(&discovery) != discovery_started
    });
    // The daemon reads events again from the whole second it reconnects
    // in: changes of an earlier second only its fresh read can show.
    let changed = now_secs();
    s.wait_for("the next whole second but one", secs(5), || {
        now_secs() >= changed + 2
    });
    daemon.signal("CONT");
    // The daemon reads Docker again and repairs what it finds (the
    // removed proxy).
    s.wait_for(
        "the daemon reads Docker again and settles",
        secs(60),
        || s.snapshots() >= 2 && reconnect_settled(&s.daemon_log()),
    );
    s.wait_for("proxy repaired", secs(10), || s.running(&proxy));
    restarts += s.restart_rounds(12);
    let (pid, started) = (s.pid(&logging), s.started(&logging));
    kill("KILL", pid);
    s.wait_for("logging restarted by its policy", secs(20), || {
        s.running(&logging) && s.started(&logging) != started
    });
    restarts += 1;
    eprintln!(
        "storm: {restarts} restarts, a health flip, a removal, a dockerd restart ({} s in)",
        t.elapsed().as_secs()
    );
    assert!(restarts >= 100, "{restarts}");
    s.assert_model_settles_to_truth(Duration::from_secs(30), "after the storm");
    eprintln!("test took {} ms", t.elapsed().as_millis());
}
